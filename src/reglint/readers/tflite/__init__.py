"""TensorFlow Lite models (``.tflite``): how Keras models are deployed to
phones and microcontrollers.

The file is a FlatBuffer (identifier ``TFL3``) read with the
``flatbuffers`` runtime and bounds-checked accessors for the few tables
needed (``schema``); it is memory-mapped, never run, and TensorFlow is
never imported. Buffers of models over 2 GiB lie after the flatbuffer
(``Buffer.offset``/``size``) and are read there.

**Parameters** are constant tensors (with data) consumed by weight slots:
CONV_2D/DEPTHWISE_CONV_2D/TRANSPOSE_CONV/CONV_3D filter and bias,
FULLY_CONNECTED weights and bias, a constant BATCH_MATMUL operand,
EMBEDDING_LOOKUP/GATHER tables, LSTM/RNN ops' input-to-gate, recurrent,
peephole, bias, projection and layer-norm slots (uni- and bidirectional),
SVDF, PRELU alpha, and constants of more than one value added to or
multiplying a tensor (a bias after a MatMul, a BatchNormalization the
converter could not fold, LayerNormalization's gamma and beta). Weights
reach their op through DEQUANTIZE (float16 and int8 storage), DENSIFY,
CAST and reshapes. Quantized weights (int8, uint8, int16, int4, int32
biases) count as the float parameters they stand for, their statistics
those of ``(q - zero_point) * scale`` (per tensor or per channel). Shapes,
indices, paddings and scalars are constants, not parameters.

**Layers** are named after the Keras layer scope in the tensor names
(``names``); BatchNormalization folded into the convolution before it is
said in a note, with the values Keras counts there. An untrained model's
BatchNormalizations fold into zero biases that, after a Conv2D, keep no
name: a note counts such biases, which the file cannot tell from a
layer's own zero bias.

**Shapes** are TFLite's layouts, but a depthwise kernel's fans are those
of Keras' [h, w, C, M] (the depth multiplier from the input's channels)
and a normalization's gamma and beta are at Keras' shape ([C], not the
[1, 1, C] the converter broadcasts), as in the ``.keras`` file.
"""

from __future__ import annotations

from reglint.readers.tflite.reader import INFERENCE_NOTE, read_tflite

__all__ = ["INFERENCE_NOTE", "read_tflite"]
