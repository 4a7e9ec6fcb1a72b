"""A 4-bit weight-only ONNX model for bench/run.py's ``onnx_int4`` group:
what large language models are deployed as.

    .venv/bin/python bench/make_int4.py OUT_DIR [--layers N] [--width D]

A stack of N MatMuls with [D, D] float weights (default 24 x 2048 x 2048,
100.7M parameters), quantized by onnxruntime's ``MatMulNBitsQuantizer``
(4 bits, block 32, asymmetric: ``com.microsoft.MatMulNBits``) and saved
with every tensor as external data (``int4.onnx`` + ``int4.onnx.data``,
about 60 MB), as large models are. Writes ``OUT_DIR/manifest.json`` with
the float parameter count.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build(layers: int, width: int) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i in range(layers):
        name = f"layers.{i}.proj.weight"
        inits.append(numpy_helper.from_array(rng.normal(0, 0.02, (width, width)).astype(np.float32), name))
        nodes.append(helper.make_node("MatMul", [x, name], [f"h{i}"], name=f"/layers.{i}/proj/MatMul"))
        x = f"h{i}"
    graph = helper.make_graph(nodes, "int4", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", width])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["b", width])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main() -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--width", type=int, default=2048)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    quantizer = MatMulNBitsQuantizer(build(args.layers, args.width),
                                     algo_config=DefaultWeightOnlyQuantConfig(block_size=32))
    quantizer.process()
    path = args.out / "int4.onnx"
    onnx.save(quantizer.model.model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="int4.onnx.data", size_threshold=0)
    manifest = {"path": str(path), "data": str(args.out / "int4.onnx.data"),
                "float_params": args.layers * args.width * args.width}
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(manifest)


if __name__ == "__main__":
    main()
