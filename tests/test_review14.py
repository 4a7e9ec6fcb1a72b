"""Review 14's findings on Keras' quantized layers that the version zoo does
not show by itself (the rest: tests/test_keras_versions.py's quantized
files, tests/test_torch_reader.py's bitsandbytes views)."""

from __future__ import annotations

import pytest

from reglint.model import Role
from reglint.readers import read_model
from reglint.readers.keras_layers import role_from_weight_name

from helpers import FIXTURES


@pytest.mark.parametrize(("stored", "name", "role"), [
    ("dense_3/kernel_scale:0", "kernel_scale", Role.OTHER),
    ("dense_3/inputs_scale", "inputs_scale", Role.OTHER),
    ("dense_3/outputs_grad_amax_history", "outputs_grad_amax_history", Role.OTHER),
    ("embedding/embeddings_scale", "embeddings_scale", Role.OTHER),
    ("dense/kernel_zero", "kernel_zero", Role.OTHER),
    ("dense/g_idx", "g_idx", Role.OTHER),
    ("rev/reverse_embeddings", "reverse_embeddings", Role.EMBEDDINGS),
    ("layer_normalization/gamma:0", "gamma", Role.GAMMA),
    ("rms_normalization/scale", "scale", Role.GAMMA),
])
def test_quantization_constants_in_legacy_h5_are_no_gammas(stored, name, role):
    """A legacy .h5 names each weight; a quantized layer's scales end in
    ``_scale``, which the generic ``scale`` (a normalization's gamma) used
    to take: RL008 then counted float8 scales as normalization parameters."""
    assert role_from_weight_name(stored) == (name, role)


def test_a_float8_h5_holds_no_gamma():
    for path in sorted((FIXTURES / "versions").glob("keras-3.1[2-5]*/quantized_float8.h5")):
        model = read_model(path)
        assert not [v.name for _, v in model.variables() if v.role is Role.GAMMA], path
