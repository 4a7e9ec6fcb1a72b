"""The HTML report (``--format html``): one self-contained file with the model
summary, findings, per-layer table, a parameters/penalty bar chart and a
lambda sweep, on real fixtures and on a model whose layer is named
``<script>alert(1)</script>``.

The browser tests open the report in headless Chromium (Debian's
``chromium`` package) and are skipped, with the reason, where
``/usr/bin/chromium`` is absent. ``REGLINT_UPDATE_SCREENSHOT=1`` rewrites
``docs/report-screenshot.png`` from the penalty-dominates fixture.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reglint.config.settings import Settings
from reglint.engine.report import FileReport, RunReport
from reglint.engine.runner import lint_file
from reglint.reporters import renderer
from reglint.reporters.html import Thresholds, html_document, json_for_script, render_html

ROOT = Path(__file__).resolve().parents[1]
KERAS = ROOT / "fixtures" / "keras"
DOMINATES = KERAS / "scenario_penalty_dominates.keras"
HEALTHY_SGD = KERAS / "scenario_healthy_sgd.keras"
SGD_UNSTABLE = KERAS / "scenario_sgd_unstable.keras"
WD_TOO_FAST = KERAS / "scenario_wd_too_fast.keras"
ADAM_L2 = KERAS / "scenario_adam_coupled_l2.keras"
HOSTILE_NAME = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "docs" / "report-screenshot.png"
DOCS_WINDOW = "1280,2300"  # the whole penalty-dominates report
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def hostile_copy(folder: Path) -> Path:
    """scenario_penalty_dominates.keras with its first Dense layer renamed
    to a script tag (config.json edited through zipfile)."""
    out = folder / "hostile_name.keras"
    buffer = io.BytesIO()
    with zipfile.ZipFile(DOMINATES) as zin, zipfile.ZipFile(buffer, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "config.json":
                cfg = json.loads(data)
                layers = cfg["config"]["layers"]
                first_dense = next(layer for layer in layers if layer["class_name"] == "Dense")
                first_dense["config"]["name"] = HOSTILE_NAME
                data = json.dumps(cfg).encode()
            zout.writestr(info, data)
    out.write_bytes(buffer.getvalue())
    return out


def run_report(*paths: Path, settings: Settings | None = None) -> RunReport:
    settings = settings or Settings()
    return RunReport(files=[lint_file(str(p), settings) for p in paths])


def render(report: RunReport, settings: Settings | None = None) -> str:
    out = io.StringIO()
    renderer("html")(report, out, settings=settings or Settings())
    return out.getvalue()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    return hostile_copy(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def reports(hostile) -> dict[str, tuple[RunReport, str]]:
    out = {}
    for key, path in (("dominates", DOMINATES), ("healthy", HEALTHY_SGD), ("hostile", hostile)):
        report = run_report(path)
        out[key] = (report, render(report))
    return out


class Elements(HTMLParser):
    """Start tags with their attributes, and the text of <script> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in_script: dict | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        found = []
        for name, a in self.tags:
            if name != tag:
                continue
            if all(cls in (a.get("class") or "").split() if key == "class_" else a.get(key) == cls
                   for key, cls in attrs.items()):
                found.append(a)
        return found


def parse(text: str) -> Elements:
    parser = Elements()
    parser.feed(text)
    parser.close()
    return parser


def embedded_json(text: str) -> dict:
    scripts = parse(text).scripts
    data = [body for attrs, body in scripts if attrs.get("id") == "reglint-data"]
    assert len(data) == 1
    return json.loads(data[0])


# ---------------------------------------------------------------------------
# the document


@pytest.mark.parametrize("key", ["dominates", "healthy", "hostile"])
def test_self_contained(reports, key):
    _, text = reports[key]
    assert text.startswith("<!DOCTYPE html>")
    parsed = parse(text)
    for tag, attrs in parsed.tags:
        for name in ("src", "href", "xlink:href", "srcset", "poster", "data", "action", "formaction"):
            value = (attrs.get(name) or "").strip().lower()
            assert not re.match(r"^(https?:|//|ftp:|file:)", value), (tag, name, value)
    assert not parsed.find("link") and not parsed.find("iframe") and not parsed.find("img")
    assert not re.search(r"@import|url\(\s*['\"]?\s*(https?:|//)", text, re.I)
    # the only script is inert data
    assert [a.get("type") for a, _ in parsed.scripts] == ["application/json"]
    assert "<style>" in text and "@media print" in text


def test_hostile_name_is_escaped(reports):
    report, text = reports["hostile"]
    layers = [layer.path for layer in report.files[0].model.layers]
    assert HOSTILE_NAME in layers  # the mutation took
    assert "<script>alert" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    parsed = parse(text)
    assert len(parsed.scripts) == 1
    rows = parsed.find("tr", **{"data-layer": HOSTILE_NAME})
    assert rows, "the layer row carries the name, escaped in the attribute"
    assert embedded_json(text) == report.to_dict()


@pytest.mark.parametrize("key", ["dominates", "healthy", "hostile"])
def test_embedded_json_is_the_json_report(reports, key):
    report, text = reports[key]
    assert embedded_json(text) == report.to_dict()
    # and it is what --format json writes
    out = io.StringIO()
    renderer("json")(report, out)
    assert embedded_json(text) == json.loads(out.getvalue())


def test_json_for_script_cannot_close_the_element():
    data = {"name": "</script><script>alert(1)</script>", "amp": "a&b", "sep": "x\u2028y"}
    text = json_for_script(data)
    assert "</" not in text and "<" not in text and "&" not in text
    assert json.loads(text) == data


def test_numbers_match_the_json(reports):
    report, text = reports["dominates"]
    data = report.to_dict()["files"][0]
    analysis = data["model"]["analysis"]
    parsed = parse(text)
    (section,) = parsed.find("section", class_="file")
    assert float(section["data-penalty-ratio"]) == analysis["penalty_ratio"]
    assert float(section["data-penalty-init"]) == analysis["penalty_init"]
    assert float(section["data-loss-scale"]) == analysis["loss_scale"]["value"]
    assert int(section["data-params-total"]) == data["model"]["params"]["total"]
    # findings: one row each, same codes and severities, in order
    rows = parsed.find("tr", class_="finding")
    assert [(r["data-code"], r["data-severity"]) for r in rows] == \
        [(f["code"], f["severity"]) for f in data["findings"]]
    assert [r["data-code"] for r in rows] == ["RL001"]
    # per-layer rows: params and the penalty at init per variable, summed
    layer_rows = {r["data-layer"]: r for r in parsed.find("tr") if r.get("data-params") is not None}
    for layer in data["model"]["layers"]:
        if not layer["variables"]:
            continue
        row = layer_rows[layer["path"]]
        assert int(row["data-params"]) == layer["params"]["trainable"] + layer["params"]["non_trainable"]
        init = sum(v.get("penalty_init") or 0.0 for v in layer["variables"])
        if init:
            assert float(row["data-penalty-init"]) == pytest.approx(init, rel=1e-12)
    # the RL001 finding's per-layer shares are the bar chart's penalty shares
    shares = data["findings"][0]["values"]["layer_shares"]
    bars = parsed.find("rect", class_="bar-penalty")
    assert len(bars) == 3
    groups = [g["data-layer"] for g in parsed.find("g", class_="bar-row")]
    for layer, bar in zip(groups, bars):
        assert float(bar["data-share"]) == pytest.approx(shares[layer], rel=1e-12)
    params = parsed.find("rect", class_="bar-params")
    assert sum(int(b["data-value"]) for b in params) == data["model"]["params"]["total"]
    # the sweep starts from the same rho
    (sweep,) = parsed.find("svg", class_="sweep")
    assert float(sweep["data-rho-today"]) == pytest.approx(analysis["penalty_ratio"], rel=1e-12)
    assert "43.2 (4,319%)" in text  # the card: g(rho) and pct(rho), as the terminal prints them


def test_sections_charts_and_text(reports):
    _, text = reports["dominates"]
    for heading in ("Model", "Findings (1)", "Layers", "Parameters and penalty by layer",
                    "What a different lambda would do"):
        assert f">{heading}</h3>" in text
    parsed = parse(text)
    svgs = parsed.find("svg")
    assert len(svgs) == 2 and all(s.get("role") == "img" and s.get("aria-labelledby") for s in svgs)
    assert text.count("<title id=") == 2 and text.count("<desc id=") == 2
    for needed in ("keras_v3", "118,794 total", "SGD lr 0.01", "ln 10 = 2.3", "from inferred",
                   "penalty-dominates-loss", "scale every lambda by 0.023", "kernel: L2(0.2)"):
        assert needed in text, needed
    # SGD: the shrink curve, RL002's zones, the safe range and today's marker
    assert parsed.find("path", class_="curve-rho") and parsed.find("path", class_="curve-shrink")
    assert parsed.find("g", class_="zone-error") and parsed.find("g", class_="zone-warning")
    assert parsed.find("g", class_="safe") and parsed.find("g", class_="today")
    assert "today's lambda is 8.6\u00d7 too large" in text
    # severity is spelled out, not only coloured
    assert "\u2716</span> error" in text


def test_thresholds_follow_settings():
    from reglint.engine.rule import get_rule

    defaults = Thresholds.from_settings(Settings())
    rl001 = get_rule("RL001")
    assert defaults.rho_warning == rl001.options["penalty-ratio-warning"].default
    assert defaults.rho_error == rl001.options["penalty-ratio-error"].default
    assert defaults.f_warning == get_rule("RL002").options["sgd-stability-warning"].default
    settings = Settings(thresholds={"penalty-ratio-warning": 0.05, "penalty-ratio-error": 0.2})
    custom = Thresholds.from_settings(settings)
    assert (custom.rho_warning, custom.rho_error) == (0.05, 0.2)
    report = run_report(HEALTHY_SGD, settings=settings)
    text = html_document(report, settings)
    assert "RL001 warning: \u03c1 \u2265 0.05" in text and "RL001 error: \u03c1 \u2265 0.2" in text
    (sweep,) = parse(text).find("svg", class_="sweep")
    rho = report.to_dict()["files"][0]["model"]["analysis"]["penalty_ratio"]
    assert float(sweep["data-safe-multiplier"]) == pytest.approx(0.05 / rho)


def test_optimizer_variants():
    report = run_report(SGD_UNSTABLE, WD_TOO_FAST, ADAM_L2)
    text = render(report)
    parsed = parse(text)
    kinds = [g.get("data-kind") for g in parsed.find("g", class_="panel-shrink")]
    assert kinds == ["sgd", "decoupled", "none"]  # SGD + L2, AdamW decay only, Adam + coupled L2
    assert "Adam-family optimizer: the coupled penalty gradient is normalised" in text
    assert "decoupled weight_decay: lr \u00d7 wd = 0.5 per step" in text
    assert "RL002 error: f \u2265 1, diverges" in text
    assert "Nothing to plot: no weight regularizer in this model." in text
    assert embedded_json(text) == report.to_dict()


def test_several_files_and_unreadable(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip")
    report = run_report(DOMINATES, HEALTHY_SGD, bad)
    report.files.append(FileReport(path=str(tmp_path / "missing.keras"), error="no such file or folder"))
    text = render(report)
    parsed = parse(text)
    toc = parsed.find("nav", class_="toc")
    assert len(toc) == 1
    links = [a["href"] for a in parsed.find("a")]
    sections = [s["id"] for s in parsed.find("section", class_="file")]
    assert links == [f"#{s}" for s in sections] and len(sections) == 4
    unreadable = parsed.find("section", **{"data-unreadable": "true"})
    assert len(unreadable) == 2
    assert "no such file or folder" in text and report.files[2].error.split(" (")[0] in text
    assert "Found 1 finding (1 error) in 4 files; 2 unreadable." in text
    assert embedded_json(text) == report.to_dict()


def test_profile_key_is_rendered_when_present():
    report = run_report(HEALTHY_SGD)
    assert "Profile (measured)" not in render(report)
    # reglint profile's JSON puts the measurement under model.analysis.profile
    data = report.to_dict()
    data["files"][0]["model"]["analysis"]["profile"] = {
        "device": "CPU", "seconds": {"load": 0.3, "run": 2.5},
        "data": {"source": "synthetic", "samples": 32, "batch_size": 32},
        "initial": {"data_loss": 2.4, "penalty": 0.06, "weight_penalty": 0.06, "penalty_ratio": 0.025},
        "variables": [{"layer": HOSTILE_NAME, "variable": "kernel", "params": 4096,
                       "regularizer": {"class": "L2", "l2": 5e-4}, "penalty": 0.03, "share": 0.5,
                       "grad_data_norm": 2.0, "grad_penalty_norm": 0.1, "ratio": 0.05, "update_ratio": 0.01}],
        "steps": {"requested": 3, "taken": 3, "trajectory": [
            {"step": i, "data_loss": 2.4 / i, "penalty": 0.06} for i in (1, 2, 3)]},
        "outcome": {"label": "learning", "reason": "the data loss fell", "trivial_loss": 2.3},
        "notes": ["synthetic data"], "future_key": {"answer": 42},
    }
    out = io.StringIO()
    render_html(report, out, settings=Settings(), data=data)
    text = out.getvalue()
    assert embedded_json(text) == data
    parsed = parse(text)
    assert "Profile (measured)" in text and "static estimate 0.0265" in text and "future_key" in text
    assert parsed.find("svg", class_="trajectory") and len(parsed.find("path", class_="curve-data-loss")) == 1
    assert [r["data-layer"] for r in parsed.find("tr") if r.get("data-ratio")] == [HOSTILE_NAME]
    assert "<script>alert" not in text
    # or carried by the FileReport itself
    report.files[0].profile = {"steps": {"requested": 20, "taken": 0, "trajectory": []}, "device": "cpu"}
    assert "Profile (measured)" in render(report)


def test_cli_writes_the_file(tmp_path):
    target = tmp_path / "report.html"
    proc = subprocess.run([sys.executable, "-m", "reglint", "check", str(DOMINATES), "--no-cache",
                           "--format", "html", "--output-file", str(target)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 1, proc.stderr  # an RL001 error
    text = target.read_text(encoding="utf-8")
    assert proc.stdout == ""
    data = embedded_json(text)
    assert data["files"][0]["findings"][0]["code"] == "RL001"
    assert "What a different lambda would do" in text


def test_render_html_signature():
    out = io.StringIO()
    render_html(RunReport(), out, settings=None)
    text = out.getvalue()
    assert "Found 0 findings in 0 files." in text
    assert embedded_json(text) == {"version": 1, "files": []}


# ---------------------------------------------------------------------------
# headless Chromium

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium not installed (/usr/bin/chromium; Debian: apt-get install -y chromium)")


def chromium(tmp_path: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout)


@needs_chromium
@pytest.mark.parametrize("key", ["dominates", "healthy", "hostile"])
def test_chromium_renders_charts_and_findings(reports, key, tmp_path):
    report, text = reports[key]
    page = tmp_path / "report.html"
    page.write_text(text, encoding="utf-8")
    proc = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = parse(proc.stdout)
    # one inert script: the hostile name did not become an element
    assert [a.get("type") for a, _ in dom.scripts] == ["application/json"]
    assert "<script>alert" not in proc.stdout
    # charts
    assert len(dom.find("svg", class_="chart")) == 2
    bars = dom.find("rect", class_="bar")
    n_layers = sum(1 for layer in report.files[0].model.layers if layer.variables)
    assert len(bars) == 2 * n_layers
    assert all(float(b["width"]) >= 0 for b in bars)
    assert any(float(b["width"]) > 50 for b in dom.find("rect", class_="bar-params"))
    curves = dom.find("path", class_="curve")
    assert {c["class"].split()[1] for c in curves} == {"curve-rho", "curve-shrink"}
    assert all(len(c["d"].split("L")) > 50 for c in curves)
    # findings rows
    rows = dom.find("tr", class_="finding")
    assert len(rows) == len(report.files[0].findings)
    assert [r["data-code"] for r in rows] == [f.code for f in report.files[0].findings]
    # the embedded JSON survives the browser's parser
    assert embedded_json(proc.stdout) == report.to_dict()


@needs_chromium
def test_chromium_screenshot(reports, tmp_path):
    _, text = reports["dominates"]
    page = tmp_path / "report.html"
    page.write_text(text, encoding="utf-8")
    png = tmp_path / "report.png"
    proc = chromium(tmp_path, f"--screenshot={png}", "--window-size=1280,2000", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000  # not a blank page


@needs_chromium
@pytest.mark.skipif(not os.environ.get("REGLINT_UPDATE_SCREENSHOT"),
                    reason="set REGLINT_UPDATE_SCREENSHOT=1 to rewrite docs/report-screenshot.png")
def test_update_docs_screenshot(tmp_path):
    report = run_report(DOMINATES)
    report.files[0].path = DOMINATES.relative_to(ROOT).as_posix()  # as `reglint check` from the root shows it
    page = tmp_path / "report.html"
    page.write_text(render(report), encoding="utf-8")
    png = tmp_path / "report.png"
    proc = chromium(tmp_path, f"--screenshot={png}", f"--window-size={DOCS_WINDOW}", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert png.stat().st_size < 400_000
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(png, SCREENSHOT)
