"""The code's shape, as issue 14 asks it to stay: no import cycle, no source
file over 800 lines, one declaration per training-context option."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reglint.cli.app import app
from reglint.engine.analysis import context_options

from helpers import KERAS_FIXTURES, ROOT

PACKAGES = {"reglint": ROOT / "src" / "reglint", "reglint.rules": ROOT / "rules"}
MAX_LINES = 800


def modules() -> dict[str, Path]:
    out = {}
    for package, root in PACKAGES.items():
        for file in root.rglob("*.py"):
            parts = [p for p in file.relative_to(root).with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = file
    return out


def import_graph() -> dict[str, set[str]]:
    """Every reglint import, module-level and inside functions alike."""
    mods = modules()
    graph = {}
    for name, file in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reglint"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in mods else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("reglint"))
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


def test_no_source_file_over_800_lines():
    lengths = {str(f.relative_to(ROOT)): len(f.read_text().splitlines()) for f in modules().values()}
    long = {path: n for path, n in lengths.items() if n > MAX_LINES}
    assert long == {}


def test_layers_import_only_downwards():
    """readers -> model -> engine -> rules -> reporters -> cli: nothing below the
    CLI imports it, the library entry point included, and config imports no reporter."""
    graph = import_graph()
    for name, deps in graph.items():
        if not name.startswith(("reglint.cli", "reglint.__main__")):
            assert not {d for d in deps if d.startswith("reglint.cli")}, name
        if name.startswith(("reglint.config", "reglint.engine", "reglint.readers", "reglint.model")):
            assert not {d for d in deps if d.startswith("reglint.reporters")}, name


@pytest.mark.parametrize("command", ["check", "explain"])
def test_every_context_field_is_an_option_of(command):
    help_text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
    for option in context_options():
        assert f"--{option.key}" in help_text, option.key


def test_context_options_reach_the_analysis():
    """The same declaration feeds the config table and the command line."""
    path = str(KERAS_FIXTURES / "dense_l2.keras")
    result = CliRunner().invoke(app, ["check", path, "--format", "json", "--optimizer", "SGD", "--lr", "0.5",
                                      "--momentum", "0.9", "--samples", "1000", "--isolated"])
    model = __import__("json").loads(result.stdout)["files"][0]["model"]
    assert model["optimizer"]["class"] == "SGD" and model["optimizer"]["learning_rate"]["initial"] == 0.5
    assert model["optimizer"]["momentum"] == 0.9
