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
            named = f.message.split(" in param group")[1].lstrip("s ").split(" (")[0]
            for index in named.split(", "):
                found[int(index)] = f
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


def test_groups_with_the_same_settings_are_named_together():
    """Review 29, D1: one view per distinct setting named only its first
    group: the head, at the backbone's first layer's settings, had no finding
    and its fix changed only the other group."""
    name = "adamw_dup_groups.pt"
    assert (group(name, 0)["lr"], group(name, 2)["lr"]) == (1e-2, 1e-2)
    found = rl003(name)
    assert set(found) == {0, 2} and found[0] is found[2]
    assert "in param groups 0, 2 (2 + 2 tensors)" in found[0].message
    assert found[0].fix.changes[0].layer == "param groups 0, 2"
    assert found[0].target == "optimizer.param_groups[0,2].weight_decay"


def test_a_groups_target_does_not_depend_on_which_group_leads():
    """Review 29, D2: the lead group's finding was 'optimizer.weight_decay',
    the others' 'param_groups[N]': a baseline taken when group 0 led hid group
    1's new error once group 1 led."""
    found = rl003("adamw_two_bad.pt")
    assert {i: f.target for i, f in found.items()} == {0: "optimizer.param_groups[0].weight_decay",
                                                        1: "optimizer.param_groups[1].weight_decay"}


def test_values_carry_the_setting_as_saved():
    """Review 29, D6: torch SGD's coupled weight_decay was 0.0 in values."""
    found = rl003("sgd_two_bad_groups.pt")
    assert {i: f.values["weight_decay"] for i, f in found.items()} == {0: 1.0, 1: 0.5}


def test_a_shrink_at_a_level_is_at_it():
    """Review 29, D9: lr*wd/(1-momentum) at momentum 0.99 rounds to
    0.0499999...: the error level 0.05 was a warning."""
    context = TrainingContext(optimizer="torch.optim.SGD", learning_rate=0.01, momentum=0.99, weight_decay=0.05)
    report = lint_file(str(FIXTURES / "keras" / "scenario_too_weak.keras"), Settings(context=context))
    (finding,) = [f for f in report.findings if f.code == "RL003"]
    assert finding.values["shrink_per_step"] == pytest.approx(0.05) and finding.severity is Severity.ERROR


def test_explain_shows_every_groups_decay_finding():
    """Review 29, D3: explain kept only 'optimizer.weight_decay' findings,
    and printed each group's suggestion without its group."""
    import subprocess
    import sys

    text = subprocess.run([sys.executable, "-m", "reglint", "explain", str(HERE / "adamw_two_bad.pt")],
                          capture_output=True, text=True, timeout=120).stdout
    assert text.count("RL003 (error): ") == 2
    assert "-> 0.5 in param group 1 (" in text and "in param group 0 (" in text


def test_explain_layer_names_the_group_that_decays_it():
    """Review 32, D8: explain --layer on a backbone layer headlined the
    head's (fastest) group and said it acts on the backbone."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "reglint", "explain", str(HERE / "adamw_weak_backbone.pt"),
                           "--layer", "backbone.0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "param group 0's decay, listed above, is what acts on them" in done.stdout
    assert "param group 0        lr 1.00e-5" in done.stdout
    # the headline is that group's decay (review 33, D10), 1e-7 per step, not the head's 1e-5
    assert "at lr 1.00e-5 · param group 0 (the layers asked for)" in done.stdout
    assert "lr*weight_decay = 1.00e-7" in done.stdout
