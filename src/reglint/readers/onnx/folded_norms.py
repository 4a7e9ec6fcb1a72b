"""BatchNorms a PyTorch exporter folded into the convolution before them.

In eval mode both of torch.onnx's exporters fuse ``BatchNorm(Conv(x))`` into
one Conv: ``W*gamma/sqrt(var + eps)`` and ``(b - mean)*gamma/sqrt(var + eps)
+ beta``. The BatchNorm's gamma and beta (trainable in PyTorch) and its
running statistics are then not in the file, and the kernel is not the one
that trained. Nothing in the graph names the BatchNorm any more; the fused
tensors carry the exporter's marks, which no unfused convolution has:

- TorchScript (``dynamo=False``, ``do_constant_folding=True``): the fused
  kernel and bias are new constants, named ``onnx::Conv_N`` both (the
  parameters it did not touch keep their module names, ``head.weight``). A
  weight-normalised convolution folds its kernel alone (its bias keeps its
  name), so both anonymous is asked for.
- Dynamo (onnxscript's ``FuseBatchNormIntoConv``, and ``...IntoGemm`` for a
  Linear before a BatchNorm1d): a convolution that had no
  bias gets one named after its kernel, ``conv2.weight_bias``; one that had a
  bias writes the BatchNorm's output, which the FX graph named ``getitem``
  (``_native_batch_norm_legit_no_training`` returns a tuple), where an
  unfused convolution writes ``conv2d``.

Quantized and float16 copies of such a file keep the names behind their
DequantizeLinear and Cast nodes (``onnx::Conv_26_quantized``). A quantizer
that renames outputs (a Conv fused with its ReLU writes ``relu``) hides the
dynamo mark of a convolution that had a bias: the note says what it found.
Checked on ``fixtures/onnx_exporters`` (``manifest.json``'s ``folded``).
"""

from __future__ import annotations

import re

from reglint.readers.onnx.graph import GraphIndex
from reglint.readers.onnx.params import Param

CONVOLUTIONS = ("Conv", "ConvTranspose")
# onnxscript also fuses a BatchNorm1d after a Linear (Gemm); the TorchScript
# exporter folds convolutions only
DYNAMO_FUSED = (*CONVOLUTIONS, "Gemm")
ANONYMOUS = re.compile(r"^onnx::(Conv|ConvTranspose)_\d+$")
# producers that keep a PyTorch export's tensor names (onnxruntime's quantizer
# writes "onnx.quantize"; a float16 conversion keeps "pytorch")
TORCH_DERIVED = ("onnx.quantize", "onnxruntime")
# suffixes a quantizer or a float16 converter adds to the name it kept
STORAGE_SUFFIXES = ("_quantized",)


def folded_batchnorm_note(params: list[Param], index: GraphIndex, producer: str) -> str | None:
    """The note naming the convolutions a BatchNorm was folded into, with
    the BatchNorm values the file lacks; None where none shows a mark, or
    where the file's producer is not PyTorch or a quantizer of its files."""
    if producer != "pytorch" and not producer.startswith(TORCH_DERIVED):
        return None
    folded = folded_batchnorms(params, index)
    if not folded:
        return None
    channels = sum(c for _, c in folded)
    listed = ", ".join(f"{layer} ({c} channels)" for layer, c in folded[:20])
    more = f", and {len(folded) - 20} more" if len(folded) > 20 else ""
    return (f"{len(folded)} layer(s) carry a BatchNorm the exporter folded into their kernel and bias "
            f"(W*gamma/sqrt(var + eps)): its gamma and beta (up to {2 * channels:,} values, trainable in the source "
            f"model unless affine=False) and running statistics ({2 * channels:,}) are not in the file and not "
            f"counted, and a penalty measured here is on the fused kernel, not the trained one: {listed}{more}")


def folded_batchnorms(params: list[Param], index: GraphIndex) -> list[tuple[str, int]]:
    """(layer, output channels) of every convolution with an exporter's
    fusion mark, in graph order."""
    by_name = {p.name: p for p in params}
    found: list[tuple[str, int]] = []
    for node in index.nodes:
        if node.op not in DYNAMO_FUSED or len(node.inputs) < 2:
            continue
        weight, bias = _stored(index, node.inputs[1]), _stored(index, node.inputs[2]) if len(node.inputs) > 2 else ""
        torchscript = node.op in CONVOLUTIONS and bool(ANONYMOUS.match(weight)) and bool(ANONYMOUS.match(bias))
        dynamo = bias == f"{weight}_bias" or (bool(bias) and bool(node.outputs)
                                              and node.outputs[0].startswith("getitem"))
        kernel = by_name.get(index.source(node.inputs[1]))
        if (torchscript or dynamo) and kernel is not None and len(kernel.shape) >= 2:
            found.append((kernel.layer or weight, _out_channels(node, kernel.shape)))
    return found


def _stored(index: GraphIndex, name: str) -> str:
    """The name an exporter gave a tensor, behind a quantizer's
    DequantizeLinear or a converter's Cast: ``onnx::Conv_26``."""
    source = index.source(name) if name else ""
    for suffix in STORAGE_SUFFIXES:
        source = source.removesuffix(suffix)
    return source


def _out_channels(node, shape: tuple[int, ...]) -> int:
    """A Conv kernel is ``[C_out, C_in/group, ...]``; a ConvTranspose's
    ``[C_in, C_out/group, ...]``; a Gemm's ``[out, in]`` with ``transB``
    (torch's Linear), else ``[in, out]``."""
    if node.op == "ConvTranspose":
        return int(shape[1]) * int(node.attr("group", 1) or 1)
    if node.op == "Gemm" and not node.attr("transB", 0):
        return int(shape[1])
    return int(shape[0])
