"""PyTorch param groups with their own learning rates and decays
(``fixtures/make_torch_group_fixtures.py``, torch's own group contents in
``manifest.json``). Review 28: RL003 named the first group with the lead's
weight_decay beside the lead's learning rate (the backbone told to change
for the head's decay), judged only the fastest group (a second group past
the error level said nothing), and RL008 paired decays with groups in text
order."""

from __future__ import annotations

import json

import pytest

from reglint.engine.analysis import TrainingContext
from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

from helpers import FIXTURES

HERE = FIXTURES / "torch_groups"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]


def rl003(name: str) -> dict[str, object]:
    """RL003's findings by the param group their message names."""
    report = lint_file(str(HERE / name), Settings(context=TrainingContext()))
    assert report.error is None, report.error
    found = {}
    for f in report.findings:
        if f.code == "RL003":
            index = int(f.message.split(" in param group ")[1].split()[0])
            found[index] = f
    return found


def group(name: str, index: int) -> dict:
    return MANIFEST[name]["groups"][index]


def test_the_group_named_is_the_one_whose_decay_was_judged():
    name = "adamw_same_wd_diff_lr.pt"
    assert group(name, 0)["weight_decay"] == group(name, 1)["weight_decay"] == 10.0
    found = rl003(name)
    assert set(found) == {1}  # the head: lr 1e-2 x wd 10 = 0.1 per step; the backbone's 1e-3 is under the warning
    assert group(name, 1)["params"] == ["head.0.weight", "head.0.bias"]
    assert f"in param group 1 ({len(group(name, 1)['params'])} tensors) at lr 0.01 " in found[1].message
    assert found[1].values["shrink_per_step"] == pytest.approx(0.1)


@pytest.mark.parametrize(("name", "shrinks"), [("sgd_two_bad_groups.pt", {0: 1.0, 1: 0.25}),
                                               ("adamw_two_bad.pt", {0: 0.06, 1: 0.1})])
def test_every_group_past_the_error_level_is_named(name, shrinks):
    found = rl003(name)
    assert set(found) == set(shrinks)
    for index, shrink in shrinks.items():
        assert found[index].severity is Severity.ERROR
        assert found[index].values["shrink_per_step"] == pytest.approx(shrink)
        assert found[index].values["learning_rate"] == pytest.approx(group(name, index)["lr"])
    # each group's finding keeps its own identity (baselines)
    assert len({(f.layer, f.target) for f in found.values()}) == len(found)


def test_rl008_pairs_each_decay_with_its_group():
    report = lint_file(str(HERE / "adamw_two_bad.pt"), Settings(context=TrainingContext()))
    (rl008,) = [f for f in report.findings if f.code == "RL008"]
    assert rl008.message.startswith("weight_decay 60, 10 (param group 0, 1;")  # group 0's 60 first


def test_explain_gives_each_group_its_own_decay():
    """Review 28, D3: explain said the lead group's shrink was "the same for
    every weight" where the groups' learning rates differ a hundredfold."""
    import subprocess
    import sys

    name = "adamw_same_wd_diff_lr.pt"
    done = subprocess.run([sys.executable, "-m", "reglint", "explain", str(HERE / name), "-f", "json"],
                          capture_output=True, text=True, timeout=120)
    decay = json.loads(done.stdout)["optimizer_decay"]
    assert decay["param_group"] == 1
    rows = {row["index"]: row for row in decay["groups"]}
    for index in (0, 1):
        assert rows[index]["learning_rate"] == pytest.approx(group(name, index)["lr"])
        assert rows[index]["shrink_per_step"] == pytest.approx(group(name, index)["lr"] * 10.0)
    text = subprocess.run([sys.executable, "-m", "reglint", "explain", str(HERE / name)],
                          capture_output=True, text=True, timeout=120).stdout
    assert "param group 1 (the fastest decay)" in text and "the same for every weight," not in text


def test_the_fix_names_the_group_it_changes():
    """Review 28, D5: the fix said 'optimizer weight_decay 10 -> 0.5' with no
    group: applied as written it would also set the backbone's decay."""
    found = rl003("adamw_two_bad.pt")
    for index, finding in found.items():
        (change,) = finding.fix.changes
        assert change.layer == f"param group {index}" and finding.values["param_group"] == index
        assert finding.fix.describe().endswith(f"in param group {index}")


def test_torch_sgd_coupled_decay_has_rl003s_curve():
    """Review 28, D7: RL003's sweep drew no curve for torch SGD's coupled
    weight_decay (only a decoupled part moved), so explain and the HTML had
    no largest safe weight_decay where RL003 erred. The curve's fix is the
    check's remedy."""
    report = lint_file(str(FIXTURES / "torch" / "sgd_wd_too_strong.pt"), Settings(context=TrainingContext()))
    (curve,) = [c for c in report.curves if c.code == "RL003"]
    (finding,) = [f for f in report.findings if f.code == "RL003"]
    assert curve.knob == "weight_decay" and curve.today == pytest.approx(finding.values["shrink_per_step"])
    assert curve.fix * curve.lambdas[0] == pytest.approx(finding.values["safe_weight_decay"])
