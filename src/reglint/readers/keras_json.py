"""Keras model architectures saved as JSON: ``model.to_json()`` (Keras 1, 2
and 3), the file many teams keep in git beside their training code, or a
``config.json`` taken out of a ``.keras`` archive.

It holds every layer, size and regularizer but no weights: parameters are
counted from the config (``keras_check.build_from_config``) and penalties
are the expected ones at a fresh initialisation, from the initializers.
A JSON file that is not a Keras model is refused with a one-line error.

>>> is_keras_architecture({"class_name": "Sequential", "config": {"layers": []}})
True
>>> is_keras_architecture({"name": "my-package", "version": "1.0"})
False
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reglint.errors import ModelReadError, NotAModelError, UnsafeInputError
from reglint.model import Model
from reglint.readers.keras_build import attach_graph, attach_training_config
from reglint.readers.keras_check import build_from_config
from reglint.readers.keras_config import is_container, walk_model_config
from reglint.readers.keras_objects import bare_class_name, class_name_of
from reglint.readers.keras_placement import note_activity_placement
from reglint.readers.limits import ReadOptions
from reglint.readers.safe_io import load_json

NOTE = ("architecture only (no weights): parameters counted from the config; penalties are the expected ones "
        "at a fresh initialisation from the initializers, there are no saved weights to measure")


def is_keras_architecture(obj: Any) -> bool:
    """A Keras model config: class_name + config of a model (Sequential,
    Functional, Model, or a subclass with a layer graph), or a serialized
    object carrying Keras' ``keras_version``/``backend`` keys."""
    if not isinstance(obj, dict) or "config" not in obj:
        return False
    name = class_name_of(obj)
    if not isinstance(name, str) or not isinstance(obj.get("config"), (dict, list)):
        return False
    return is_container(bare_class_name(name), obj["config"]) or "keras_version" in obj or "backend" in obj


def read_keras_json(path: Path, options: ReadOptions) -> Model:
    try:
        size = path.stat().st_size
        if size > options.max_json_bytes:
            raise UnsafeInputError(f"JSON file is {size // (1 << 20)} MiB, over the "
                                   f"{options.max_json_bytes // (1 << 20)} MiB limit")
        data = path.read_bytes()
    except OSError as exc:
        raise ModelReadError(f"cannot read: {exc.strerror or exc}") from None
    obj = load_json(data.lstrip(b"\xef\xbb\xbf"), what="JSON file", max_bytes=options.max_json_bytes,
                    max_depth=options.max_json_depth)
    if not is_keras_architecture(obj):
        raise NotAModelError("a JSON file that is not a Keras model architecture (no class_name/config of a "
                             "model, as model.to_json() writes): nothing to lint")
    version = obj.get("keras_version") if isinstance(obj.get("keras_version"), str) else None
    keras3 = _is_keras3(obj, version)
    model = Model(path=str(path), format="keras_json",
                  framework="tf.keras" if version and version.endswith("-tf") else "keras",
                  framework_version=version or ("3" if keras3 else None),
                  backend=obj.get("backend") if isinstance(obj.get("backend"), str) else None)
    tree = walk_model_config(obj, max_layers=options.max_layers)
    model.name = tree.name
    build_from_config(model, tree, obj)
    model.notes.insert(0, NOTE)
    attach_training_config(model, obj.get("compile_config") or obj.get("training_config"), tree)
    attach_graph(model, tree)
    note_activity_placement(model, tree, keras3=keras3)
    return model


def _is_keras3(obj: dict, version: str | None) -> bool:
    """Keras 3 writes ``module``/``registered_name`` beside every class name
    and no ``keras_version``; Keras 1/2 write ``keras_version``."""
    if version:
        return version.startswith("3.")
    return "module" in obj or "registered_name" in obj
