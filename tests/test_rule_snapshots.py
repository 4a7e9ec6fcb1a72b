"""Every rule against a snapshot of its findings on the model files it is for.

For each rule code in the registry, ``RULE_FIXTURES`` names real model files
(written by Keras, tf-keras or onnx: fixtures/make_*.py) on which it fires;
``tests/snapshots/RLnnn.json`` holds that rule's findings on each file as
``reglint check --format json`` prints them (one run of the CLI for all files):
code, name, severity, layer, target, message, remedy, values and fix, with
floats rounded to 4 significant digits. The test fails when a rule stops
firing, fires more or less often, or changes a field or a number; when a rule
is added without a fixture and a snapshot; and when a snapshot outlives its rule.

After an intended change, regenerate and review the diff::

    REGLINT_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_rule_snapshots.py
    git diff tests/snapshots/

Missing snapshots are written only with that variable set, never silently.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings

import pytest

from reglint.engine.rule import all_rules

from helpers import ROOT, SNAPSHOTS
from helpers import RULE_FIXTURES as RULE_FIXTURE_DIR

UPDATE = os.environ.get("REGLINT_UPDATE_SNAPSHOTS") == "1"
UPDATE_HINT = "REGLINT_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_rule_snapshots.py"
SIGNIFICANT = 4
FIELDS = ("code", "name", "severity", "layer", "target", "message", "remedy", "values", "fix")

K, R, X, E = "fixtures/keras/", "fixtures/rules/", "fixtures/onnx/", "fixtures/exactness/"  # E: readers' exactness
RULE_FIXTURES: dict[str, tuple[str, ...]] = {
    "RL001": (K + "scenario_penalty_dominates.keras",),
    "RL002": (K + "scenario_sgd_unstable.keras",),
    "RL003": (K + "scenario_wd_too_fast.keras",),
    "RL004": (K + "scenario_l1_jitter.keras",),
    "RL005": (K + "scenario_too_weak.keras", E + "td_activity.keras"),
    "RL006": (K + "scenario_decayed_twice.keras",),
    "RL007": (K + "scenario_adam_coupled_l2.keras", K + "scenario_adam_l2_chain.keras",
              K + "scenario_embedding_chain_adam.keras"),
    "RL008": (K + "scenario_norm_regularized.keras", K + "scenario_embedding_regularized.keras",
              X + "artifacts_adamw/training_model.onnx"),
    "RL009": (K + "scenario_l2_before_bn.keras",),
    "RL010": (K + "scenario_activity.keras",),
    "RL011": (K + "scenario_inconsistent.keras", X + "train_penalties_mixed.onnx"),
    "RL012": (R + "k3_adamw_negative_weight_decay.keras", R + "tfk_negative_l2.h5"),
    "RL013": (R + "k3_diverged.keras", X + "mixed_dtypes.onnx"),
    "RL014": (K + "scenario_custom_regularizer.keras", X + "train_penalties_mixed.onnx"),
    "RL015": (K + "scenario_orthogonal_conv.keras",),
    "RL016": (K + "scenario_frozen_regularized.keras",),
    "RL017": (K + "scenario_collapsed.keras", K + "ftrl_l1_one_step.keras", K + "sgd_weight_decay_collapsed.keras",
              K + "bn_scale_zeroed.keras"),
    "RL018": (R + "tfk_legacy_sgd_decay.h5",),
    "RL019": (R + "k3_bias_dropped_after_build.keras", R + "k3_bias_dropped_after_build.h5",
              E + "broken_shape_mismatch.keras", E + "broken_no_weights.keras", E + "broken_extra_group.keras",
              E + "tfk_broken_missing_layer.h5"),
    "RL021": ("fixtures/scenarios/scenario_bn_l2_strong.keras", "fixtures/scenarios/scenario_residual_all_l2.keras"),
    "RL024": (K + "scenario_chain_shrink.keras", K + "scenario_gru_chain_sgd.keras"),
    "RL025": (K + "scenario_embedding_chain_sgd.keras", K + "scenario_embedding_chain_adam.keras"),
    "RL026": (K + "loss_weights_by_position.keras", K + "loss_weights_zero.keras",
              R + "k3_loss_weights_negative.keras", R + "k3_loss_weights_scalar_zero.keras",
              R + "k3_loss_weights_one_loss_two_weights.keras", R + "k3_loss_weights_dict_by_sorted_key.keras",
              R + "tfk_loss_weights_unknown_name.h5", R + "tfk_loss_weights_extra_name.keras",
              R + "tfk_loss_weights_short_list.h5"),
    "RL027": (R + "k3_loss_dict_unknown_output.keras", R + "k3_loss_dict_outputs_extra_key.keras",
              R + "tfk_loss_dict_unknown_output.h5"),
}
# Files a rule should fire on and does not yet: each is an xfail(strict) test
# below, so the fix shows up as an XPASS to move the file into RULE_FIXTURES.
KNOWN_GAPS: dict[str, tuple[str, str]] = {}

# Files a rule must stay quiet on: the legitimate neighbour of what it reports.
RULE_QUIET: dict[str, tuple[str, ...]] = {
    "RL026": (R + "k3_loss_weights_aux_zero.keras",  # an auxiliary head switched off, loss_weights [1, 0]
              R + "k3_loss_weights_none_entry.keras",  # [1, None]: None is Keras' default weight 1
              R + "tfk_loss_weights_one_loss_two_weights.h5",  # tf-keras applies one loss to both outputs
              R + "tfk_loss_weights_long_list.h5",  # tf-keras ignores weights past the last output
              R + "tfk_loss_weights_dict_loss_list_weights.h5"),  # weights by output, whatever the losses' order
    "RL027": (R + "k3_loss_dict_outputs_none_key.keras",  # None under a key no dict output has: Keras skips it
              R + "tfk_loss_dict_outputs_extra_key.h5"),  # tf-keras ignores a dict output's unknown key
}

# Rules that judge only what `reglint profile` measures (their static check
# yields nothing, so no file makes them fire in `check`); each is tested by the
# profile tests named here.
MEASURED_ONLY: dict[str, str] = {
    "RL023": "tests/test_profile.py (the unregularized twin on real runs)",
}


def rounded(value):
    """``value`` with every float rounded to SIGNIFICANT digits, recursively;
    NaN and infinities as the strings JSON cannot hold otherwise.

    >>> rounded({"ratio": 43.19196028227583, "n": 118272, "xs": [0.004630491385269948, None]})
    {'ratio': 43.19, 'n': 118272, 'xs': [0.00463, None]}
    """
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT}g}") if math.isfinite(value) else str(value)
    return value


def first_difference(expected, actual, where: str = "") -> str | None:
    """Where two JSON values first differ, as ``path: snapshot X, now Y``.

    >>> first_difference({"a": [1, {"b": 2.5}]}, {"a": [1, {"b": 2.6}]})
    '.a[1].b: snapshot 2.5, now 2.6'
    """
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in actual or key not in expected:
                return f"{where}.{key}: snapshot {expected.get(key, '<absent>')!r}, now {actual.get(key, '<absent>')!r}"
            found = first_difference(expected[key], actual[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for index, (old, new) in enumerate(zip(expected, actual, strict=False)):
            found = first_difference(old, new, f"{where}[{index}]")
            if found:
                return found
        if len(expected) != len(actual):
            return f"{where}: snapshot has {len(expected)} items, now {len(actual)}"
        return None
    return None if expected == actual else f"{where}: snapshot {expected!r}, now {actual!r}"


@pytest.fixture(scope="session")
def checked() -> dict[str, dict]:
    """One ``reglint check --format json`` over every fixture file, by path:
    isolated from configuration files, the cache and REGLINT_* variables."""
    paths = sorted({path for paths in (*RULE_FIXTURES.values(), *RULE_QUIET.values()) for path in paths}
                   | set(KNOWN_GAPS))
    env = {key: value for key, value in os.environ.items() if not key.startswith("REGLINT_")}
    done = subprocess.run([sys.executable, "-m", "reglint", "check", "--format", "json", "--isolated", "--no-cache",
                           "--exit-zero", *paths], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    files = {entry["path"]: entry for entry in json.loads(done.stdout)["files"]}
    unread = {path: entry["error"] for path, entry in files.items() if entry["error"]}
    assert not unread, unread
    return files


def findings_of(code: str, entry: dict) -> list[dict]:
    return [rounded({field: finding.get(field) for field in FIELDS})
            for finding in entry["findings"] if finding["code"] == code]


def test_the_registry_and_the_fixture_table_agree():
    registry = set(all_rules()) - set(MEASURED_ONLY)
    assert not registry - set(RULE_FIXTURES), (
        f"rules without a fixture: {sorted(registry - set(RULE_FIXTURES))}. Add a model file on which each fires "
        f"(fixtures/make_rule_fixtures.py writes such files) to RULE_FIXTURES, then run {UPDATE_HINT}")
    assert not set(RULE_FIXTURES) - registry, f"RULE_FIXTURES names unknown rules: {set(RULE_FIXTURES) - registry}"


def test_no_snapshot_outlives_its_rule():
    stale = sorted(path.name for path in SNAPSHOTS.glob("*.json") if path.stem not in all_rules())
    assert not stale, f"snapshots of rules that no longer exist: {stale}; delete them"


def test_every_rule_fixture_file_is_snapshot_or_a_known_gap():
    """fixtures/rules/ files exist for one rule each: each is compared."""
    entries = json.loads((RULE_FIXTURE_DIR / "manifest.json").read_text())["files"]
    for entry in entries:
        path = f"{R}{entry['file']}"
        assert (path in RULE_FIXTURES.get(entry["rule"], ()) or path in RULE_QUIET.get(entry["rule"], ())
                or KNOWN_GAPS.get(path, ("",))[0] == entry["rule"]), path


@pytest.mark.parametrize(("code", "path"), [(code, path) for code, paths in RULE_QUIET.items() for path in paths])
def test_rule_stays_quiet_on_its_legitimate_neighbour(code, path, checked):
    assert findings_of(code, checked[path]) == []


@pytest.mark.parametrize("code", sorted(set(all_rules()) - set(MEASURED_ONLY)))
def test_rule_findings_match_the_snapshot(code, checked):
    assert code in RULE_FIXTURES, f"{code} has no fixture: add one to RULE_FIXTURES and run {UPDATE_HINT}"
    current = {path: findings_of(code, checked[path]) for path in RULE_FIXTURES[code]}
    silent = [path for path, found in current.items() if not found]
    assert not silent, f"{code} no longer fires on {silent}"
    snapshot_path = SNAPSHOTS / f"{code}.json"
    document = {"code": code, "name": all_rules()[code].name, "findings": current}
    if UPDATE:
        text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
        if not snapshot_path.is_file() or snapshot_path.read_text(encoding="utf-8") != text:
            SNAPSHOTS.mkdir(exist_ok=True)
            snapshot_path.write_text(text, encoding="utf-8")
            warnings.warn(f"wrote {snapshot_path.relative_to(ROOT)}", stacklevel=1)
        return
    assert snapshot_path.is_file(), f"{code} has no snapshot {snapshot_path.relative_to(ROOT)}: run {UPDATE_HINT}"
    expected = json.loads(snapshot_path.read_text(encoding="utf-8"))
    difference = first_difference(expected, document)
    assert difference is None, (f"{code} differs from {snapshot_path.relative_to(ROOT)} at {difference}\n"
                                f"if the change is intended: {UPDATE_HINT}, and review git diff tests/snapshots/")


@pytest.mark.parametrize("path", sorted(KNOWN_GAPS))
def test_known_gaps(path, checked):
    code, reason = KNOWN_GAPS[path]
    if not findings_of(code, checked[path]):
        pytest.xfail(reason)
    pytest.fail(f"{code} now fires on {path}: move it from KNOWN_GAPS into RULE_FIXTURES and run {UPDATE_HINT}")


# -- the new fixtures against the framework's own numbers (fixtures/rules/manifest.json) --------------------


@pytest.fixture(scope="module")
def written() -> dict[str, dict]:
    return {entry["file"]: entry for entry in json.loads((RULE_FIXTURE_DIR / "manifest.json").read_text())["files"]}


def test_rl012_reads_the_negative_settings_keras_accepted(written, checked):
    wd = written["k3_adamw_negative_weight_decay.keras"]["optimizer"]["weight_decay"]
    [finding] = findings_of("RL012", checked[R + "k3_adamw_negative_weight_decay.keras"])
    assert finding["target"] == "optimizer.weight_decay" and f"is {wd}" in finding["message"]
    l2 = written["tfk_negative_l2.h5"]["regularizers"]["hidden"]["config"]["l2"]
    [finding] = findings_of("RL012", checked[R + "tfk_negative_l2.h5"])
    assert finding["layer"] == "hidden" and math.isclose(finding["values"]["l2"], l2, rel_tol=1e-3) and l2 < 0


def test_rl013_counts_what_keras_saved(written, checked):
    nonfinite = written["k3_diverged.keras"]["nonfinite"]
    found = {f"{f['layer']}/{f['target']}": f["values"]["nonfinite"]
             for f in findings_of("RL013", checked[R + "k3_diverged.keras"])}
    assert found == nonfinite


def test_rl018_reads_tf_keras_decay_and_steps(written, checked):
    entry = written["tfk_legacy_sgd_decay.h5"]
    [finding] = findings_of("RL018", checked[R + "tfk_legacy_sgd_decay.h5"])
    decay = finding["values"]["lr_decay"]
    assert decay == entry["optimizer"]["config"]["decay"]
    # tf-keras' own decayed rate after the saved iterations: lr / (1 + decay*t)
    lr = entry["optimizer"]["config"]["learning_rate"]
    assert math.isclose(lr / (1 + decay * entry["iterations"]), entry["decayed_learning_rate"], rel_tol=1e-6)
    assert f"after {entry['iterations']} steps" in finding["message"]
