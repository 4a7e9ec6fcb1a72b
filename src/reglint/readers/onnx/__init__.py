"""ONNX models: parameters, weights and training artifacts.

The graph is parsed with the ``onnx`` package (``load_external_data=False``)
and never run. What becomes of it:

**Parameters.** Float initializers (float16, bfloat16, float32, float64) of
the main graph, of every subgraph (``If``/``Loop``/``Scan`` attributes, to any
depth) and of ``TrainingInfoProto`` graphs; sparse initializers at their dense
size; in onnxruntime-training artifacts, the graph inputs the checkpoint (or
the gradient graph) names as parameters. Not parameters: integer tensors
(shapes, indices), rank-0 or one-element constants whose only consumers are
arithmetic or constant slots (``Resize`` scales, ``Pow`` exponents, penalty
factors), optimizer state (momentum/velocity buffers, learning rates), the
rotary cos/sin caches of onnxruntime's ``RotaryEmbedding`` and
``GroupQueryAttention`` (tables of ``cos(position * inv_freq)``). An
initializer that is also a graph input (IR < 4) is counted once, and so is
a tied weight the exporter stored again as its exact transpose (``tied``).
Quantized weights (integer or float8 tensors read by DequantizeLinear,
MatMulInteger, ConvInteger, QLinear*, onnxruntime's DynamicQuantizeLSTM
...) count one parameter per stored value; their scales and zero points
are constants (``quantized``). Block-quantized weights (int4/uint4, and 2-,
4- and 8-bit values packed into bytes: onnxruntime's MatMulNBits and
GatherBlockQuantized, opset 21's blocked DequantizeLinear, what LLMs are
deployed as) count at the float weight's shape, their statistics those of
the dequantized values, and a quantized copy of a tied weight within a
quantization step of it is counted once (``blockwise``, ``tied``).

**Roles**, from the consuming node (through ``Cast``/``Transpose``/
``Reshape``/``Identity``): Conv/ConvTranspose W -> kernel (depthwise when
``group > 1`` and one input channel per group), B -> bias; Gemm B -> kernel,
C -> bias; a constant MatMul operand -> kernel; a constant added to a
MatMul/Gemm/Conv output -> bias; LSTM/GRU/RNN W/R/B -> kernel/recurrent
kernel/bias; BatchNormalization scale/B -> gamma/beta, mean/var -> moving
statistics (not trainable); Layer/Group/Instance/RMS normalization scale/bias
-> gamma/beta; Gather data -> embeddings; PRelu slope -> alpha; onnxruntime's
fused transformer ops by their schema's slots (``Attention``'s packed Q/K/V
weight and bias -> kernel/bias, ``EmbedLayerNormalization``'s tables ->
embeddings, ``SkipLayerNormalization``/``SimplifiedLayerNormalization``
scale and bias -> gamma/beta/bias, ``BiasGelu``/``FastGelu`` bias -> bias);
anything else -> other. A shared
initializer is counted once, with its most specific role; one holding a
single repeated value that nodes of other modules read too (torch.onnx
merges equal initializers: an untrained model's LayerNorm ones and zero
biases) gets a note with the values the merge removed. An attention mask
or rotary cos/sin cache an export folded at a fixed sequence length is left
out, with a note (``folded``): recognised by its values, not its role.

**Layers** group variables by name: ``fc1.weight``/``fc1.bias`` -> ``fc1``;
``layer1.0.conv1.weight`` -> ``layer1.0.conv1``; anonymous names
(``onnx::Conv_12``, ``val_4``) take the consuming node's scope
(``/layer1/layer1.0/Conv`` -> ``layer1.0``; the dynamo exporter's
``pkg.torch.onnx.name_scopes`` metadata), the layer of the bias added to
the node's output, or the node's name. ``class_name`` is the op type. ``outbound`` lists
the layers reached through parameter-free, positively homogeneous ops (Relu,
pooling, reshapes) and is left empty when any path leaves through another op,
so scale-invariance checks stay conservative. Shapes are ONNX's own layout.

**Regularization**, in Keras' convention:

a. onnxruntime-training artifacts (``training_model.onnx`` beside
   ``optimizer_model.onnx`` and ``checkpoint``): ``AdamWOptimizer`` ->
   ``AdamW`` with ``weight_decay`` (decoupled and lr-multiplied in both
   ``adam_mode``s, as Keras' ``weight_decay``), ``SGDOptimizerV2`` -> ``SGD``.
   The checkpoint (a FlatBuffer, read here with bounds checks) lists the
   trainable and frozen parameters with their values and, when saved with
   optimizer state, the initial learning rate and step count.
b. ``ai.onnx.preview.training`` Adam/Momentum/Adagrad: ``norm_coefficient`` c
   is a coupled L2 -> ``coupled_l2 = c/2``; Adam's ``norm_coefficient_post``
   is a per-step decay not scaled by the learning rate, kept in the config and
   converted to Keras ``weight_decay = c_post / lr`` when lr is a constant.
c. An explicit penalty in a training graph: ``ReduceSumSquare(W)``,
   ``ReduceL2(W)`` squared, ``ReduceSum(Pow(W, 2))``, ``ReduceSum(Mul(W, W))``
   (L2); ``ReduceL1(W)``, ``ReduceSum(Abs(W))`` (L1); ``ReduceMean`` forms divide
   by the element count; scaled by constants (Mul/Div) and added to the loss
   -> ``Regularizer(l2=lambda)`` with penalty ``lambda * sum(w**2)``.
d. Inference graphs carry none; a note says so.

**Modules**, in the order ``reader.read_onnx`` uses them: ``load`` (the
protobuf, external data confined to the model's folder, ``onnx.checker``),
``graph`` (every node and initializer of every scope), ``training`` (the
optimizer via ``optimizer``, the onnxruntime-training artifacts and
``ort_checkpoint``), ``params`` and ``roles`` (which tensors are parameters,
in which role, trainable or not), ``folded`` (masks and rotary caches an
export folded, left out), ``penalties``, ``stats``, ``layers``,
``losses`` (losses and outputs), ``merged`` (the note on equal initializers
an exporter merged); ``tensors`` holds the element types and
byte ranges they share.
"""

from __future__ import annotations

from reglint.readers.onnx.reader import INFERENCE_NOTE, read_onnx

__all__ = ["INFERENCE_NOTE", "read_onnx"]
