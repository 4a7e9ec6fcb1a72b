"""Baselines: accept today's findings, fail on new ones; fingerprints never
depend on values; the hand-curated section survives a rewrite."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reglint.cli.app import app
from reglint.config.baseline import baseline_fingerprint, filter_by_baseline, write_baseline
from reglint.engine.finding import Finding, Severity
from reglint.engine.report import FileReport, RunReport
from reglint.errors import ConfigError


def check(*args: str):
    return CliRunner().invoke(app, ["check", *args, "--no-cache", "-f", "concise"])


def finding(layer="dense_1", target="kernel", code="RL001", **values) -> Finding:
    return Finding(code=code, name="x", severity=Severity.ERROR, message="m", layer=layer, target=target,
                   values=values)


def test_create_then_rerun_is_clean_and_a_new_finding_still_fails(project):
    created = check("models/", "--baseline", "reglint-baseline.json", "--create-baseline")
    assert created.exit_code == 0, created.output
    data = json.loads((project / "reglint-baseline.json").read_text())
    assert data["version"] == 1 and data["tool"]["name"] == "reglint" and data["generated"].endswith("Z")
    assert {e["path"] for e in data["findings"]} == {"models/tiny_bad.keras", "models/wreck.keras"}

    rerun = check("models/", "--baseline", "reglint-baseline.json")
    assert rerun.exit_code == 0, rerun.output
    assert rerun.stdout == "All checks passed!\n"

    shutil.copy(project / "models" / "tiny_bad.keras", project / "models" / "new_bad.keras")
    new = check("models/", "--baseline", "reglint-baseline.json")
    assert new.exit_code == 1
    reported = [line for line in new.stdout.splitlines() if line.startswith("models/")]
    assert reported and all(line.startswith("models/new_bad.keras: ") for line in reported)


def test_entries_have_the_documented_shape(project):
    check("models/tiny_bad.keras", "--baseline", "b.json", "--create-baseline")
    entries = json.loads((project / "b.json").read_text())["findings"]
    rl002 = [e for e in entries if e["rule"] == "RL002"]
    assert {e["layer"] for e in rl002} == {"dense_0", "dense_1"}
    for entry in entries:
        assert set(entry) == {"fingerprint", "rule", "path", "layer", "parameter", "observed"}
        assert entry["fingerprint"].startswith("sha256:") and len(entry["fingerprint"]) == 7 + 64
    assert entries == sorted(entries, key=lambda e: (e["path"], e["rule"], e["layer"] or "", e["parameter"] or ""))


def test_fingerprint_is_rule_path_layer_target_never_values():
    assert baseline_fingerprint(finding(lam=0.5), "a.keras") == baseline_fingerprint(finding(lam=1e-4), "a.keras")
    variants = {baseline_fingerprint(f, p) for f, p in [
        (finding(), "a.keras"), (finding(), "b.keras"), (finding(layer="dense_2"), "a.keras"),
        (finding(target="bias"), "a.keras"), (finding(code="RL002"), "a.keras")]}
    assert len(variants) == 5


def test_retrained_values_stay_baselined(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "b.json"
    write_baseline(path, RunReport([FileReport("m.keras", findings=[finding(lam=0.5)])]))
    retrained = RunReport([FileReport("m.keras", findings=[finding(lam=0.9), finding(layer="new")])])
    assert filter_by_baseline(path, retrained) == 1
    assert [f.layer for f in retrained.files[0].findings] == ["new"]
    assert [f.layer for f in retrained.files[0].suppressed] == ["dense_1"]


def test_manually_suppressed_section_is_kept_and_applied(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "b.json"
    manual = [
        {"rule": "RL00", "path": "models/*.keras", "layer": "enc*", "reason": "frozen encoder"},
        {"rule": "RL001", "path": "old.keras", "reason": "gone", "expires": "2020-01-01"},
    ]
    path.write_text(json.dumps({"version": 1, "findings": [], "manually-suppressed": manual}))
    write_baseline(path, RunReport([FileReport("x.keras", findings=[finding()])]))
    data = json.loads(path.read_text())
    assert data["manually-suppressed"] == manual and len(data["findings"]) == 1

    report = RunReport([
        FileReport("models/a.keras", findings=[finding(layer="encoder_1"), finding(layer="head")]),
        FileReport("old.keras", findings=[finding()]),
    ])
    filter_by_baseline(path, report)
    assert [f.layer for f in report.files[0].findings] == ["head"]
    assert report.files[1].findings  # the expired entry no longer applies ...
    assert "expired on 2020-01-01" in capsys.readouterr().err  # ... and says so


@pytest.mark.parametrize(("content", "problem"), [
    ("not json", "not JSON"),
    ("[]", "expected a JSON object"),
    ('{"version": 2, "findings": []}', "unsupported version"),
    ('{"version": 1}', "'findings' must be a list"),
    ('{"version": 1, "findings": [{"rule": "RL001"}]}', "findings[0]: 'path' must be a string"),
    ('{"version": 1, "findings": [], "manually-suppressed": [{"rule": "RL001", "path": "a", "expires": "x"}]}',
     "'expires' must be a date"),
])
def test_malformed_baseline_is_a_config_error(tmp_path, content, problem):
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="malformed baseline") as info:
        filter_by_baseline(path, RunReport())
    assert problem in str(info.value)


def test_malformed_or_missing_baseline_exits_2(project, capsys):
    """Through ``main`` (the console script's path): one line, exit 2."""
    from reglint.cli.app import main

    (project / "bad.json").write_text("{")
    assert main(["check", "models/healthy.keras", "--no-cache", "--baseline", "bad.json"]) == 2
    assert "malformed baseline bad.json" in capsys.readouterr().err
    assert main(["check", "models/healthy.keras", "--no-cache", "--baseline", "nope.json"]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and len(err.strip().splitlines()) == 1


def test_paths_are_relative_to_the_project_root(tmp_path, monkeypatch):
    """Run from a subfolder: the baseline's folder, not the cwd, anchors paths."""
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    path = tmp_path / "b.json"
    report = RunReport([FileReport(str(Path("..") / "models" / "a.keras"), findings=[finding()])])
    write_baseline(path, report)
    assert json.loads(path.read_text())["findings"][0]["path"] == "models/a.keras"
