"""Build the big inputs for ``bench/run.py --big``.

    python bench/make_big.py [OUT_DIR] [--force] [--keras-layers 4] [--onnx-layers 8] [--width 8192]

Under ``OUT_DIR`` (default ``bench/out/big``), skipping what exists:

- ``big_dense.keras`` (~1.07 GB): an MLP of ``--keras-layers`` Dense(8192)
  layers on an 8192-wide input, each with ``kernel_regularizer=L2(1e-4)``,
  compiled with SGD(0.1, momentum=0.9), saved by Keras itself. Keras cannot
  stream a save: it holds the weights and a copy of the HDF5 file in memory
  (a few GB of RAM for a few seconds).
- ``big_dense.onnx`` + ``big_dense.onnx.data`` (~2.15 GB): ``--onnx-layers``
  Gemm(8192x8192) + Relu layers whose weights live in one external data file.
  The data file is written directly, 16 MiB at a time, with numpy (Glorot
  uniform values from a seeded generator); the model itself never holds a
  weight in memory, so building it needs ~50 MB whatever its size.
- ``manifest.json``: sizes, parameter counts, the largest tensor in bytes.

Offsets in the data file are aligned to 4096 bytes (what ``onnx`` does for
large tensors), so a reader may memory-map each tensor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "out" / "big"
CHUNK = 16 * 1024 * 1024
ALIGN = 4096


def build_keras(path: Path, layers: int, width: int) -> dict:
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    inputs = keras.Input((width,), name="x")
    x = inputs
    for i in range(layers):
        x = keras.layers.Dense(width, activation="relu" if i < layers - 1 else None,
                               kernel_regularizer=keras.regularizers.L2(1e-4), name=f"dense_{i}")(x)
    model = keras.Model(inputs, x, name="big_dense")
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    model.save(path)
    return {"params": int(model.count_params()),
            "largest_tensor_bytes": max(int(np.prod(w.shape)) * 4 for w in model.weights)}


def build_onnx(path: Path, data_path: Path, layers: int, width: int) -> dict:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    limit = float(np.sqrt(6.0 / (width + width)))
    rows_per_chunk = max(1, CHUNK // (width * 4))
    inits, nodes = [], []
    offset = 0

    def external(name: str, dims: list[int], start: int, length: int) -> TensorProto:
        t = TensorProto()
        t.name = name
        t.data_type = TensorProto.FLOAT
        t.dims.extend(dims)
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", data_path.name), ("offset", str(start)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        return t

    with open(data_path, "wb") as data:
        for i in range(layers):
            # weight: width x width, written a block of rows at a time
            pad = (-offset) % ALIGN
            data.write(b"\0" * pad)
            offset += pad
            start = offset
            for r in range(0, width, rows_per_chunk):
                n = min(rows_per_chunk, width - r)
                block = rng.uniform(-limit, limit, size=(n, width)).astype(np.float32)
                data.write(block.tobytes())
                offset += block.nbytes
            inits.append(external(f"dense_{i}.weight", [width, width], start, width * width * 4))
            bias = np.zeros(width, dtype=np.float32)
            pad = (-offset) % ALIGN
            data.write(b"\0" * pad)
            offset += pad
            inits.append(external(f"dense_{i}.bias", [width], offset, bias.nbytes))
            data.write(bias.tobytes())
            offset += bias.nbytes
            x = "input" if i == 0 else f"h{i - 1}"
            gemm = f"g{i}"
            nodes.append(helper.make_node("Gemm", [x, f"dense_{i}.weight", f"dense_{i}.bias"], [gemm],
                                          name=f"dense_{i}", transB=1))
            nodes.append(helper.make_node("Relu", [gemm], [f"h{i}"], name=f"relu_{i}"))
    graph = helper.make_graph(nodes, "big_dense",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", width])],
                              [helper.make_tensor_value_info(f"h{layers - 1}", TensorProto.FLOAT, ["N", width])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="reglint-bench")
    model.ir_version = 8
    onnx.save_model(model, path)  # tensors already external: only the graph is written
    onnx.checker.check_model(str(path))
    return {"params": layers * (width * width + width), "largest_tensor_bytes": width * width * 4}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--keras-layers", type=int, default=4)
    parser.add_argument("--onnx-layers", type=int, default=8)
    parser.add_argument("--width", type=int, default=8192)
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    f_keras, f_onnx, f_data = out / "big_dense.keras", out / "big_dense.onnx", out / "big_dense.onnx.data"
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() and not args.force else {}
    if args.force or not f_keras.exists() or "keras_params" not in manifest:
        info = build_keras(f_keras, args.keras_layers, args.width)
        manifest["keras_params"] = info["params"]
        manifest["keras_largest_tensor_bytes"] = info["largest_tensor_bytes"]
    if args.force or not f_onnx.exists() or not f_data.exists() or "onnx_params" not in manifest:
        info = build_onnx(f_onnx, f_data, args.onnx_layers, args.width)
        manifest["onnx_params"] = info["params"]
        manifest["onnx_largest_tensor_bytes"] = info["largest_tensor_bytes"]
    manifest["files"] = {key: {"path": str(p), "bytes": p.stat().st_size}
                         for key, p in (("keras", f_keras), ("onnx", f_onnx), ("onnx_data", f_data))}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
