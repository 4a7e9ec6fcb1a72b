"""A loss compiled as a plain function, as Keras 3 saves it.

``compile(loss=keras.losses.sparse_categorical_crossentropy)`` saves
``{"module": "builtins", "class_name": "function", "config":
"sparse_categorical_crossentropy", "registered_name": "function"}``: the
name is the config, and Keras finds it among its own functions without
running anything from the file (fixtures/keras/loss_builtin_function.keras,
written by Keras). A user's own unregistered function saves the same shape
under its own name.
"""

from __future__ import annotations

import math

import pytest

from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.profile.command import _custom_object
from reglint.readers import read_model
from reglint.readers.keras_objects import KERAS_BUILTIN_FUNCTIONS

from helpers import KERAS_FIXTURES
from mutate import rewrite_keras_zip

BUILTIN = KERAS_FIXTURES / "loss_builtin_function.keras"


def plain(name: str) -> dict:
    return {"module": "builtins", "class_name": "function", "config": name, "registered_name": "function"}


def test_a_builtin_loss_function_is_read_by_its_name():
    model = read_model(BUILTIN)
    assert [loss.name for loss in model.losses] == ["sparse_categorical_crossentropy"]
    report = lint_file(str(BUILTIN), Settings())
    assert report.analysis.loss_scale.value == pytest.approx(math.log(10))


def test_a_users_own_function_is_named_as_itself(tmp_path):
    def rename(cfg):
        cfg["compile_config"]["loss"]["config"] = "plain_mse"

    custom = rewrite_keras_zip(BUILTIN, tmp_path / "custom.keras", config=rename)
    assert [loss.name for loss in read_model(custom).losses] == ["plain_mse"]
    assert "plain_mse" in lint_file(str(custom), Settings()).analysis.loss_scale.explanation


def test_profile_runs_a_builtin_function_and_refuses_a_users_own_by_name():
    assert _custom_object(plain("sparse_categorical_crossentropy")) is None
    assert _custom_object(plain("plain_mse")) == "function plain_mse"
    registered = {**plain("plain_mse"), "registered_name": "my_package>plain_mse", "module": "my_package"}
    assert _custom_object(registered) == "function my_package>plain_mse (module my_package)"


def test_the_builtin_names_are_keras_own():
    """The set reglint keeps equals the functions of keras.activations,
    keras.losses and keras.metrics (less their get/serialize helpers)."""
    keras = pytest.importorskip("keras")
    import inspect

    found = {name for module in (keras.activations, keras.losses, keras.metrics) for name in dir(module)
             if not name.startswith("_") and inspect.isfunction(getattr(module, name))}
    assert found - {"get", "serialize", "deserialize"} == KERAS_BUILTIN_FUNCTIONS
