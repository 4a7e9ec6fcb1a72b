"""Review 11's regressions, on files written by the frameworks
(fixtures/make_review11_fixtures.py, fixtures/review11/manifest.json).

- ONNX: two parameters that are exact transposes of each other (an untied
  autoencoder whose decoder starts as the encoder's transpose), each folded
  by the exporter into an anonymous constant, are two parameters, as
  PyTorch counts them; a tie always keeps one readable name (the Gather's
  table), so a pair of anonymous constants is not merged.
- HTML: under gradient accumulation the stored counter counts batches; the
  page says the optimizer steps Keras reports, as the terminal does.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from reglint.readers import read_model

from helpers import FIXTURES

HERE = FIXTURES / "review11"
MANIFEST = json.loads((HERE / "manifest.json").read_text())


@pytest.mark.parametrize("name", ["ae_transposed_init_torchscript.onnx", "ae_transposed_init_dynamo.onnx"])
def test_anonymous_transposed_pair_is_two_parameters(name):
    model = read_model(HERE / name)
    assert sum(v.size for _, v in model.variables()) == MANIFEST[name]["count_params"] == 256


def test_html_counts_optimizer_steps_under_accumulation(tmp_path):
    entry = MANIFEST["accumulate4_sgd.keras"]
    out = tmp_path / "r.html"
    subprocess.run([sys.executable, "-m", "reglint", "check", str(HERE / "accumulate4_sgd.keras"), "-f", "html",
                    "-o", str(out)], check=False, capture_output=True)
    page = out.read_text()
    said = re.search(r"(\d+) steps taken \((\d+) batches, 4 per step\)", page)
    assert said is not None
    assert (int(said.group(1)), int(said.group(2))) == (entry["iterations"], entry["batches"]) == (2, 10)
