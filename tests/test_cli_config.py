"""Configuration as ruff users write it (issue 17, item 5): top-level
``select``/``ignore`` as aliases of the ``lint`` ones, unknown keys that
name the right key, and each file linted with its own closest config (found
from its real ancestors), falling back to the working directory's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reglint.config.loader import ConfigResolver, load_settings
from reglint.errors import ConfigError

from helpers import KERAS_FIXTURES

BAD = KERAS_FIXTURES / "scenario_penalty_dominates.keras"  # RL001 error
WARN = KERAS_FIXTURES / "scenario_decayed_twice.keras"  # warnings only
GOOD_ADAM = KERAS_FIXTURES / "scenario_healthy.keras"  # Adam, L2 on its kernels: RL007


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def model(path: Path, source: Path = BAD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, path)
    return path


def reglint(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGLINT_")}
    env["XDG_CACHE_HOME"] = str(cwd / ".xdg")
    return subprocess.run([sys.executable, "-m", "reglint", *args, "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=env)


def codes_by_file(result: subprocess.CompletedProcess) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in result.stdout.splitlines():
        record = json.loads(line)
        out.setdefault(record["filename"], set()).add(record["code"])
    return out


# ---------------------------------------------------------------------------
# top-level aliases and key suggestions


def test_top_level_select_and_ignore_are_the_lint_ones(tmp_path):
    m = str(model(tmp_path / "m.keras"))
    write(tmp_path / "pyproject.toml", """
        [tool.reglint]
        select = ["RL0"]
        ignore = ["RL001"]
        extend-select = ["RL01"]
        [tool.reglint.per-file-ignores]
        "*.h5" = ["RL002"]
    """)
    top = load_settings([m])
    write(tmp_path / "pyproject.toml", """
        [tool.reglint.lint]
        select = ["RL0"]
        ignore = ["RL001"]
        extend-select = ["RL01"]
        [tool.reglint.lint.per-file-ignores]
        "*.h5" = ["RL002"]
    """)
    nested = load_settings([m])
    assert (top.select, top.ignore, top.extend_select, top.per_file_ignores) == \
        (nested.select, nested.ignore, nested.extend_select, nested.per_file_ignores) == \
        (["RL0"], ["RL001"], ["RL01"], {"*.h5": ["RL002"]})


def test_top_level_ignore_removes_the_finding(tmp_path):
    model(tmp_path / "m.keras")
    assert reglint(tmp_path, "m.keras").returncode == 1
    write(tmp_path / "pyproject.toml", "[tool.reglint]\nignore = ['RL001']\n")
    result = reglint(tmp_path, "m.keras", "-f", "json-lines")
    assert result.returncode == 0 and "RL001" not in result.stdout, result.stderr


def test_the_same_key_twice_is_an_error(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.reglint]\nignore = ['RL001']\n[tool.reglint.lint]\nignore = ['RL002']\n")
    with pytest.raises(ConfigError, match=r"'tool.reglint.ignore' in .*is also set as 'tool.reglint.lint.ignore'"):
        load_settings([str(tmp_path / "m.keras")])


@pytest.mark.parametrize(("text", "expected"), [
    ("[tool.reglint]\nsamples = 6000\n",
     "unknown key 'tool.reglint.samples' in pyproject.toml; did you mean 'tool.reglint.context.samples'?"),
    ("[tool.reglint.lint]\nfail-on = 'warning'\n",
     "unknown key 'tool.reglint.lint.fail-on' in pyproject.toml; did you mean 'tool.reglint.fail-on'?"),
    ("[tool.reglint]\npenalty-ratio-warning = 3\n",
     "unknown key 'tool.reglint.penalty-ratio-warning' in pyproject.toml; "
     "did you mean 'tool.reglint.lint.thresholds.penalty-ratio-warning'?"),
    ("[tool.reglint]\nignor = []\n", "unknown key 'tool.reglint.ignor' in pyproject.toml; did you mean "
                                     "'tool.reglint.ignore'?"),
    ("[tool.reglint]\nfoo = 1\n", "unknown key 'tool.reglint.foo' in pyproject.toml"),
])
def test_unknown_keys_name_the_key_meant(tmp_path, monkeypatch, text, expected):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "pyproject.toml", text)
    with pytest.raises(ConfigError) as info:
        load_settings([str(tmp_path / "m.keras")])
    assert str(info.value) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("weight-decay = inf", "'tool.reglint.context.weight-decay' in pyproject.toml: expected a finite number, got inf"),
    ("learning-rate = nan",
     "'tool.reglint.context.learning-rate' in pyproject.toml: expected a finite number, got nan"),
    ("momentum = -inf", "'tool.reglint.context.momentum' in pyproject.toml: expected a finite number, got -inf"),
    ('regularizers = [{layers = "*", l2 = inf}]',
     "'tool.reglint.context.regularizers[0].l2' in pyproject.toml: expected a finite number, got inf"),
    ('optimizer = "Bogus"', "'tool.reglint.context.optimizer' in pyproject.toml: unknown optimizer 'Bogus'; known: "),
])
def test_non_finite_context_values_and_unknown_optimizers_are_config_errors(tmp_path, text, expected):
    write(tmp_path / "pyproject.toml", f"[tool.reglint.context]\n{text}\n")
    result = reglint(tmp_path, str(model(tmp_path / "m.keras", GOOD_ADAM)), "-f", "concise")
    assert (result.returncode, result.stdout) == (2, ""), result.stdout
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("reglint: error: " + expected), line


def test_a_config_optimizer_is_read_in_any_spelling(tmp_path):
    """"torch.optim.adam" means Adam: RL007 (L2 under Adam) as for the file's own Adam."""
    write(tmp_path / "pyproject.toml", '[tool.reglint.context]\noptimizer = "torch.optim.adam"\n')
    result = reglint(tmp_path, str(model(tmp_path / "m.keras", GOOD_ADAM)), "-f", "json")
    data = json.loads(result.stdout)["files"][0]
    assert data["model"]["optimizer"]["class"] == "Adam"
    assert "RL007" in {f["code"] for f in data["findings"]}


# ---------------------------------------------------------------------------
# each file its closest config


@pytest.fixture
def tree(tmp_path) -> Path:
    """cwd/ (its config selects RL0, ignores nothing) holding two projects:
    a/ (its own config ignores RL001) and b/ (no config: the cwd's applies),
    plus c/ outside the cwd with a config failing on warnings."""
    root = tmp_path / "work"
    (root / ".git").mkdir(parents=True)
    write(root / "reglint.toml", "[lint]\nselect = ['RL0']\n")
    write(root / "a" / "pyproject.toml", "[tool.reglint]\nignore = ['RL001']\n")
    model(root / "a" / "models" / "m.keras")
    model(root / "a" / "models" / "w.keras", WARN)
    model(root / "b" / "models" / "m.keras")
    outside = tmp_path / "c"
    (outside / ".git").mkdir(parents=True)
    write(outside / "reglint.toml", "fail-on = 'warning'\n")
    model(outside / "w.keras", WARN)
    return root


@pytest.mark.parametrize("order", [1, -1])
def test_files_in_different_folders_get_their_own_config(tree, order):
    paths = ["a/models/m.keras", "a/models/w.keras", "b/models/m.keras"][::order]
    result = reglint(tree, *paths, "-f", "json-lines")
    found = codes_by_file(result)
    # a/pyproject.toml ignores RL001 (m.keras has nothing else); w.keras's warnings
    # show a's files were linted and reported under the cwd-relative path
    assert set(found) == {"a/models/w.keras", "b/models/m.keras"}, found
    assert found["b/models/m.keras"] == {"RL001"}  # b has no config: the cwd's applies
    assert result.returncode == 1


def test_a_folder_argument_splits_by_config_too(tree):
    found = codes_by_file(reglint(tree, ".", "-f", "json-lines"))
    assert set(found) == {"a/models/w.keras", "b/models/m.keras"} and found["b/models/m.keras"] == {"RL001"}


def test_a_file_under_its_own_config_is_named_from_the_working_directory(tree):
    # Alone or beside another file, a/models/w.keras keeps one name: relative to
    # where reglint ran (where CI resolves it), not to a/, where its config lives.
    alone = codes_by_file(reglint(tree, "a/models/w.keras", "-f", "json-lines"))
    beside = codes_by_file(reglint(tree, "a/models/w.keras", "b/models/m.keras", "-f", "json-lines"))
    assert set(alone) == {"a/models/w.keras"} and "a/models/w.keras" in beside


def test_relative_path_uses_its_real_ancestors(tree):
    # `../c/w.keras` from work/: c's config (fail-on warning) applies, not work/'s.
    result = reglint(tree, "../c/w.keras")
    assert result.returncode == 1, result.stdout + result.stderr
    # the cwd's config (fail-on error, the default) would have passed it
    shutil.copy(tree.parent / "c" / "w.keras", tree / "w.keras")
    assert reglint(tree, "w.keras").returncode == 0


def test_fail_on_is_each_files_own(tree):
    result = reglint(tree, "../c/w.keras", "a/models/m.keras")
    assert result.returncode == 1  # c/w.keras fails on its warnings; a/ ignores its only error
    assert reglint(tree, "a/models/m.keras").returncode == 0
    assert reglint(tree, "../c/w.keras", "a/models/m.keras", "--fail-on", "error").returncode == 0


def test_symlinked_folder_is_searched_from_where_it_really_is(tree, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tree / "a" / "models", target_is_directory=True)
    resolver = ConfigResolver()
    assert resolver.source_for(str(link / "m.keras")) == tree / "a" / "pyproject.toml"


def test_a_file_without_config_falls_back_to_the_cwd(tree, tmp_path, monkeypatch):
    lone = tmp_path / "lone"
    (lone / ".git").mkdir(parents=True)
    model(lone / "m.keras")
    monkeypatch.chdir(tree)
    resolver = ConfigResolver()
    assert resolver.source_for(str(lone / "m.keras")) == tree / "reglint.toml"
    assert resolver.settings_for(str(lone / "m.keras")) is resolver.settings_for(str(tree / "b" / "x.keras"))


def test_config_flag_and_isolated_apply_to_every_file(tree):
    strict = write(tree / "ci.toml", "[lint]\nselect = ['RL0']\n")
    found = codes_by_file(reglint(tree, "a/models/m.keras", "--config", str(strict), "-f", "json-lines"))
    assert "RL001" in found["a/models/m.keras"]
    found = codes_by_file(reglint(tree, "a/models/m.keras", "--isolated", "-f", "json-lines"))
    assert "RL001" in found["a/models/m.keras"]


def test_a_broken_config_below_is_one_line_exit_2(tree):
    write(tree / "b" / "reglint.toml", "[lint]\nignore = ['RL999']\n")
    result = reglint(tree, "a/models/m.keras", "b/models/m.keras")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "'lint.ignore' in b/reglint.toml" in result.stderr


def test_report_paths_in_a_config_are_relative_to_its_folder(tmp_path):
    """output-format's FILE resolves against the config's folder, as baseline does: running from a
    subfolder writes the report where the config says, not under the working directory."""
    write(tmp_path / "pyproject.toml", """
        [tool.reglint]
        output-format = "concise,json:out/r.json"
    """)
    (tmp_path / "out").mkdir()
    model(tmp_path / "data" / "d.keras")
    result = reglint(tmp_path / "data", "d.keras")
    assert result.returncode == 1, result.stderr
    assert "RL001" in result.stdout
    assert json.loads((tmp_path / "out" / "r.json").read_text())["files"][0]["findings"]
    assert not (tmp_path / "data" / "out").exists()
