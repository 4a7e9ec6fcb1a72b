"""One answer everywhere: the fix a rule proposes is data, and `check`,
`explain` and the JSON's lambda curves carry the same suggested values."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from reglint.cli.app import app
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

from helpers import FIXTURES, KERAS_FIXTURES

# attention layers name their tensors ``key/kernel``: explain missed their fixes (review 40, 1)
MODELS = sorted(KERAS_FIXTURES.glob("scenario_*.keras")) + sorted((FIXTURES / "onnx").glob("*.onnx")) + [
    KERAS_FIXTURES / "einsum_fans.keras", KERAS_FIXTURES / "grouped_query_attention.keras"]


def run_json(*args) -> dict | None:
    """The JSON a command wrote, None where it refused the file (exit 2)."""
    result = CliRunner().invoke(app, list(args))
    if result.exit_code == 2:
        return None
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def suggested(findings: list[dict]) -> dict[tuple, float | None]:
    out = {}
    for f in findings:
        for c in (f.get("fix") or {}).get("changes", []):
            out[(f["code"], c["layer"], c["target"], c["parameter"])] = c["suggested"]
    return out


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_explain_carries_checks_fixes(path):
    whole = run_json("check", str(path), "--format", "json")
    explain = run_json("explain", str(path), "--format", "json")
    if whole is None or whole["files"][0]["error"]:
        assert explain is None  # explain refuses what check cannot read
        return
    check = whole["files"][0]
    assert suggested(explain["findings"]) == suggested(check["findings"])
    assert explain["sweep"] == check["model"]["analysis"]["sweep"]
    # each tensor's rule_changes are the findings' own changes for that tensor
    fixes = suggested(check["findings"])
    for row in explain["tensors"]:
        for change in row["rule_changes"]:
            key = (change["code"], change["layer"], change["target"], change["parameter"])
            assert fixes[key] == change["suggested"]
    # and every change a finding makes to a tensor explain shows is in that tensor's rule_changes
    shown = {(row["layer"], row["variable"]): {(c["code"], c["parameter"]) for c in row["rule_changes"]}
             for row in explain["tensors"]}
    for code, layer, target, parameter in fixes:
        if (layer, target) in shown:
            assert (code, parameter) in shown[(layer, target)], (code, layer, target)


def test_rl001_fix_lands_at_its_aim():
    report = lint_file(str(KERAS_FIXTURES / "scenario_penalty_dominates.keras"), Settings())
    [f] = [f for f in report.findings if f.code == "RL001"]
    assert f.fix is not None and f.fix.changes
    scale = f.values["lambda_scale_factor"]
    for change in f.fix.changes:
        assert change.parameter == "lambda" and change.target == "kernel"
        assert math.isclose(change.suggested, change.current * scale)
    # the curve the HTML draws puts the fix where the finding does
    [curve] = [c for c in report.curves if c.code == "RL001"]
    assert math.isclose(curve.fix, scale)
    assert math.isclose(curve.at(curve.fix), 1.0)  # aim: penalty at 100% of the data-loss scale
    assert math.isclose(curve.today, f.values["penalty_ratio"])


def test_decayed_twice_is_one_finding_with_its_layers():
    report = lint_file(str(KERAS_FIXTURES / "scenario_decayed_twice.keras"), Settings())
    rl006 = [f for f in report.findings if f.code == "RL006"]
    assert len(rl006) == 1
    assert rl006[0].values["layers"] == ["dense", "dense_1", "dense_2"]
    assert {c.layer for c in rl006[0].fix.changes} == {"dense", "dense_1", "dense_2"}
    [rl007] = [f for f in report.findings if f.code == "RL007"]
    # the model is on AdamW already: the fix must not tell it to switch to AdamW
    assert "AdamW(" not in (rl007.remedy or "") and "use decoupled decay (AdamW)" not in (rl007.remedy or "")
    assert all(c.parameter == "regularizer" for c in rl007.fix.changes)


def test_weight_decay_fix_is_rl003s_safe_value():
    report = lint_file(str(KERAS_FIXTURES / "scenario_wd_too_fast.keras"), Settings())
    [f] = [f for f in report.findings if f.code == "RL003"]
    [change] = f.fix.changes
    assert change.parameter == "weight_decay" and change.target == "optimizer"
    assert math.isclose(change.suggested, f.values["safe_weight_decay"])


@pytest.mark.parametrize("path", [KERAS_FIXTURES / "nested_chain_three_deep.keras",
                                  KERAS_FIXTURES / "nested_dict_outputs.keras",
                                  FIXTURES / "layer_sweep" / "k3_l1l2_two_rules.keras"], ids=lambda p: p.name)
def test_fixes_of_several_rules_on_one_lambda_combine_into_one_that_meets_them_all(path, tmp_path):
    """Review 40, 8: two rules asked different values of one lambda (RL001
    and RL024 here) and the output offered no value meeting both; applying
    the larger left the other rule's error. ``combined_changes`` gives the
    smaller, and a model rebuilt with it draws neither error. An L1L2's L1
    (RL004) and L2 (RL024) are two settings, never one (review 43, 3)."""
    from reglint.engine.finding import Severity

    from mutate import layer_configs, rewrite_keras_zip

    source, name = path, path.name
    report = run_json("check", str(source), "--format", "json", "--no-cache")
    combined = report["files"][0]["combined_changes"]
    assert combined
    for entry in combined:
        assert entry["together"] == min(entry["asked"].values()) < entry["current"]
    codes = {code for entry in combined for code in entry["asked"]}
    together = {(entry["layer"].rsplit("/", 1)[-1], entry["parameter"], entry["current"]): entry["together"]
                for entry in combined}

    def apply(cfg):
        for layer in layer_configs(cfg):
            reg = layer.get("kernel_regularizer")
            if not isinstance(reg, dict):
                continue
            factors = reg["config"]
            for (name_, parameter, current), value in together.items():
                if name_ != layer.get("name"):
                    continue
                for factor in ("l1", "l2"):
                    if parameter in (factor, "lambda") and factors.get(factor) == pytest.approx(current):
                        factors[factor] = value

    fixed = rewrite_keras_zip(source, tmp_path / name, config=apply)
    after = lint_file(str(fixed), Settings())
    assert not [f for f in after.findings if f.code in codes and f.severity is Severity.ERROR]
    text = CliRunner().invoke(app, ["check", str(source), "--no-cache"]).output
    assert "fixes together" in text


def test_a_rule_that_removes_a_regularizer_and_one_that_lowers_it_meet_at_removal():
    """Review 47: RL008 and RL025 remove the table's L2 while RL024 lowers
    it; the combined line offered RL024's value alone (removals were left
    out), contradicting the two. A removal is the factor at 0: together,
    remove."""
    report = run_json("check", str(KERAS_FIXTURES / "scenario_embedding_chain_sgd.keras"), "--format", "json",
                      "--no-cache")
    table = [c for c in report["files"][0]["combined_changes"] if c["target"] == "embeddings"]
    assert [(c["together"], sorted(c["asked"])) for c in table] == [(0.0, ["RL008", "RL024", "RL025"])]
    from reglint.engine.finding import combined_changes, describe_combined

    report = lint_file(str(KERAS_FIXTURES / "scenario_embedding_chain_sgd.keras"), Settings())
    assert any(line.startswith("embeddings lambda 0.1 -> remove in embedding")
               for line in describe_combined(combined_changes(report.findings)))


def test_an_l1l2s_equal_factors_stay_two_settings(tmp_path):
    """Review 49, 1: with L1L2(0.3, 0.3) the two factors share their current
    value, and combined_changes merged RL004's L1 change with RL001's and
    RL024's L2 ones into one 'l2' entry; applied, RL001 and RL004 still
    erred. A factor's name (l1, l2) is part of its key."""
    from mutate import layer_configs, rewrite_keras_zip

    def equal(cfg):
        for layer in layer_configs(cfg):
            reg = layer.get("kernel_regularizer")
            if isinstance(reg, dict):
                reg["config"]["l1"] = reg["config"]["l2"] = 0.3

    path = rewrite_keras_zip(FIXTURES / "layer_sweep" / "k3_l1l2_two_rules.keras", tmp_path / "equal.keras",
                             config=equal)
    report = run_json("check", str(path), "--format", "json", "--no-cache")
    combined = report["files"][0]["combined_changes"]
    asked_by = {(c["layer"], c["parameter"]): set(c["asked"]) for c in combined}
    assert all("RL004" not in codes for (_, parameter), codes in asked_by.items() if parameter == "l2"), asked_by
    assert any(parameter == "l2" for _, parameter in asked_by)


def test_a_bidirectional_whose_directions_differ_gets_both_in_the_fix():
    """Review 49, 3 and 4: RL001's changes were keyed by (layer, tensor,
    factor), so of a Bidirectional whose backward GRU carries L2 0.6 and
    forward 0.3 only one direction was changed, and RL007 named the same
    tensors 'forward_gru/kernel' where RL001 said 'kernel', so the combined
    line never saw them meet. Both directions now, told apart by their
    current value, and one name for a tensor: the removal RL007 asks and
    RL001's lowering meet at removal."""
    report = lint_file(str(KERAS_FIXTURES / "bidirectional_backward_differs.keras"), Settings())
    [rl001] = [f for f in report.findings if f.code == "RL001"]
    bidi = sorted((c.target, c.current) for c in rl001.fix.changes if c.layer == "bidi")
    assert bidi == [("kernel", 0.3), ("kernel", 0.6), ("recurrent_kernel", 0.3), ("recurrent_kernel", 0.6)]
    from reglint.engine.finding import combined_changes

    met = {(c.target, c.current): (c.together, dict(c.asked)) for c in combined_changes(report.findings)
           if c.layer == "bidi"}
    assert met[("kernel", 0.6)][0] == 0.0 and {"RL001", "RL007"} <= set(met[("kernel", 0.6)][1])


def test_every_text_surface_prints_the_fix_with_its_aim():
    """Review 72, 4: the terminal and the HTML print "changes (aim): ...",
    the GitHub annotations and JUnit printed "changes: ..." alone; the aim
    says why (one decay mechanism, the optimizer's weight_decay)."""
    path = str(KERAS_FIXTURES / "scenario_decayed_twice.keras")
    report = lint_file(path, Settings())
    lines = {f.fix.line() for f in report.findings if f.fix is not None and f.fix.changes}
    assert any("(one decay mechanism" in line for line in lines)
    for output_format in ("full", "github", "junit", "sarif"):
        out = CliRunner().invoke(app, ["check", path, "--no-cache", "-f", output_format], env={"COLUMNS": "400"}).stdout
        flat = " ".join(out.replace("%0A", "\n").split())
        for line in lines:
            assert " ".join(line.split()) in flat, (output_format, line)
