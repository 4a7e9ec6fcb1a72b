"""The terminal report's width (issue 17, item 4): piped output never wraps
(ruff's rule); on an 80-column terminal the table fits, numbers stay whole,
long names lose their middle to an ellipsis and nothing is split mid-word."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console

from reglint.engine.identity import display_path
from reglint.engine.report import RunReport
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.reporters.console import Color, make_console
from reglint.reporters.full import middle_ellipsis, render_full

from helpers import KERAS_FIXTURES

WIDE = ["tfk_conv_bn.h5", "bidirectional_lstm.keras", "frozen_nested_model.keras", "multi_head_attention.keras",
        "scenario_penalty_dominates.keras", "scenario_adam_coupled_l2.keras", "tfk_bidirectional.keras"]


def lint(name: str) -> RunReport:
    return RunReport([lint_file(str(KERAS_FIXTURES / name), Settings())])


def render(report: RunReport, console: Console) -> str:
    render_full(report, console)
    return console.file.getvalue()


def terminal(width: int) -> Console:
    """What an interactive terminal of ``width`` columns gets (no colour, to read it)."""
    return Console(file=io.StringIO(), width=width, color_system=None, highlight=False)


def piped(result_env: dict | None = None, *names: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(result_env or {})
    paths = [str(KERAS_FIXTURES / n) for n in names]
    return subprocess.run([sys.executable, "-m", "reglint", *paths, "--no-cache"], capture_output=True, text=True,
                          env=env, timeout=120).stdout


# ---------------------------------------------------------------------------
# piped: one line per thing, whatever its length


@pytest.mark.parametrize("columns", [None, "80", "40"])
def test_piped_output_never_wraps(columns):
    out = piped({"COLUMNS": columns} if columns else {}, *WIDE)
    reports = [lint(name) for name in WIDE]
    findings = [f for r in reports for _, f in r.findings]
    assert findings
    lines = out.splitlines()
    for finding in findings:
        assert "        " + finding.message in lines  # the whole message on one line
        if finding.remedy:
            assert "        fix: " + finding.remedy in lines
    for report in reports:
        file_report = report.files[0]
        header = next(line for line in lines if line.startswith(display_path(file_report.path) + "  ("))
        assert header.endswith("non-trainable")  # path and parameter counts on one line
        for layer in file_report.model.layers:
            if layer.variables:
                assert any(re.match(re.escape(layer.path) + r"(\s|$)", line) for line in lines), layer.path
    assert max(map(len, lines)) > 120  # the messages really are longer than a terminal
    assert max(map(len, lines)) < 1000  # no padding to the console's (huge) width


def test_piped_output_is_the_same_whatever_columns_says():
    assert piped({"COLUMNS": "80"}, *WIDE[:3]) == piped({"COLUMNS": "300"}, *WIDE[:3])


def test_report_written_to_a_file_is_not_wrapped(tmp_path):
    target = tmp_path / "report.txt"
    subprocess.run([sys.executable, "-m", "reglint", str(KERAS_FIXTURES / "tfk_conv_bn.h5"), "--no-cache",
                    "-f", f"full:{target}"], capture_output=True, text=True, timeout=120)
    text = target.read_text()
    message = lint("tfk_conv_bn.h5").files[0].findings[0].message
    assert "        " + message in text.splitlines()
    assert "\x1b[" not in text


def test_make_console_is_unwrapped_only_off_a_terminal():
    buffer = io.StringIO()
    console = make_console(Color.auto, file=buffer)
    assert console.soft_wrap and console.width >= 10_000


# ---------------------------------------------------------------------------
# an 80-column terminal


@pytest.mark.parametrize("name", WIDE)
def test_terminal_of_80_columns_fits_and_never_splits_a_name(name):
    report = lint(name)
    out = render(report, terminal(80))
    lines = out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    file_report = report.files[0]
    names = {layer.path: layer for layer in file_report.model.layers if layer.variables}
    for path in names:
        shown = [line.split()[0] for line in lines if line.split() and _is_form_of(line.split()[0], path)]
        assert shown, f"{path} is not shown whole or with its middle elided"
    # No table line carries a stray piece of a layer name (a name split over two lines).
    table = _table_lines(lines)
    assert table
    for line in table:
        first = line.split()[0] if line.split() else ""
        for path in names:
            if first and first != path and (path.endswith(first) and len(first) < len(path)) and "…" not in first:
                pytest.fail(f"a piece of {path!r} on its own: {line!r}")
    # Numbers are never cut.
    for layer in names.values():
        assert f"{layer.trainable_params:,}" in out
    # Messages wrap at spaces, under their indent, with every word whole.
    for finding in file_report.findings:
        assert finding.message.split() == _words_after(lines, finding.message.split()[0], len(finding.message.split()))


def _table_lines(lines: list[str]) -> list[str]:
    """The per-layer table: from its header (or the first stacked layer) to the loss-scale line."""
    end = next(i for i, line in enumerate(lines) if line.startswith("  data-loss scale:"))
    start = next((i for i, line in enumerate(lines[:end]) if line.startswith("layer ")), 2)
    return lines[start:end]


def _is_form_of(shown: str, path: str) -> bool:
    if shown == path:
        return True
    head, sep, tail = shown.partition("…")
    return bool(sep) and path.startswith(head) and path.endswith(tail) and len(shown) < len(path)


def _words_after(lines: list[str], first_word: str, count: int) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith("        " + first_word))
    words: list[str] = []
    for line in lines[start:]:
        assert line.startswith("        "), line
        words += line.split()
        if len(words) >= count:
            return words[:count]
    return words


def test_a_long_layer_name_keeps_both_ends():
    out = render(lint("tfk_conv_bn.h5"), terminal(80))
    row = next(line for line in out.splitlines() if line.startswith("batch"))
    shown = row.split()[0]
    assert "…" in shown and shown.startswith("batch") and shown.endswith("zation") and len(shown) < 19
    assert "BatchNorm…" in row  # the class column gave way first


def test_wide_terminal_shows_everything_whole():
    out = render(lint("tfk_conv_bn.h5"), terminal(200))
    assert "…" not in out and "batch_normalization  BatchNormalization" in out


def test_very_narrow_terminal_stacks_each_layer():
    out = render(lint("bidirectional_lstm.keras"), terminal(60))
    lines = out.splitlines()
    assert "bidirectional" in lines and "…" not in out
    assert max(len(line.rstrip()) for line in lines) <= 60


@pytest.mark.parametrize(("text", "width", "expected"), [
    ("dense", 12, "dense"),
    ("batch_normalization_18", 12, "batch…ion_18"),
    ("model/encoder/block_3/conv", 16, "model/e…k_3/conv"),
])
def test_middle_ellipsis(text, width, expected):
    assert middle_ellipsis(text, width) == expected


def test_explain_piped_is_not_as_wide_as_the_unwrapped_console():
    out = subprocess.run([sys.executable, "-m", "reglint", "explain", str(KERAS_FIXTURES / "conv2d_seed_l2.keras")],
                         capture_output=True, text=True, timeout=120).stdout
    lines = out.splitlines()
    assert lines[0] == "── seed_conv Conv2D · kernel [2, 3, 10, 20] · L2(0.01) ──"
    assert max(map(len, lines)) < 400


def test_a_table_that_fits_is_laid_out_as_richs_table_lays_it_out():
    """Where nothing has to be cut the table is written line by line (rich's
    Table measured and wrapped every cell: 9 s for 4,000 layers); the
    characters are the ones rich's Table writes, stacked regularizers,
    markup, tags and wide characters included, without the spaces rich
    pads the ends of lines with (review 26, D5)."""
    from reglint.reporters.full import _natural_widths, _print_as_laid_out, _table

    columns = [("layer", "left"), ("class", "left"), ("params", "right"), ("frozen", "right"),
               ("regularizers", "left"), ("P@init", "right"), ("share", "right")]
    rows = [[("enc/dense", ""), "Dense", "1,220", "0", "kernel L2(0.01)\nbias L1(1e-05) [dim](user)[/]", "0.5", "4%"],
            [("bn", " (frozen)"), "BatchNormalization", "128", "128", "[dim]-[/]", "", ""],
            [("嵌入/emb", " (custom)"), "My\\[Layer]", "10", "0", "embeddings L2(0.1)", "1.25", "113%"]]

    def rendered(draw) -> str:
        console = Console(file=io.StringIO(), width=200, color_system=None, soft_wrap=True, record=True)
        draw(console)
        return console.export_text()

    fast = rendered(lambda console: _print_as_laid_out(columns, rows, console))
    table = rendered(lambda console: console.print(_table(columns, rows, _natural_widths(columns, rows), None)))
    assert fast == "\n".join(line.rstrip() for line in table.split("\n"))
    assert fast != table and not any(line.endswith(" ") for line in fast.splitlines())  # rich pads; we do not
    assert len(fast.splitlines()) == 5 and "My[Layer]" in fast and "(user)" in fast
