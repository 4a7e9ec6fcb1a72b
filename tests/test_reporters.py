"""CI output formats on real Keras files: SARIF (schema-valid, both flavors),
GitHub annotations and job summary, JUnit, GitLab, concise, pylint,
json-lines.

The models are conftest's ``real_models`` (``wreck``, ``tiny_bad``,
``healthy``), copied into a project folder by ``project``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reglint.engine.finding import Finding, Severity
from reglint.engine.report import FileReport, RunReport
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.reporters import renderer
from reglint.reporters.github import escape_data, escape_property, render_github
from reglint.reporters.junit import render_junit
from reglint.reporters.machine import render_concise, render_gitlab, render_json_lines, render_pylint
from reglint.reporters.sarif import SCHEMA_URI, sarif_log

from helpers import SARIF_SCHEMA


@pytest.fixture
def report(project) -> RunReport:
    """wreck + healthy + tiny_bad + an unreadable file, linted for real."""
    (project / "models" / "broken.keras").write_bytes(b"PK\x03\x04 not really a zip")
    settings = Settings()
    files = sorted(str(p.relative_to(project)) for p in (project / "models").iterdir())
    return RunReport([lint_file(path, settings) for path in files])


def render(fn, report: RunReport, **kwargs) -> str:
    out = io.StringIO()
    fn(report, out, settings=Settings(), **kwargs)
    return out.getvalue()


def synthetic(layer: str = "dense_1", severity: Severity = Severity.ERROR, code: str = "RL001",
              path: str = "models/a.keras", **values) -> RunReport:
    finding = Finding(code=code, name="penalty-dominates-loss", severity=severity, message=f"too much at {layer}",
                      layer=layer, target="kernel", remedy="lower it", values=values)
    return RunReport([FileReport(path=path, findings=[finding])])


# ---------------------------------------------------------------------------
# the real report


def test_real_report_has_the_expected_findings(report):
    by_file = {Path(f.path).name: f for f in report.files}
    assert "RL001" in {f.code for f in by_file["wreck.keras"].findings}
    assert {f.code for f in by_file["tiny_bad.keras"].findings} >= {"RL001", "RL002"}
    assert by_file["healthy.keras"].findings == []
    assert by_file["broken.keras"].error


# ---------------------------------------------------------------------------
# SARIF


@pytest.fixture(scope="module")
def sarif_validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


@pytest.mark.parametrize("flavor", ["github", "strict"])
def test_sarif_validates_against_the_official_schema(report, sarif_validator, flavor):
    text = render(renderer("sarif"), report, flavor=flavor)
    doc = json.loads(text)
    errors = sorted(sarif_validator.iter_errors(doc), key=str)
    assert not errors, errors[0]
    regions = [r["locations"][0]["physicalLocation"].get("region") for r in doc["runs"][0]["results"]]
    expected = {"startLine": 1} if flavor == "github" else None
    assert regions and all(region == expected for region in regions)


def test_sarif_rules_results_and_paths(report):
    run = sarif_log(report)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    result_ids = {r["ruleId"] for r in run["results"]}
    assert ids == sorted(result_ids)  # only rules with results, in code order
    assert "RL900" in ids  # the unreadable file
    for rule in rules:
        assert rule["id"] != rule["name"]
        assert rule["shortDescription"]["text"] and len(rule["fullDescription"]["text"]) <= 1024
        assert rule["help"]["text"] and rule["help"]["markdown"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
        assert rule["properties"]["problem.severity"] in ("error", "warning", "recommendation")
    for result in run["results"]:
        assert ids[result["ruleIndex"]] == result["ruleId"]
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("models/") and "\\" not in uri
        fingerprints = result["partialFingerprints"]
        assert fingerprints["primaryLocationLineHash"] and fingerprints["reglint/v1"].startswith(result["ruleId"])


def test_sarif_names_the_layer_and_maps_info_to_note():
    doc = sarif_log(synthetic(layer="block/dense_7", severity=Severity.INFO))
    result = doc["runs"][0]["results"][0]
    assert result["level"] == "note"
    assert "block/dense_7" in result["message"]["text"]
    assert result["locations"][0]["logicalLocations"][0] == {
        "name": "dense_7", "fullyQualifiedName": "block/dense_7/kernel", "kind": "member"}


def test_sarif_fingerprints_ignore_values_and_separate_layers():
    def print_of(report):
        return sarif_log(report)["runs"][0]["results"][0]["partialFingerprints"]

    assert print_of(synthetic(lam=0.5)) == print_of(synthetic(lam=0.01))
    assert print_of(synthetic(layer="dense_1")) != print_of(synthetic(layer="dense_2"))


def test_sarif_points_savedmodel_findings_at_saved_model_pb(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"\x08\x01")
    report = synthetic(path="sm")
    uri = sarif_log(report)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "sm/saved_model.pb"


def test_sarif_paths_are_relative_to_the_working_directory_not_the_config(tmp_path, monkeypatch):
    """%SRCROOT% is where reglint ran (the checkout GitHub resolves against), even
    when the file's configuration lives deeper."""
    monkeypatch.chdir(tmp_path)
    settings = Settings(root=str(tmp_path / "models"))
    report = synthetic(path=str(tmp_path / "models" / "a.keras"))
    run = sarif_log(report, settings)["runs"][0]
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/a.keras"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"


def test_sarif_uris_are_percent_encoded_and_outside_files_are_file_uris(tmp_path):
    """SARIF 2.1.0 §3.10: artifactLocation.uri is an RFC 3986 URI reference. A space, comma, colon and
    percent in a project path are encoded (a raw ':' would read as a scheme); a file outside the project
    is an absolute file:// URI, without the %SRCROOT% base the relative ones carry."""
    import shutil
    from urllib.parse import unquote, urljoin

    from helpers import KERAS_FIXTURES

    bad = KERAS_FIXTURES / "scenario_penalty_dominates.keras"
    project = tmp_path / "proj"
    (project / "weird dir").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.reglint]\n")
    shutil.copy(bad, project / "weird dir" / "a,b:c%d.keras")
    (tmp_path / "out side").mkdir()
    shutil.copy(bad, tmp_path / "out side" / "m.keras")
    result = subprocess.run([sys.executable, "-m", "reglint", "weird dir/a,b:c%d.keras", "../out side/m.keras",
                             "-f", "sarif", "--no-cache"], cwd=project, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in document["runs"][0]["results"]]
    outside = (tmp_path / "out side" / "m.keras").resolve().as_uri()
    assert {loc["uri"] for loc in locations} == {"weird%20dir/a%2Cb%3Ac%25d.keras", outside}
    assert outside.startswith("file:///") and "%20" in outside
    for loc in locations:
        assert ("uriBaseId" in loc) != loc["uri"].startswith("file:")
        assert loc.get("uriBaseId") in (None, "%SRCROOT%")
    assert unquote("weird%20dir/a%2Cb%3Ac%25d.keras") == "weird dir/a,b:c%d.keras"
    # %SRCROOT% is declared (§3.14.14: absolute, ending in '/') as the config's folder, so that a
    # viewer other than GitHub resolves the relative URIs to the files linted
    base = document["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert base == project.resolve().as_uri() + "/"
    relative = next(loc["uri"] for loc in locations if "uriBaseId" in loc)
    assert unquote(urljoin(base, relative)) == unquote((project / "weird dir" / "a,b:c%d.keras").resolve().as_uri())
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(document, json.loads(SARIF_SCHEMA.read_text()))


def test_no_report_links_to_a_placeholder_address(report):
    """pyproject.toml declares no documentation location: SARIF's informationUri/helpUri are optional
    and left out, json-lines' url is null, rather than pointing at an invented address."""
    sarif = render(renderer("sarif"), report)
    lines = render(render_json_lines, report)
    assert "example.invalid" not in sarif + lines and "http" not in sarif.replace(SCHEMA_URI, "")
    driver = json.loads(sarif)["runs"][0]["tool"]["driver"]
    assert "informationUri" not in driver and all("helpUri" not in rule for rule in driver["rules"])
    assert {json.loads(line)["url"] for line in lines.splitlines()} == {None}


# ---------------------------------------------------------------------------
# GitHub


def test_github_escapes_like_actions_core():
    assert escape_data("100% a\r\nb") == "100%25 a%0D%0Ab"
    assert escape_property("dense/kernel:0,x%") == "dense/kernel%3A0%2Cx%25"


def test_github_annotation_with_a_hostile_layer_and_path():
    report = synthetic(layer="a:b,c%d\nx", path="models/we:ird,name%.keras")
    lines = render(render_github, report).splitlines()
    assert len(lines) == 1  # the newline in the name did not break the command
    line = lines[0]
    props, _, message = line[len("::error "):].partition("::")
    assert props == "file=models/we%3Aird%2Cname%25.keras,line=1,title=reglint (RL001)"
    assert "[a:b,c%25dx]" in message  # control characters dropped, % escaped
    assert "%0Afix: lower it" in message
    assert "\r" not in line


def test_github_real_report_levels_and_order(report):
    lines = render(render_github, report).splitlines()
    assert lines and all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines)
    ranks = [{"::error": 3, "::warning": 2, "::notice": 1}[line.split(" ", 1)[0]] for line in lines]
    assert ranks == sorted(ranks, reverse=True)
    assert any("title=reglint (RL001)" in line and "models/wreck.keras" in line for line in lines)
    assert any("title=reglint (RL900)" in line for line in lines)


def test_github_caps_annotations_per_level():
    findings = [Finding(code="RL001", name="x", severity=Severity.ERROR, message=f"m{i}", layer=f"d{i}")
                for i in range(25)]
    findings += [Finding(code="RL005", name="y", severity=Severity.INFO, message="n", layer="z")]
    report = RunReport([FileReport(path="a.keras", findings=findings)])
    lines = render(render_github, report).splitlines()
    assert sum(line.startswith("::error ") for line in lines) == 10
    assert sum(line.startswith("::notice file=") for line in lines) == 1  # info -> notice
    assert lines[-1].startswith("::notice::15 more findings")


@pytest.mark.parametrize(("errors", "notes", "annotated_notes", "left_out"),
                         [(12, 10, 9, 3), (12, 3, 3, 2), (0, 10, 10, 0), (0, 11, 9, 2), (10, 10, 10, 0)])
def test_github_never_writes_an_eleventh_notice(errors, notes, annotated_notes, left_out):
    """Review 26, D4: the 'N more findings' line is a notice too; with 10
    info findings to annotate it was the 11th, which GitHub drops."""
    findings = [Finding(code="RL001", name="x", severity=Severity.ERROR, message=f"m{i}", layer=f"d{i}")
                for i in range(errors)]
    findings += [Finding(code="RL005", name="y", severity=Severity.INFO, message=f"n{i}", layer=f"z{i}")
                 for i in range(notes)]
    lines = render(render_github, RunReport([FileReport(path="a.keras", findings=findings)])).splitlines()
    assert sum(line.startswith("::notice") for line in lines) <= 10
    assert sum(line.startswith("::notice file=") for line in lines) == annotated_notes
    summary = [line for line in lines if line.startswith("::notice::")]
    assert summary == ([f"::notice::{left_out} more findings not annotated (GitHub shows 10 per level per step); "
                        "see the job summary or the SARIF report"] if left_out else [])


def test_github_step_summary(report, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    render(render_github, report)
    text = summary.read_text()
    assert text.startswith("earlier step\n## reglint")  # appended, not replaced
    assert "| Model | Severity | Rule | Layer | Message |" in text
    assert "`models/wreck.keras`" in text and "RL001" in text


def test_github_summary_cells_cannot_break_the_table(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    render(render_github, synthetic(layer="a|b`<script>"))
    row = next(line for line in summary.read_text().splitlines() if line.startswith("| `models"))
    assert row.count(" | ") == 4  # the pipes in the name are escaped
    assert "`a\\|b'<script>`" in row  # a code span shows HTML literally
    assert row.endswith("too much at a\\|b`&lt;script&gt; |")  # plain text is escaped


# ---------------------------------------------------------------------------
# JUnit, GitLab, concise, pylint, json-lines


def test_junit_is_well_formed_xml(report):
    root = ET.fromstring(render(render_junit, report).encode("utf-8"))
    assert root.tag == "testsuites" and root.get("name") == "reglint"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"models/broken.keras", "models/healthy.keras", "models/tiny_bad.keras",
                           "models/wreck.keras"}
    healthy = suites["models/healthy.keras"]
    assert healthy.get("failures") == "0" and len(healthy.findall("testcase")) == 1
    assert suites["models/broken.keras"].find("testcase/error") is not None
    tiny = suites["models/tiny_bad.keras"]
    names = {case.get("name") for case in tiny.findall("testcase")}
    assert "RL002 [dense_0]" in names
    assert all(case.get("classname").startswith("reglint.RL") for case in tiny.findall("testcase"))
    assert int(root.get("failures")) == sum(int(s.get("failures")) for s in suites.values())


def test_junit_survives_hostile_names():
    text = render(render_junit, synthetic(layer='x"<&>\x1b[31m\x00\ufffe'))
    case = ET.fromstring(text.encode("utf-8")).find("testsuite/testcase")
    assert case.get("name") == 'RL001 [x"<&>]'


def test_gitlab_code_quality(report):
    issues = json.loads(render(render_gitlab, report))
    assert issues and {i["severity"] for i in issues} <= {"critical", "minor", "info"}
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    for issue in issues:
        assert issue["location"]["positions"]["begin"]["line"] == 1
        assert issue["location"]["path"].startswith("models/")
        assert issue["check_name"].startswith("RL") and issue["description"]


def test_concise_and_pylint_lines(report):
    concise = render(render_concise, report).splitlines()
    assert any(line.startswith("models/wreck.keras: RL001 ") for line in concise)
    assert any(line.startswith("models/tiny_bad.keras: RL002 [dense_0] ") for line in concise)
    assert any(line.startswith("models/broken.keras: RL900 ") for line in concise)
    # the full report's count by severity (the unreadable file is counted apart)
    assert concise[-1] == f"Found {len(concise) - 2} findings ({len(concise) - 2} errors) in 4 files; 1 unreadable."
    pylint = render(render_pylint, report).splitlines()
    assert any(line.startswith("models/wreck.keras:1: [RL001] ") for line in pylint)
    assert len(pylint) == len(concise) - 1


def test_concise_clean_run():
    assert render(render_concise, RunReport([FileReport(path="a.keras")])) == "All checks passed!\n"


def test_json_lines_one_object_per_finding(report):
    lines = render(render_json_lines, report).splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == sum(len(f.findings) for f in report.files) + 1
    assert {"code", "name", "severity", "message", "filename", "layer", "url", "fingerprint"} <= set(records[0])
    assert any(r["code"] == "RL900" and r["filename"] == "models/broken.keras" for r in records)


def test_json_keeps_unreadable_files_as_errors(report):
    doc = json.loads(render(renderer("json"), report))
    broken = next(f for f in doc["files"] if f["path"].endswith("broken.keras"))
    assert broken["error"] and not broken["findings"]


def test_machine_formats_strip_escape_sequences():
    report = synthetic(layer="dense\x1b[31m_red\x1b[0m")
    for fmt in ("concise", "pylint", "json-lines", "gitlab", "github", "junit", "sarif"):
        assert "\x1b" not in render(renderer(fmt), report), fmt
        assert "\\u001b" not in render(renderer(fmt), report), fmt


# ---------------------------------------------------------------------------
# through the command line


def test_cli_writes_annotations_and_a_sarif_file_in_one_run(project):
    from typer.testing import CliRunner

    from reglint.cli.app import app

    result = CliRunner().invoke(app, ["check", "models/wreck.keras", "models/healthy.keras", "--no-cache",
                                      "--output-format", "github,sarif:out.sarif"])
    assert result.exit_code == 1, result.output
    assert "::error file=models/wreck.keras,line=1,title=reglint (RL001)::" in result.stdout
    sarif = json.loads((project / "out.sarif").read_text())
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} >= {"RL001"}


def test_cli_output_is_not_wrapped(project):
    """Machine formats bypass rich: a long record stays on one line."""
    env = {**os.environ, "COLUMNS": "40"}
    reglint = Path(sys.executable).with_name("reglint")
    done = subprocess.run([str(reglint), "check", "models/wreck.keras", "-f", "json-lines", "--no-cache"],
                          capture_output=True, text=True, env=env, cwd=project)
    assert done.returncode == 1, done.stderr
    assert len(done.stdout.splitlines()) == 1 and len(done.stdout) > 40


def test_machine_paths_and_fingerprints_are_the_repositorys_not_the_working_directorys(tmp_path):
    """Review 35, D4: run from a subfolder of the checkout, SARIF named the
    model 'keras/x.keras' with another fingerprint than from the root, so
    GitHub would attach alerts to a file that does not exist and reopen
    them all. Paths in SARIF, GitLab and the annotations, and every
    fingerprint, are relative to the repository root wherever reglint runs."""
    import shutil

    from helpers import FIXTURES

    (tmp_path / ".git").mkdir()  # the repository root, as a checkout has it
    (tmp_path / "ml" / "keras").mkdir(parents=True)
    shutil.copy(FIXTURES / "keras" / "scenario_sgd_unstable.keras", tmp_path / "ml" / "keras" / "x.keras")

    def run(cwd: Path, path: str, fmt: str) -> str:
        done = subprocess.run([sys.executable, "-m", "reglint", "check", path, "-f", fmt, "--no-cache"],
                              capture_output=True, text=True, cwd=cwd, timeout=120)
        assert done.returncode == 1, done.stderr
        return done.stdout

    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"  # in no checkout (review 36, D9)
    outside.mkdir()
    model = str(tmp_path / "ml" / "keras" / "x.keras")
    for cwd, path in ((tmp_path, "ml/keras/x.keras"), (tmp_path / "ml", "keras/x.keras"), (outside, model)):
        sarif = json.loads(run(cwd, path, "sarif"))["runs"][0]
        results = sarif["results"]
        if cwd != outside:
            assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results} == \
                {"ml/keras/x.keras"}
            assert sarif["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.as_uri() + "/"
        prints = sorted(r["partialFingerprints"]["primaryLocationLineHash"] for r in results)
        gitlab = sorted(issue["fingerprint"] for issue in json.loads(run(cwd, path, "gitlab")))
        lines = sorted(json.loads(line)["fingerprint"] for line in run(cwd, path, "json-lines").splitlines())
        annotations = run(cwd, path, "github")
        if cwd == tmp_path:
            first = (prints, gitlab, lines)
        else:
            assert (prints, gitlab, lines) == first
        assert cwd == outside or "file=ml/keras/x.keras" in annotations
