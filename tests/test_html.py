"""The HTML report (``--format html``): one self-contained file with the model
summary, findings and their fixes, per-layer table, a parameters/penalty bar
chart and each rule's lambda curve, on real fixtures and on a model whose
layer is named ``<script>alert(1)</script>``.

The page embeds the JSON report and is drawn from it: the tests compare the
embedded JSON with ``reglint check --format json``, the printed fixes with
the JSON's ``fix`` objects over every fixture, and the chart's markers with
the JSON's curves, also after editing the dict the page is drawn from.

The browser tests open the report in headless Chromium (Debian's
``chromium`` package) and are skipped, with the reason, where
``/usr/bin/chromium`` is absent. ``REGLINT_UPDATE_SCREENSHOT=1`` rewrites
``docs/report-screenshot.png`` from the penalty-dominates fixture.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reglint.engine.fmt import g
from reglint.engine.report import FileReport, RunReport
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.reporters import renderer
from reglint.reporters.html import html_document, json_for_script, render_html

ROOT = Path(__file__).resolve().parents[1]
KERAS = ROOT / "fixtures" / "keras"
ONNX = ROOT / "fixtures" / "onnx"
DOMINATES = KERAS / "scenario_penalty_dominates.keras"
HEALTHY_SGD = KERAS / "scenario_healthy_sgd.keras"
SGD_UNSTABLE = KERAS / "scenario_sgd_unstable.keras"
WD_TOO_FAST = KERAS / "scenario_wd_too_fast.keras"
ADAM_L2 = KERAS / "scenario_adam_coupled_l2.keras"
NORM_REGULARIZED = KERAS / "scenario_norm_regularized.keras"
HOSTILE_NAME = "<script>alert(1)</script>"
SCRIPT_ID = "reglint-report"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "docs" / "report-screenshot.png"
DOCS_WINDOW = "1280,2420"  # the whole penalty-dominates report
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


def render(report: RunReport, settings: Settings | None = None, data: dict | None = None) -> str:
    out = io.StringIO()
    renderer("html")(report, out, settings=settings or Settings(), data=data)
    return out.getvalue()


def reglint(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reglint", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


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
    """Start tags with their attributes, the text of <script> elements, and
    the visible text (outside scripts and styles)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._in_script: dict | None = None
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))
        self._in_style = self._in_style or tag == "style"

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)
        elif not self._in_style:
            self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        found = []
        for name, a in self.tags:
            if name != tag:
                continue
            if all(cls in (a.get("class") or "").split() if key == "class_" else a.get(key) == cls
                   for key, cls in attrs.items()):
                found.append(a)
        return found

    @property
    def visible(self) -> str:
        return "".join(self.text)


def parse(text: str) -> Elements:
    parser = Elements()
    parser.feed(text)
    parser.close()
    return parser


def embedded_json(text: str) -> dict:
    scripts = parse(text).scripts
    data = [body for attrs, body in scripts if attrs.get("id") == SCRIPT_ID]
    assert len(data) == 1
    return json.loads(data[0])


def log_position(value: float, lo: float, hi: float, p0: float, p1: float) -> float:
    """Where a log axis from ``lo`` (at pixel ``p0``) to ``hi`` (at ``p1``) puts ``value``."""
    return p0 + (math.log10(value) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (p1 - p0)


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
    assert "<style>" in text and "@media print" in text  # the package's style.css, inlined


def test_stylesheet_ships_as_package_data():
    """The CSS is a file in the package, declared as package data so a wheel
    carries it, and the page inlines it whole."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    from reglint.reporters.html.page import stylesheet

    css_file = ROOT / "src" / "reglint" / "reporters" / "html" / "style.css"
    assert stylesheet() == css_file.read_text(encoding="utf-8")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "reglint.reporters.html" in config["packages"]
    assert "*.css" in config["package-data"]["reglint.reporters.html"]
    assert stylesheet() in html_document({"version": 1, "files": []})


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
    # the fix names the layer too, escaped
    assert parsed.find("li", class_="change", **{"data-layer": HOSTILE_NAME})
    assert embedded_json(text) == report.to_dict()


@pytest.mark.parametrize("key", ["dominates", "healthy", "hostile"])
def test_embedded_json_is_the_json_report(reports, key):
    report, text = reports[key]
    assert embedded_json(text) == report.to_dict()
    out = io.StringIO()
    renderer("json")(report, out)
    assert embedded_json(text) == json.loads(out.getvalue())


@pytest.mark.parametrize("path", [DOMINATES, SGD_UNSTABLE, ONNX / "train_l2_penalty.onnx"],
                         ids=lambda p: p.name)
def test_embedded_json_equals_check_format_json(path, tmp_path):
    """Two separate runs of the CLI: the page's data is what ``--format
    json`` prints for the same file (the report has no timestamps)."""
    relative = path.relative_to(ROOT).as_posix()
    as_json = reglint("check", relative, "--no-cache", "--format", "json")
    page = tmp_path / "report.html"
    as_html = reglint("check", relative, "--no-cache", "--format", "html", "--output-file", str(page))
    assert as_json.returncode == as_html.returncode and as_json.returncode in (0, 1), as_json.stderr
    assert embedded_json(page.read_text(encoding="utf-8")) == json.loads(as_json.stdout)


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
    assert float(section["data-penalty-init-all"]) == analysis["penalty_init_all"]
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
    for layer, bar in zip(groups, bars, strict=True):
        assert float(bar["data-share"]) == pytest.approx(shares[layer], rel=1e-12)
    params = parsed.find("rect", class_="bar-params")
    assert sum(int(b["data-value"]) for b in params) == data["model"]["params"]["total"]
    # one panel per curve of analysis.sweep, today's value from the curve
    panels = parsed.find("g", class_="panel")
    assert [p["data-code"] for p in panels] == [c["code"] for c in analysis["sweep"]["curves"]]
    todays = [float(t["data-value"]) for t in parsed.find("g", class_="today")]
    assert todays == [c["today"] for c in analysis["sweep"]["curves"]]
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
    visible = parsed.visible
    for needed in ("keras_v3", "118,794 total", "SGD lr 0.01", "ln 10 = 2.3", "from inferred",
                   "penalty-dominates-loss", "scale every lambda by 0.023", "kernel: L2(0.2)",
                   "aim: the penalty at 100% of the data-loss scale", "dense_1 kernel lambda 0.2 -> 0.00463"):
        assert needed in visible, needed
    # both rules' curves, their zones, the safe range, today's point and RL001's fix
    assert parsed.find("path", class_="curve-RL001") and parsed.find("path", class_="curve-RL002")
    assert parsed.find("g", class_="zone-error") and parsed.find("g", class_="zone-warning")
    assert parsed.find("g", class_="safe") and parsed.find("g", class_="today")
    assert [m["data-code"] for m in parsed.find("g", class_="marker-fix")] == ["RL001"]
    assert "today's \u03bb is 8.6\u00d7 too large" in visible
    assert "RL001 fix: \u00d70.023 = 0.00463" in visible  # the marker's label: RL001's suggested lambda
    # severity is spelled out, not only coloured
    assert "\u2716</span> error" in text


def test_fix_objects_are_printed(reports):
    """Each finding's fix: the aim and one line per change, with the JSON's
    numbers in the row's attributes and g() of them in the visible text."""
    report, text = reports["dominates"]
    (finding,) = report.to_dict()["files"][0]["findings"]
    parsed = parse(text)
    changes = parsed.find("li", class_="change")
    assert [(c["data-layer"], c["data-target"], c["data-parameter"]) for c in changes] == \
        [(c["layer"], c["target"], c["parameter"]) for c in finding["fix"]["changes"]]
    for li, change in zip(changes, finding["fix"]["changes"], strict=True):
        assert float(li["data-current"]) == change["current"]
        assert float(li["data-suggested"]) == change["suggested"]
    assert f"aim: {finding['fix']['aim']}" in parsed.visible
    # drawn from the dict: an edited fix is what the page prints
    data = report.to_dict()
    data["files"][0]["findings"][0]["fix"]["changes"][1]["suggested"] = 0.000123456
    edited = parse(render(report, data=data))
    assert [float(li["data-suggested"]) for li in edited.find("li", class_="change")][1] == 0.000123456
    assert "dense_1 kernel lambda 0.2 -> 1.23e-4" in edited.visible


def test_levels_follow_settings():
    """Thresholds set by the user move the rules' levels in the JSON curves,
    and the page draws those."""
    # RL001's error also needs the per-weight pull 2*l2 (1e-3 here) at its level: set low, the ratio decides
    settings = Settings(thresholds={"penalty-ratio-warning": 0.005, "penalty-ratio-error": 0.02,
                                    "penalty-pull-error": 1e-6})
    report = run_report(HEALTHY_SGD, settings=settings)
    data = report.to_dict()
    (rl001,) = [c for c in data["files"][0]["model"]["analysis"]["sweep"]["curves"] if c["code"] == "RL001"]
    assert (rl001["warning"], rl001["error"]) == (0.005, 0.02)
    # at its default the pull sets the error level on the ratio's axis: rho * 0.4 / pull
    default = run_report(HEALTHY_SGD, settings=Settings(thresholds={"penalty-ratio-error": 0.02})).to_dict()
    (curve,) = [c for c in default["files"][0]["model"]["analysis"]["sweep"]["curves"] if c["code"] == "RL001"]
    assert curve["error"] == pytest.approx(curve["slope"] * 0.4 / (2 * 5e-4))
    text = render(report, settings)
    visible = parse(text).visible
    assert "RL001 warning: penalty_ratio \u2265 0.005" in visible
    assert "RL001 error: penalty_ratio \u2265 0.02" in visible
    (sweep,) = parse(text).find("svg", class_="sweep")
    rho = data["files"][0]["model"]["analysis"]["penalty_ratio"]
    assert float(sweep["data-safe-multiplier"]) == pytest.approx(0.005 / rho)
    assert float(sweep["data-safe-multiplier"]) == data["files"][0]["model"]["analysis"]["sweep"]["safe_multiplier"]


def test_optimizer_variants():
    report = run_report(SGD_UNSTABLE, WD_TOO_FAST, ADAM_L2)
    text = render(report)
    parsed = parse(text)
    # SGD + L2 on three Dense in series: RL001, RL002 and RL024; AdamW decay only: RL003 on its own
    # knob; Adam + coupled L2: RL001 only
    panels = [(p["data-code"], p["data-knob"]) for p in parsed.find("g", class_="panel")]
    assert panels == [("RL001", "lambda"), ("RL002", "lambda"), ("RL024", "lambda"), ("RL003", "weight_decay"),
                      ("RL001", "lambda")]
    visible = parsed.visible
    assert "RL002 error: stability_fraction \u2265 1" in visible
    assert ">What a different weight_decay would do</h3>" in text
    assert "No rule's quantity depends on a regularizer's lambda in this model." in visible
    assert "weight_decay \u2264 1" in visible  # RL003's limit (x0.02 of 50), as the rule computed it
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
    # the summary line, computed from the JSON, says what the terminal says
    from reglint.reporters.full import summary_line

    assert summary_line(report) == "Found 1 finding (1 error) in 4 files; 2 unreadable."
    assert summary_line(report) in parsed.visible
    assert embedded_json(text) == report.to_dict()


def test_totals_that_differ_say_why():
    """Scale-invariant kernels and absorbed normalization gamma/beta are in the
    total penalty but not in rho: the page shows both totals and names what is
    left out, with the JSON's numbers. (A residual network with L2 on every
    kernel, gamma and beta: its conv kernels feed BatchNorm, its blocks' first
    gammas are absorbed by the next conv.)"""
    report = run_report(ROOT / "fixtures" / "scenarios" / "scenario_residual_all_l2.keras")
    analysis = report.to_dict()["files"][0]["model"]["analysis"]
    assert analysis["penalty_init"] < analysis["penalty_init_all"]
    text = render(report)
    parsed = parse(text)
    totals = {r["data-total"]: float(r["data-value"]) for r in parsed.find("tr") if r.get("data-total")}
    assert totals == {"total penalty": analysis["penalty_init_all"], "counted in \u03c1": analysis["penalty_init"]}
    variables = [v for layer in report.to_dict()["files"][0]["model"]["layers"] for v in layer["variables"]
                 if "counted" in v]
    invariant = sum(v["penalty"] for v in variables if v["scale_invariant"] and v["active"])
    absorbed = sum(v["penalty"] for v in variables if v["absorbed"] and v["active"])
    assert invariant and absorbed
    visible = parsed.visible
    assert f"leaving out {g(invariant)} on scale-invariant kernels" in visible
    assert f"{g(absorbed)} on normalization gamma/beta" in visible
    assert f"RL001 (\u03c1) counts {g(analysis['penalty_init'])}" in visible


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
    text = render(report, data=data)
    assert embedded_json(text) == data
    parsed = parse(text)
    assert "Profile (measured)" in text and "static estimate 0.0265" in text and "future_key" in text
    assert parsed.find("svg", class_="trajectory") and len(parsed.find("path", class_="curve-data-loss")) == 1
    assert [r["data-layer"] for r in parsed.find("tr") if r.get("data-ratio")] == [HOSTILE_NAME]
    assert "<script>alert" not in text
    assert not parsed.find("svg", class_="twin")  # no twin in this profile


def twin_dict(val_accuracy: bool = True) -> dict:
    """The shape ``reglint profile`` writes under ``profile.twin``."""
    steps = [0, 5, 10, 15, 20]

    def run(losses, accs, norms):
        return {"step": steps, "data_loss": losses, "val_loss": [x * 1.05 for x in losses],
                "val_accuracy": accs if val_accuracy else None, "kernel_norm": norms}

    return {"steps": 20, "budget": {"steps": 20, "reason": "4x the profile's steps"},
            "runs": {"penalized": run([2.3, 2.29, 2.29, 2.28, 2.28], [0.1, 0.11, 0.11, 0.12, 0.12],
                                      [9.0, 4.0, 2.0, 1.0, 0.5]),
                     "unregularized": run([2.3, 1.6, 1.1, 0.8, 0.6], [0.1, 0.45, 0.7, 0.8, 0.85],
                                          [9.0, 9.2, 9.5, 9.7, 9.9])},
            "verdict": {"label": "penalty-prevents-learning",
                        "message": "without its regularizers the model learns; with them it stays at chance"}}


@pytest.mark.parametrize("val_accuracy", [True, False])
def test_unregularized_twin(val_accuracy):
    report = run_report(DOMINATES)
    data = report.to_dict()
    twin = twin_dict(val_accuracy)
    data["files"][0]["model"]["analysis"]["profile"] = {"device": "CPU", "twin": twin}
    text = render(report, data=data)
    assert embedded_json(text) == data
    parsed = parse(text)
    (svg,) = parsed.find("svg", class_="twin")
    metric = "val_accuracy" if val_accuracy else "val_loss"
    assert svg["data-metric"] == metric
    curves = [(p["data-run"], p["data-series"]) for p in parsed.find("path", class_="curve")
              if p.get("data-run")]
    assert curves == [("penalized", "data_loss"), ("unregularized", "data_loss"),
                      ("penalized", metric), ("unregularized", metric)]
    for p in parsed.find("path", class_="curve"):
        if p.get("data-run"):
            assert p["d"].count("L") == len(twin["runs"][p["data-run"]]["step"]) - 1
    visible = parsed.visible
    assert "Unregularized twin" in visible and twin["verdict"]["message"] in visible
    assert "penalty-prevents-learning" in visible and "4x the profile's steps" in visible
    runs = {r["data-run"] for r in parsed.find("tr") if r.get("data-run")}
    assert runs == {"penalized", "unregularized"}
    assert "2.3 \u2192 0.6" in visible  # the twin's data loss, first to last
    assert "twin" not in [c.get("caption") for c in parsed.find("table", class_="profile")]  # not dumped generically


def test_measured_fixes_are_drawn_beside_the_pair():
    """RL023's fix trials (``twin.fix_trials``) are curves of their own,
    labelled with the change they ran, and rows of the table."""
    report = run_report(DOMINATES)
    data = report.to_dict()
    twin = twin_dict(True)
    trial_run = dict(twin["runs"]["unregularized"], val_accuracy=[0.1, 0.4, 0.6, 0.75, 0.8])
    twin["fix_trials"] = [{"changes": [{"layer": "dense", "target": "kernel", "parameter": "lambda", "current": 0.2,
                                        "suggested": 0.0046}], "run": trial_run, "not_applied": []}]
    data["files"][0]["model"]["analysis"]["profile"] = {"device": "CPU", "twin": twin}
    parsed = parse(render(report, data=data))
    curves = [(p["data-run"], p["data-series"]) for p in parsed.find("path", class_="curve") if p.get("data-run")]
    assert curves == [(run, series) for series in ("data_loss", "val_accuracy")
                      for run in ("penalized", "unregularized", "fix_1")]
    assert {r["data-run"] for r in parsed.find("tr") if r.get("data-run")} == {"penalized", "unregularized",
                                                                                 "fix_1"}
    assert "fix 1: kernel lambda 0.2 \u2192 0.0046" in parsed.visible and "RL023 measured" in parsed.visible


def test_cli_writes_the_file(tmp_path):
    target = tmp_path / "report.html"
    proc = reglint("check", str(DOMINATES), "--no-cache", "--format", "html", "--output-file", str(target),
                   cwd=tmp_path)
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
# the sweep chart follows the JSON curves


def panel_markers(text: str) -> list[dict]:
    """Per panel of the sweep chart: its axes (from its data attributes) and
    the safe band and fix marker drawn in it."""
    tags = parse(text).tags
    out, current = [], None
    for name, attrs in tags:
        klass = (attrs.get("class") or "").split()
        if name == "g" and "panel" in klass and attrs.get("data-x0"):
            current = {"panel": attrs, "safe": None, "fix": None, "safe_rect": None}
            out.append(current)
        elif current is not None and name == "g" and "safe" in klass:
            current["safe"] = attrs
        elif current is not None and current["safe"] is not None and current["safe_rect"] is None \
                and name == "rect":
            current["safe_rect"] = attrs
        elif current is not None and name == "g" and "marker-fix" in klass:
            current["fix"] = attrs
    return out


def check_markers_follow(analysis: dict, text: str) -> int:
    """Every fix marker sits at (fix, slope*fix + offset) and every safe band
    ends at the safe multiplier, on the panel's own axes. Returns the
    number of positions checked."""
    sweep = analysis["sweep"]
    curves = sweep["curves"]
    panels = panel_markers(text)
    assert [p["panel"]["data-code"] for p in panels] == [c["code"] for c in curves]
    checked = 0
    for curve, p in zip(curves, panels, strict=True):
        a = {k: float(v) for k, v in p["panel"].items() if k in ("data-x0", "data-x1", "data-mmin", "data-mmax",
                                                                  "data-y0", "data-y1", "data-ymin", "data-ymax")}
        x_of = lambda m, a=a: log_position(m, a["data-mmin"], a["data-mmax"], a["data-x0"], a["data-x1"])  # noqa: E731
        y_of = lambda v, a=a: log_position(v, a["data-ymin"], a["data-ymax"], a["data-y0"], a["data-y1"])  # noqa: E731
        if curve["fix"]:
            assert p["fix"] is not None, curve["code"]
            assert float(p["fix"]["data-m"]) == curve["fix"]
            assert float(p["fix"]["data-x"]) == pytest.approx(x_of(curve["fix"]), abs=0.06)
            value = curve["slope"] * curve["fix"] + curve["offset"]
            assert float(p["fix"]["data-y"]) == pytest.approx(y_of(value), abs=0.06)
            checked += 1
        else:
            assert p["fix"] is None
        safe = sweep["safe_multiplier"] if curve["knob"] == "lambda" else curve["limit"]
        if safe and safe > a["data-mmin"]:
            assert float(p["safe"]["data-multiplier"]) == safe
            right = float(p["safe_rect"]["x"]) + float(p["safe_rect"]["width"])
            assert right == pytest.approx(min(x_of(safe), a["data-x1"]), abs=0.11)
            checked += 1
    return checked


@pytest.mark.parametrize("path", [DOMINATES, SGD_UNSTABLE, WD_TOO_FAST, HEALTHY_SGD], ids=lambda p: p.name)
def test_sweep_markers_follow_the_json_curves(path):
    report = run_report(path)
    data = report.to_dict()
    analysis = data["files"][0]["model"]["analysis"]
    assert check_markers_follow(analysis, render(report)) >= 1
    # the page is drawn from the dict: move the fixes and the safe bound there, and the marks move
    edited = copy.deepcopy(data)
    sweep = edited["files"][0]["model"]["analysis"]["sweep"]
    for curve in sweep["curves"]:
        curve["fix"] = 0.3
        curve["limit"] = 0.5
    sweep["safe_multiplier"] = 0.5
    text = render(report, data=edited)
    assert check_markers_follow(edited["files"][0]["model"]["analysis"], text) == 2 * len(sweep["curves"])


# ---------------------------------------------------------------------------
# one answer everywhere: check, explain and the HTML give the same fixes


def suggested(findings: list[dict]) -> list[tuple]:
    return sorted((f["code"], f.get("layer") or "", f.get("target") or "", c.get("layer") or "",
                   c.get("target") or "", c["parameter"], json.dumps(c["suggested"]))
                  for f in findings if f.get("fix") for c in f["fix"]["changes"])


@pytest.fixture(scope="module")
def fixtures_with_fixes() -> dict[str, list[dict]]:
    """``reglint check --format json`` over every Keras and ONNX fixture:
    the findings of each readable file that has a fix."""
    proc = reglint("check", "fixtures/keras", "fixtures/onnx", "--no-cache", "--format", "json")
    assert proc.returncode in (1, 2), proc.stderr  # the hostile ONNX fixtures are refused (2)
    out = {}
    for entry in json.loads(proc.stdout)["files"]:
        if entry["error"] is None and any(f.get("fix") for f in entry["findings"]):
            out[entry["path"]] = entry["findings"]
    return out


def test_html_prints_the_same_fixes_as_check(fixtures_with_fixes, tmp_path):
    assert len(fixtures_with_fixes) >= 20  # RL001-RL016 fixes across the fixtures
    page = tmp_path / "all.html"
    proc = reglint("check", *fixtures_with_fixes, "--no-cache", "--format", "html", "--output-file", str(page))
    assert proc.returncode == 1, proc.stderr
    text = page.read_text(encoding="utf-8")
    data = embedded_json(text)
    assert [f["path"] for f in data["files"]] == list(fixtures_with_fixes)
    parsed = parse(text)
    changes = parsed.find("li", class_="change")
    assert len(changes) == sum(len(f["fix"]["changes"]) for fs in fixtures_with_fixes.values()
                               for f in fs if f.get("fix"))
    printed = iter(changes)
    for entry in data["files"]:
        assert suggested(entry["findings"]) == suggested(fixtures_with_fixes[entry["path"]]), entry["path"]
        for finding in entry["findings"]:
            for change in (finding.get("fix") or {}).get("changes", []):
                li = next(printed)
                assert li["data-parameter"] == change["parameter"]
                assert json.loads(li["data-suggested"] or "null") == change["suggested"]
    # the visible text shows every suggested value as the terminal formats it
    visible = parsed.visible
    for findings in fixtures_with_fixes.values():
        for *_, value in suggested(findings):
            number = json.loads(value)
            assert (g(number) if number is not None else "remove") in visible


def test_check_explain_and_html_give_the_same_fixes(fixtures_with_fixes, tmp_path):
    """For every fixture with a fix: the suggested values of ``check --format
    json``, of ``explain --format json`` (its findings' fix objects) and of the
    HTML's embedded report are the same."""
    from typer.testing import CliRunner

    from reglint.cli.app import app

    page = tmp_path / "all.html"
    proc = reglint("check", *fixtures_with_fixes, "--no-cache", "--format", "html", "--output-file", str(page))
    assert proc.returncode == 1, proc.stderr
    in_html = {f["path"]: f["findings"] for f in embedded_json(page.read_text(encoding="utf-8"))["files"]}
    for path, findings in fixtures_with_fixes.items():
        result = CliRunner().invoke(app, ["explain", path, "--format", "json"])
        assert result.exit_code == 0, result.output
        explained = json.loads(result.stdout)
        assert suggested(explained["findings"]) == suggested(findings) == suggested(in_html[path]), path


def test_no_rule_arithmetic_in_the_html_package():
    """The page draws the JSON: no module of the package imports the rules,
    the analysis or the estimators."""
    package = ROOT / "src" / "reglint" / "reporters" / "html"
    allowed = ("reglint", "reglint.engine.fmt", "reglint.reporters.text", "reglint.reporters.html")
    modules = sorted(package.glob("*.py"))
    assert len(modules) >= 6
    for module in modules:
        source = module.read_text()
        imported = re.findall(r"^\s*(?:from|import)\s+(reglint[\w.]*)", source, re.M)
        assert imported, module.name
        for name in imported:
            assert name in allowed or name.startswith("reglint.reporters.html."), (module.name, name)
        assert len(source.splitlines()) <= 800, module.name


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
    codes = [c["code"] for c in report.to_dict()["files"][0]["model"]["analysis"]["sweep"]["curves"]]
    assert [c["class"].split()[1] for c in curves] == [f"curve-{code}" for code in codes]
    assert all(len(c["d"].split("L")) > 50 for c in curves)
    # findings rows and their fixes
    rows = dom.find("tr", class_="finding")
    assert [r["data-code"] for r in rows] == [f.code for f in report.files[0].findings]
    assert len(dom.find("li", class_="change")) == sum(len(f.fix.changes) for f in report.files[0].findings
                                                       if f.fix)
    # the embedded JSON survives the browser's parser
    assert embedded_json(proc.stdout) == report.to_dict()


@needs_chromium
def test_chromium_renders_the_twin(tmp_path):
    report = run_report(DOMINATES)
    data = report.to_dict()
    data["files"][0]["model"]["analysis"]["profile"] = {"device": "CPU", "twin": twin_dict()}
    page = tmp_path / "report.html"
    page.write_text(render(report, data=data), encoding="utf-8")
    proc = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = parse(proc.stdout)
    assert len(dom.find("svg", class_="twin")) == 1
    assert len([p for p in dom.find("path", class_="curve") if p.get("data-run")]) == 4
    assert embedded_json(proc.stdout) == data


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


def test_the_largest_safe_lambda_is_rounded_down_where_people_read_it():
    """Review 39, 2: a largest safe lambda shown rounded up (0.64760 as
    0.648) made RL001 warn when typed back. attention_scale.keras's bound
    is 0.93864: the HTML card says 0.938, not 0.939, and explain's JSON
    keeps the exact value."""
    report = run_report(ROOT / "fixtures" / "keras" / "attention_scale.keras")
    page = render(report)
    shown = re.findall(r'largest safe \u03bb</div><div class="value">([^<]*)<', page)
    assert shown == ["0.938"]
    from reglint.cli.explain import explain_tensor

    (file_report,) = report.files
    (exact,) = {explain_tensor(file_report, p)["largest_safe_lambda"] for p in file_report.analysis.penalties}
    assert exact == pytest.approx(0.93864, abs=1e-5) and float(shown[0]) <= exact


def test_the_figures_description_gives_the_safe_range_as_its_cards_do():
    """Review 72, 3: the figure's description rounded the safe multiplier
    (64, 0.73, "1,000 times today's") where the figure and the cards floor
    it (x <= 63, 0.72, largest safe weight_decay 9.99): one page, two
    numbers for one bound."""
    from reglint.reporters.html.sweep_chart import Group, _desc, safe_text

    page = render(run_report(KERAS / "scenario_decayed_twice.keras"))
    cards = dict(re.findall(r'<div class="label">largest safe ([^<]+)</div><div class="value">([^<]+)</div>', page))
    said = dict(re.findall(r"Safe range for (\w+): up to ([^ ]+?)\.(?:\s|<)", page))
    assert cards["weight_decay"] == said["weight_decay"] == "9.99"
    group = Group("lambda", [], 63.97, ["RL001"])  # several factors today: a multiplier
    assert "up to 63 times today's" in _desc([group]) and safe_text(group) == "\u00d7 \u2264 63"
