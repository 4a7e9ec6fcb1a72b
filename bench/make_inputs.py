"""Build the benchmark inputs for ``bench/run.py`` (needs TensorFlow + Keras).

    python bench/make_inputs.py [OUT_DIR] [--force]

Writes, under ``OUT_DIR`` (default ``bench/out/inputs``), skipping files that
already exist unless ``--force``:

- ``resnet50_l2.keras`` / ``resnet50_l2.h5``: ``keras.applications.ResNet50
  (weights=None)`` rebuilt from its config with ``kernel_regularizer=L2(5e-5)``
  on every Conv2D/Dense kernel, compiled with SGD(0.1, momentum=0.9) and
  categorical cross-entropy, saved untrained (~100 MB each).
- ``resnet50.onnx``: the same weights exported by hand into an ONNX graph
  (NCHW Conv / BatchNormalization / Relu / MaxPool / Add / GlobalAveragePool /
  Gemm / Softmax; opset 17) with every tensor embedded in the protobuf.
- ``resnet50_ext.onnx`` + ``resnet50_ext.onnx.data``: the same graph with every
  initializer over 1 KiB in one external data file.
- ``manifest.json``: parameter counts from Keras (``count_params``) and the
  ONNX initializers, the largest tensor, file sizes; and the max abs
  difference between Keras' and onnxruntime's predictions on one random image
  (when onnxruntime is installed), which shows the export is faithful.
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
DEFAULT_OUT = HERE / "out" / "inputs"
L2 = 5e-5
OPSET = 17


def build_resnet50():
    import keras

    base = keras.applications.ResNet50(weights=None)
    config = base.get_config()
    reg = keras.saving.serialize_keras_object(keras.regularizers.L2(L2))
    for layer in config["layers"]:
        if layer["class_name"] in ("Conv2D", "Dense"):
            layer["config"]["kernel_regularizer"] = reg
    model = keras.Model.from_config(config)
    # from_config initialises fresh weights; keep them (an untrained model is
    # what a user commits before training).
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def export_onnx(model):
    """A runnable NCHW ONNX graph with the Keras model's tensors, transposed
    to ONNX layouts (Conv W: out,in,kh,kw; Gemm B: in,out)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    config = model.get_config()
    nodes, inits = [], []
    out_name: dict[str, str] = {}

    def tensor_in(arg) -> str:
        hist = arg["config"]["keras_history"]
        return out_name[hist[0]]

    def add_init(name: str, array) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    for spec in config["layers"]:
        cls, name, cfg = spec["class_name"], spec["name"], spec["config"]
        if cls == "InputLayer":
            out_name[name] = "input"
            continue
        args = spec["inbound_nodes"][0]["args"]
        layer = model.get_layer(name)
        y = f"{name}_out"
        if cls == "ZeroPadding2D":
            (top, bottom), (left, right) = cfg["padding"]
            pads = f"{name}.pads"
            onnx_pads = np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64)
            inits.append(numpy_helper.from_array(onnx_pads, pads))
            nodes.append(helper.make_node("Pad", [tensor_in(args[0]), pads], [y], name=name))
        elif cls == "Conv2D":
            kernel = layer.kernel.numpy()
            ins = [tensor_in(args[0]), add_init(f"{name}.weight", kernel.transpose(3, 2, 0, 1))]
            if cfg["use_bias"]:
                ins.append(add_init(f"{name}.bias", layer.bias.numpy()))
            attrs = {"kernel_shape": list(cfg["kernel_size"]), "strides": list(cfg["strides"]),
                     "dilations": list(cfg["dilation_rate"]), "group": cfg.get("groups", 1)}
            if cfg["padding"] == "same":
                attrs["auto_pad"] = "SAME_UPPER"
            nodes.append(helper.make_node("Conv", ins, [y], name=name, **attrs))
        elif cls == "BatchNormalization":
            ins = [tensor_in(args[0]), add_init(f"{name}.weight", layer.gamma.numpy()),
                   add_init(f"{name}.bias", layer.beta.numpy()),
                   add_init(f"{name}.running_mean", layer.moving_mean.numpy()),
                   add_init(f"{name}.running_var", layer.moving_variance.numpy())]
            nodes.append(helper.make_node("BatchNormalization", ins, [y], name=name, epsilon=cfg["epsilon"]))
        elif cls == "Activation":
            op = {"relu": "Relu", "softmax": "Softmax"}[cfg["activation"]]
            nodes.append(helper.make_node(op, [tensor_in(args[0])], [y], name=name))
        elif cls == "Add":
            nodes.append(helper.make_node("Add", [tensor_in(a) for a in args[0]], [y], name=name))
        elif cls == "MaxPooling2D":
            assert cfg["padding"] == "valid"
            nodes.append(helper.make_node("MaxPool", [tensor_in(args[0])], [y], name=name,
                                          kernel_shape=list(cfg["pool_size"]), strides=list(cfg["strides"])))
        elif cls == "GlobalAveragePooling2D":
            nodes.append(helper.make_node("GlobalAveragePool", [tensor_in(args[0])], [f"{name}_gap"], name=name))
            nodes.append(helper.make_node("Flatten", [f"{name}_gap"], [y], name=f"{name}_flatten", axis=1))
        elif cls == "Dense":
            ins = [tensor_in(args[0]), add_init(f"{name}.weight", layer.kernel.numpy())]
            if cfg["use_bias"]:
                ins.append(add_init(f"{name}.bias", layer.bias.numpy()))
            act = cfg.get("activation", "linear")
            gemm_out = y if act == "linear" else f"{name}_gemm"
            nodes.append(helper.make_node("Gemm", ins, [gemm_out], name=name))
            if act != "linear":
                op = {"relu": "Relu", "softmax": "Softmax"}[act]
                nodes.append(helper.make_node(op, [gemm_out], [y], name=f"{name}_{act}"))
        else:
            raise SystemExit(f"make_inputs: no ONNX mapping for {cls}")
        out_name[name] = y

    outputs = config["output_layers"]
    final = out_name[outputs[0] if isinstance(outputs[0], str) else outputs[0][0]]
    graph = helper.make_graph(
        nodes, "resnet50_l2",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info(final, TensorProto.FLOAT, ["N", 1000])],
        initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="reglint-bench")
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "keras": out / "resnet50_l2.keras",
        "h5": out / "resnet50_l2.h5",
        "onnx": out / "resnet50.onnx",
        "onnx_ext": out / "resnet50_ext.onnx",
        "onnx_ext_data": out / "resnet50_ext.onnx.data",
        "manifest": out / "manifest.json",
    }
    if not args.force and all(p.exists() for p in paths.values()):
        print(f"make_inputs: {out} already complete")
        return 0

    import keras
    import numpy as np
    import onnx

    keras.utils.set_random_seed(0)
    model = build_resnet50()
    manifest: dict = {"keras_version": keras.__version__, "l2": L2, "files": {}}
    manifest["keras_params"] = int(model.count_params())
    manifest["keras_trainable_params"] = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    largest = max(model.weights, key=lambda w: int(np.prod(w.shape)))
    manifest["largest_tensor"] = {"name": largest.path, "shape": list(largest.shape),
                                  "bytes": int(np.prod(largest.shape)) * 4}
    if args.force or not paths["keras"].exists():
        model.save(paths["keras"])
    if args.force or not paths["h5"].exists():
        model.save(paths["h5"])  # legacy HDF5 (Keras warns: that is the point)

    proto = export_onnx(model)
    manifest["onnx_initializers"] = len(proto.graph.initializer)
    manifest["onnx_params"] = int(sum(int(np.prod(t.dims)) for t in proto.graph.initializer
                                      if t.data_type == onnx.TensorProto.FLOAT))
    onnx.save_model(proto, paths["onnx"])
    onnx.save_model(proto, paths["onnx_ext"], save_as_external_data=True, all_tensors_to_one_file=True,
                    location=paths["onnx_ext_data"].name, size_threshold=1024)
    try:
        import onnxruntime as ort

        x = np.random.default_rng(0).normal(size=(1, 224, 224, 3)).astype(np.float32)
        want = model.predict(x, verbose=0)
        sess = ort.InferenceSession(str(paths["onnx_ext"]), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x.transpose(0, 3, 1, 2)})[0]
        manifest["onnx_vs_keras_max_abs_diff"] = float(np.abs(got - want).max())
    except ImportError:
        manifest["onnx_vs_keras_max_abs_diff"] = None
    for key, p in paths.items():
        if key != "manifest":
            manifest["files"][key] = {"path": str(p), "bytes": p.stat().st_size}
    paths["manifest"].write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
