"""Run reglint's commands on every generated file and judge the outcome.

Per file: ``check --format json``, ``explain``, ``check --format html
--output-file`` and ``check --format sarif``; exit code, stderr and the
problems found:

* ``internal``: an "internal error" or a traceback on stderr;
* ``nonfinite``: a NaN, an infinity or a negative count or penalty in the JSON;
* ``count``: total/trainable/non-trainable differ from what Keras reported;
* ``penalty``: the penalty at the saved weights differs from Keras' own;
* ``custom``: either of the two, in a model with a custom class, whose
  trainable flags and code-made regularizers no file records (reglint says
  so in a note): a known limit, listed apart;
* ``refused``: exit 2 on a file Keras itself loads;
* ``output``: an HTML or SARIF report missing or not what its format says.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

COMMANDS = ("json", "explain", "html", "sarif")
PENALTY_RTOL = 1e-3


# The reglint executable run on every file: this environment's, or another
# checkout's (``lint --reglint PATH``: the numbers before a fix).
REGLINT = [str(Path(sys.executable).parent / "reglint")]


def argv(command: str, path: Path, html_out: Path) -> list[str]:
    exe, p = REGLINT[0], str(path)
    return {
        "json": [exe, "check", "--format", "json", "--no-cache", "--isolated", p],
        "explain": [exe, "explain", p],
        "html": [exe, "check", "--format", "html", "--output-file", str(html_out), "--no-cache", "--isolated", p],
        "sarif": [exe, "check", "--format", "sarif", "--no-cache", "--isolated", p],
    }[command]


def _run(cmd: list[str]) -> dict[str, Any]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    env.pop("REGLINT_DEBUG", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr.strip()}


def _bad_numbers(node: Any, where: str = "") -> list[str]:
    """NaN/inf anywhere, and negative values under counts and penalties."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "config":  # a regularizer's own config, as stored
                continue
            found += _bad_numbers(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _bad_numbers(value, f"{where}[{i}]")
    elif isinstance(node, float) and not math.isfinite(node):
        found.append(f"{where}={node}")
    elif isinstance(node, (int, float)) and not isinstance(node, bool) and node < 0:
        leaf = where.rsplit(".", 1)[-1]
        if any(word in where for word in (".params.", "penalty", "sum_sq")) or leaf in (
                "total", "trainable", "non_trainable", "value"):
            found.append(f"{where}={node}")
    return found


def _saved_penalty(model: dict[str, Any], writer: str) -> tuple[float | None, bool]:
    """Sum of the per-variable penalties at the saved weights (Keras 3 drops
    frozen layers' penalties: only the active ones), and whether any
    regularizer is custom (not interpreted)."""
    total, seen, custom = 0.0, False, False
    for layer in model.get("layers", []):
        for reg in layer.get("regularizers", []):
            custom |= reg.get("kind") not in ("l1", "l2", "l1l2")
        for var in layer.get("variables", []):
            value = var.get("penalty_saved")
            if value is None:
                continue
            if writer == "keras3" and not var.get("active", True):
                continue
            total += value
            seen = True
    return (total if seen else None), custom


def judge(entry: dict[str, Any], runs: dict[str, dict[str, Any]], html_out: Path) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []

    def add(kind: str, command: str, detail: str) -> None:
        problems.append({"kind": kind, "command": command, "detail": detail[:600]})

    for command, run in runs.items():
        err = run["stderr"]
        if "internal error" in err.lower() or "Traceback" in err:
            add("internal", command, err.splitlines()[-1] if err else "")
    loads = entry.get("keras_load", {}).get("ok")
    if loads and any(r["rc"] == 2 for r in runs.values()):
        rc2 = next(c for c, r in runs.items() if r["rc"] == 2)
        add("refused", rc2, runs[rc2]["stderr"])
    js = runs["json"]
    try:
        report = json.loads(js["stdout"]) if js["stdout"].strip() else None
    except ValueError as exc:
        add("output", "json", f"not JSON: {exc}")
        report = None
    model = report["files"][0].get("model") if report and report.get("files") else None
    if model:
        for bad in _bad_numbers(model):
            add("nonfinite", "json", bad)
        ref = entry.get("loaded") or entry["generator"]
        params = model["params"]
        weights_only = entry["format"] in ("weights", "export")
        has_custom = any(layer.get("custom") for layer in model.get("layers", []))
        want = (ref["count_params"],) if weights_only else (
            ref["count_params"], ref["trainable_params"], ref["non_trainable_params"])
        got = (params["total"],) if weights_only else (params["total"], params["trainable"], params["non_trainable"])
        if got != want:
            add("custom" if has_custom else "count", "json", f"reglint {got} != keras {want}")
        keras_pen = ref.get("weight_penalty")
        ours, custom = _saved_penalty(model, entry["writer"])
        if keras_pen is not None and not custom and not weights_only and entry["format"] != "json":
            ours = ours or 0.0
            if not math.isclose(ours, keras_pen, rel_tol=PENALTY_RTOL, abs_tol=1e-9):
                add("custom" if has_custom else "penalty", "json", f"reglint {ours!r} != keras {keras_pen!r}")
    if runs["html"]["rc"] in (0, 1) and (not html_out.exists() or html_out.stat().st_size < 1000):
        add("output", "html", "no HTML report written")
    sarif = runs["sarif"]
    if sarif["rc"] in (0, 1):
        try:
            doc = json.loads(sarif["stdout"])
            assert doc.get("version") == "2.1.0" and doc.get("runs")
        except (ValueError, AssertionError) as exc:
            add("output", "sarif", f"not SARIF 2.1.0: {exc!r}")
    return problems


def lint_one(entry: dict[str, Any], folder: Path, html_dir: Path) -> dict[str, Any]:
    path = folder / entry["file"]
    html_out = html_dir / (entry["file"] + ".html")
    html_out.unlink(missing_ok=True)
    runs = {c: _run(argv(c, path, html_out)) for c in COMMANDS}
    problems = judge(entry, runs, html_out)
    slim = {c: {"rc": r["rc"], "stderr": r["stderr"][-2000:]} for c, r in runs.items()}
    return {"file": entry["file"], "case": entry["case"], "writer": entry["writer"], "format": entry["format"],
            "runs": slim, "problems": problems}


def lint_all(entries: list[dict[str, Any]], folder: Path, jobs: int) -> list[dict[str, Any]]:
    html_dir = folder / "html"
    html_dir.mkdir(exist_ok=True)
    files = [e for e in entries if e.get("file")]
    results: list[dict[str, Any]] = []
    with ThreadPoolExecutor(jobs) as pool:
        for result in pool.map(lambda e: lint_one(e, folder, html_dir), files):
            codes = " ".join(f"{c}={r['rc']}" for c, r in result["runs"].items())
            kinds = ",".join(sorted({p["kind"] for p in result["problems"]})) or "-"
            print(f"{result['file']:52s} {codes}  {kinds}", flush=True)
            results.append(result)
    return results
