"""Findings that live outside an optimizer's lead param group (review 29,
D4/D8, and the rules the 2026-12-02 note left at the lead's settings):
RL005 and RL021 read only the tensors the lead group updates, RL024 a chain
within one group's settings, and the group listings left out momentum.
Real files: a Keras ``MultiOptimizer`` (``make_keras_optimizer_fixtures.py
--multi-groups``; Keras' own assignment of variables to sub-optimizers in
``manifest.json``) and PyTorch param groups (``make_torch_group_fixtures.py``;
torch's own group contents in its manifest)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reglint.engine.analysis import TrainingContext
from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

from helpers import FIXTURES, run_reglint

KERAS = FIXTURES / "keras_optimizers"
TORCH = FIXTURES / "torch_groups"
KERAS_MANIFEST = json.loads((KERAS / "manifest.json").read_text())["files"]
TORCH_MANIFEST = json.loads((TORCH / "manifest.json").read_text())["files"]


def findings(path, code: str, **context) -> list:
    report = lint_file(str(path), Settings(context=TrainingContext(**context)))
    assert report.error is None, report.error
    return [f for f in report.findings if f.code == code]


def test_rl021_judges_a_normalized_kernel_in_an_sgd_group_under_an_adamw_lead():
    """b1 feeds BatchNormalization and Keras trains it with the SGD
    sub-optimizer (lr 0.1, momentum 0.9): L2(0.5) turns it ~0.32 rad per step
    as under SGD alone. Only the AdamW lead's kernels were read before."""
    truth = KERAS_MANIFEST["group_bn_sgd_adamw_lead.keras"]["assignment"]["loaded"]
    assert truth["b1/kernel"] == "SGD" and truth["out/kernel"] == "AdamW"
    (rl021,) = findings(KERAS / "group_bn_sgd_adamw_lead.keras", "RL021")
    assert rl021.layer == "b1" and rl021.severity is Severity.ERROR
    # theta = sqrt(2*R*(1-m)/(1+m)) with R = 2*lr*l2/(1-m) = 1 (rule's Formula)
    assert rl021.values["angular_update"] == pytest.approx((2 * 1.0 * 0.1 / 1.9) ** 0.5, rel=1e-3)
    assert rl021.values["param_group"] == 0 and " in param group 0 (2 tensors) " in rl021.message
    (change,) = rl021.fix.changes
    assert (change.layer, change.current) == ("b1", 0.5)


def test_rl005_judges_a_weak_l2_and_a_weak_decay_outside_the_lead_group():
    """d1's L2(1e-10) is under the SGD group (the AdamW lead normalises
    penalties away, so RL005 skipped every penalty); out's AdamW group decays
    lr*wd = 1e-9 per step. Each is named once, with its group."""
    truth = KERAS_MANIFEST["group_weak_decay.keras"]["assignment"]["loaded"]
    assert (truth["d1/kernel"], truth["out/kernel"], truth["d0/kernel"]) == ("SGD", "AdamW", "AdamW")
    found = findings(KERAS / "group_weak_decay.keras", "RL005", steps=1000)
    by_target = {f.target: f for f in found}
    assert set(by_target) == {"optimizer.param_groups[1].weight_decay", "kernel"}, [f.message for f in found]
    decay = by_target["optimizer.param_groups[1].weight_decay"]
    assert decay.values["decay_integral"] == pytest.approx(1e-5 * 1e-4 * 1000, rel=1e-3)
    assert decay.values["param_group"] == 1
    (change,) = decay.fix.changes
    assert change.layer == "param group 1" and change.suggested == pytest.approx(1 / (1e-5 * 1000), rel=1e-3)
    assert by_target["kernel"].layer == "d1"


def test_rl005_names_a_weak_torch_group_and_a_weak_coupled_sgd_decay():
    """A fine-tuning recipe: the backbone's AdamW group at lr 1e-5 decays
    1e-7 per step (D = 0.001 over 10,000 steps) beside a head at lr 1e-3; and
    torch SGD's coupled weight_decay 1e-4 at lr 1e-4, momentum 0.9 shrinks
    lr*wd/(1-m) = 1e-7 per step, which no rule measured before."""
    assert TORCH_MANIFEST["adamw_weak_backbone.pt"]["groups"][0]["lr"] == 1e-5
    (weak,) = findings(TORCH / "adamw_weak_backbone.pt", "RL005", steps=10_000)
    assert weak.target == "optimizer.param_groups[0].weight_decay"
    assert weak.values["decay_integral"] == pytest.approx(1e-3)
    backbone = TORCH_MANIFEST["sgd_weak_l2_group.pt"]["groups"][0]
    assert (backbone["lr"], backbone["weight_decay"], backbone["momentum"]) == (1e-4, 1e-4, 0.9)
    (coupled,) = findings(TORCH / "sgd_weak_l2_group.pt", "RL005", steps=10_000)
    assert coupled.target == "optimizer.param_groups[0].weight_decay"
    assert coupled.values["shrink_per_step"] == pytest.approx(1e-4 * 1e-4 / 0.1)
    (change,) = coupled.fix.changes  # torch's own weight_decay, which gives D = 1: (1-m)/(lr*T)
    assert change.current == pytest.approx(1e-4) and change.suggested == pytest.approx(0.1)
    assert "coupled weight_decay 0.0001" in coupled.message.replace("1.00e-4", "0.0001")
    # the head's group (lr 0.1, wd 1e-3: D = 10) is not weak
    assert not findings(TORCH / "sgd_weak_l2_group.pt", "RL005", steps=10_000)[1:]


def test_rl024_judges_a_chain_spread_over_groups_with_different_momenta():
    """s1, s2, s3 in series, each L2(0.5) under its own SGD (momentum 0.9,
    0.91, 0.92): each asks a shrink of at least 1 per step, as in the
    one-group chain RL024 errs on; per-group views saw one layer each."""
    truth = KERAS_MANIFEST["group_chain_three_momenta.keras"]["assignment"]["loaded"]
    assert {truth[f"s{i}/kernel"] for i in (1, 2, 3)} == {"SGD"}
    report = lint_file(str(KERAS / "group_chain_three_momenta.keras"), Settings(context=TrainingContext()))
    (rl024,) = [f for f in report.findings if f.code == "RL024"]
    assert rl024.severity is Severity.ERROR and rl024.values["chain"] == ["s1", "s2", "s3"]
    assert rl024.values["chain_shrinks"] == pytest.approx([2 * 0.1 * 0.5 / (1 - m) for m in (0.9, 0.91, 0.92)],
                                                          rel=1e-5)
    assert rl024.values["param_groups"] == [0, 1, 2]
    # each layer's fix at its own group's momentum: l2 = 0.025*(1-m)/(2*lr)
    fixes = {c.layer: c.suggested for c in rl024.fix.changes}
    assert fixes == pytest.approx({"s1": 0.0125, "s2": 0.01125, "s3": 0.01}, rel=1e-5)
    # the pace is the slowest envelope, momentum 0.92's: 1 - sqrt(0.92)
    assert "shrinks by 0.0408 per step" in rl024.message and "param group 2: lr 0.1, momentum 0.92" in rl024.message
    assert any(c.code == "RL024" for c in report.curves)


def test_group_listings_show_each_groups_class_and_momentum():
    done = run_reglint("check", str(KERAS / "group_chain_three_momenta.keras"))
    assert "group 1 (SGD): 2 tensors (272 values), lr 0.1, momentum 0.91, no weight decay" in done.stdout
    assert "group 3 (AdamW): 4 tensors (227 values), lr 0.01, weight_decay 5 (decoupled)" in done.stdout
    explained = subprocess.run([sys.executable, "-m", "reglint", "explain",
                                str(KERAS / "group_chain_three_momenta.keras")], capture_output=True, text=True,
                               timeout=120)
    assert "param group 2        lr 0.1, momentum 0.92, no decay (sgd)" in explained.stdout


def test_rl006_names_the_decay_of_the_tensors_own_group():
    """Review 32, D13: s1's L2 is decayed by its AdamW(1e-5, weight_decay
    1e-4) group, 1e-9 per step; RL006 named the lead's weight_decay 0.1."""
    truth = KERAS_MANIFEST["group_decayed_twice.keras"]
    assert truth["assignment"]["loaded"]["s1/kernel"] == "AdamW"
    assert truth["decay_per_step"]["s1/kernel"] < 1e-6 < truth["decay_per_step"]["d0/kernel"]
    (rl006,) = findings(KERAS / "group_decayed_twice.keras", "RL006")
    assert rl006.values["weight_decay"] == pytest.approx(1e-4)
    assert rl006.values["decoupled_shrink"] == pytest.approx(1e-9, rel=1e-3)
    assert "in param group 0" in rl006.message
