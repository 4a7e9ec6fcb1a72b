"""Build every case, save it in each of its formats under the output folder,
and record what the framework itself reports about each file.

For every file: the generating model's ``count_params``, trainable and
non-trainable counts and weight penalty, then whether the framework loads the
file back (``load_model``, safe mode first, then the fallbacks a user would
try: ``safe_mode=False``, ``compile=False``) and the same numbers from the
loaded model. Weights-only files and exported SavedModels have no loader
check: their reference is the generating model.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

from .common import error_line, jsonable, nparams  # noqa: E402

FILE_NAMES = {
    "keras3": {"keras": "{n}.keras", "h5": "{n}.h5", "weights": "{n}.weights.h5", "export": "{n}_export",
               "json": "{n}.json", "unzipped": "{n}_unzipped"},
    "tf_keras": {"keras": "{n}.keras", "h5": "{n}.h5", "weights": "{n}_weights.h5", "tf": "{n}_savedmodel",
                 "json": "{n}.json"},
}


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def _quiet_tensorflow() -> None:
    """TensorFlow's and absl's loggers at ERROR: a sweep saves hundreds of files."""
    import absl.logging
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    absl.logging.set_verbosity(absl.logging.ERROR)


class Keras3:
    writer = "keras3"

    def load_json(self, path: Path):
        return _load_json(self, path)

    def __init__(self) -> None:
        import keras

        _quiet_tensorflow()
        from . import k3_cases, k3_layers, k3_more  # noqa: F401  (the last two register their cases)

        self._bind(keras, k3_cases)

    def _bind(self, keras_module, cases) -> None:
        """The Keras this writer saves with, and its registered cases."""
        self.keras, self.version = keras_module, keras_module.__version__
        self.cases, self.custom = cases.REG.cases, cases.CUSTOM_OBJECTS

    def reset(self) -> None:
        k = self.keras
        k.mixed_precision.set_global_policy("float32")
        k.backend.set_floatx("float32")
        k.backend.clear_session()
        k.utils.set_random_seed(0)

    def penalty(self, model) -> tuple[float | None, str | None]:
        """Keras 3's weight-regularizer penalty: trainable weights only."""
        from keras import ops

        try:
            losses = model._get_regularization_losses()
            return float(sum(float(np.asarray(ops.convert_to_numpy(x))) for x in losses)), None
        except Exception as exc:
            return None, error_line(exc)

    def describe(self, model) -> dict[str, Any]:
        pen, err = self.penalty(model)
        return {"count_params": int(model.count_params()), "trainable_params": nparams(model.trainable_weights),
                "non_trainable_params": nparams(model.non_trainable_weights), "weight_penalty": pen,
                "weight_penalty_error": err}

    def fit(self, model, train) -> None:
        x, y, *rest = train
        model.run_eagerly = True  # one step: tracing would cost more than it saves (compile_config keeps the user's)
        model.fit(x, y, batch_size=rest[0] if rest else 16, epochs=1, verbose=0, shuffle=False)

    def save(self, model, fmt: str, path: Path) -> None:
        if fmt == "json":
            path.write_text(model.to_json())
        elif fmt == "weights":
            model.save_weights(str(path))
        elif fmt == "export":
            model.export(str(path), verbose=False)
        elif fmt == "unzipped":
            model.save(str(path), zipped=False)
        else:
            model.save(str(path))

    def load(self, path: Path):
        if path.suffix == ".json":
            return self.load_json(path)
        attempts = [{"safe_mode": True}, {"safe_mode": False}, {"safe_mode": False, "compile": False}]
        errors = []
        for kw in attempts:
            self.reset()
            try:
                return self.keras.saving.load_model(str(path), custom_objects=self.custom, **kw), kw, errors
            except Exception as exc:
                errors.append(f"{kw}: {error_line(exc)}")
        return None, None, errors


class TfKeras(Keras3):
    writer = "tf_keras"

    def __init__(self) -> None:
        import tf_keras

        _quiet_tensorflow()
        from . import tfk_cases

        self._bind(tf_keras, tfk_cases)

    def reset(self) -> None:
        self.keras.mixed_precision.set_global_policy("float32")
        self.keras.backend.clear_session()
        self.keras.utils.set_random_seed(0)

    def penalty(self, model) -> tuple[float | None, str | None]:
        """tf-keras' weight-regularizer penalty: every layer's callable losses
        (tf-keras keeps a frozen layer's penalty as a constant)."""
        try:
            total = 0.0
            for layer in model._flatten_layers(include_self=True, recursive=True):
                for loss in layer._callable_losses:
                    value = loss()
                    if value is not None:
                        total += float(np.asarray(value))
            return total, None
        except Exception as exc:
            return None, error_line(exc)

    def fit(self, model, train) -> None:
        x, y, *rest = train
        model.fit(x, y, batch_size=rest[0] if rest else 16, epochs=1, verbose=0, shuffle=False)

    def save(self, model, fmt: str, path: Path) -> None:
        if fmt == "json":
            path.write_text(model.to_json())
        elif fmt == "weights":
            model.save_weights(str(path))
        elif fmt == "tf":
            model.save(str(path), save_format="tf")
        else:
            model.save(str(path))

    def load(self, path: Path):
        if path.suffix == ".json":
            return self.load_json(path)
        errors = []
        for kw in ({}, {"compile": False}):
            self.reset()
            try:
                with self.keras.utils.custom_object_scope(self.custom):
                    return self.keras.models.load_model(str(path), **kw), kw, errors
            except Exception as exc:
                errors.append(f"{kw}: {error_line(exc)}")
        return None, None, errors


def _load_json(writer, path: Path):
    writer.reset()
    try:
        with writer.keras.utils.custom_object_scope(writer.custom):
            model = writer.keras.models.model_from_json(path.read_text())
        model.count_params()  # an unbuilt model cannot count: not a reference
        return model, {"model_from_json": True}, []
    except Exception as exc:
        return None, None, [f"model_from_json: {error_line(exc)}"]


def generate(writer_name: str, out: Path, only: list[str] | None) -> list[dict[str, Any]]:
    writer = Keras3() if writer_name == "keras3" else TfKeras()
    out.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    for case in writer.cases:
        if only and case.name not in only:
            continue
        started = time.perf_counter()
        writer.reset()
        base = {"case": case.name, "writer": writer.writer, "keras_version": writer.version, "note": case.note}
        try:
            model, train = case.build()
            if train is not None:
                writer.fit(model, train)
            gen = writer.describe(model)
        except Exception as exc:
            entries.append({**base, "file": None, "build_error": error_line(exc),
                            "build_traceback": traceback.format_exc(limit=3)})
            print(f"{case.name:48s} BUILD FAILED {error_line(exc)}", flush=True)
            continue
        for fmt in case.formats:
            path = out / FILE_NAMES[writer.writer][fmt].format(n=case.name)
            _remove(path)
            entry = {**base, "file": path.name, "format": fmt, "trained": train is not None, "generator": gen}
            try:
                writer.save(model, fmt, path)
            except Exception as exc:
                _remove(path)
                entry.update(file=None, save_error=error_line(exc))
                entries.append(entry)
                print(f"{path.name:48s} SAVE FAILED {error_line(exc)}", flush=True)
                continue
            entry["size_bytes"] = _size(path)
            if fmt in ("keras", "h5", "json", "unzipped"):
                loaded, how, errors = writer.load(path)
                entry["keras_load"] = {"ok": loaded is not None, "how": how, "errors": errors}
                if loaded is not None:
                    entry["loaded"] = writer.describe(loaded)
            entries.append(entry)
            ref = entry.get("loaded") or gen
            print(f"{path.name:48s} params={ref['count_params']:>8d} trainable={ref['trainable_params']:>8d} "
                  f"penalty={ref['weight_penalty']} load={entry.get('keras_load', {}).get('how')}", flush=True)
        print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)
    return jsonable(entries)


def write_manifest(entries: list[dict[str, Any]], path: Path) -> None:
    path.write_text(json.dumps(entries, indent=1) + "\n")
