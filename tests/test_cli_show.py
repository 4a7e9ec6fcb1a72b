"""ruff's run-inspection flags (review 26's convention gaps): ``--show-files``
and ``--show-settings`` print what a run would lint and with what, reading
no model; ``-s/--silent`` leaves only the exit code (and report files);
``-v/--verbose`` says per file what governed it and what it suppressed; a
per-file-ignores entry or override that suppressed nothing in the files it
matched is named on stderr (ruff's RUF100, for config entries)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import KERAS_FIXTURES

BAD = KERAS_FIXTURES / "scenario_penalty_dominates.keras"  # RL001 error
WEAK = KERAS_FIXTURES / "scenario_too_weak.keras"  # RL005 warnings on dense, dense_1, dense_2

CONFIG = """\
[tool.reglint]
exclude = ["skipped/"]

[tool.reglint.lint]
ignore = ["RL011"]
per-file-ignores = { "models/a.keras" = ["RL001"], "models/b.keras" = ["RL003"], "other/*.keras" = ["RL005"] }

[[tool.reglint.lint.overrides]]
files = ["models/b.keras"]
layers = ["dense_1"]
ignore = ["RL005"]
reason = "kept on purpose"

[[tool.reglint.lint.overrides]]
files = ["models/*.keras"]
layers = ["renamed_long_ago*"]
ignore = ["RL001"]
reason = "a layer since renamed"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()  # the repository root ends the config search
    (tmp_path / "pyproject.toml").write_text(CONFIG, encoding="utf-8")
    for name, source in (("models/a.keras", BAD), ("models/b.keras", WEAK), ("skipped/c.keras", BAD)):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, tmp_path / name)
    (tmp_path / "models" / "broken.keras").write_bytes(b"PK\x03\x04 not a zip")
    return tmp_path


def reglint(cwd: Path, *args: str, cache: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGLINT_")}
    env["XDG_CACHE_HOME"] = str(cwd / ".xdg")
    extra = [] if cache else ["--no-cache"]
    return subprocess.run([sys.executable, "-m", "reglint", *args, *extra], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)  # the timeout: a hang guard


def test_show_files_lists_what_would_be_linted_without_reading_it(project):
    result = reglint(project, "check", ".", "--show-files")
    assert result.returncode == 0, result.stderr
    # sorted, excludes applied; the broken file is listed: nothing was read
    assert result.stdout.splitlines() == ["models/a.keras", "models/b.keras", "models/broken.keras"]
    assert result.stderr == ""
    missing = reglint(project, "check", "models", "nowhere.keras", "--show-files")
    assert missing.returncode == 2 and missing.stderr == "reglint: error: nowhere.keras: no such file or folder\n"
    for command in ("explain", "profile"):  # review 72, 5: explain said "no such file"
        said = reglint(project, command, "nowhere.keras", cache=True)
        assert said.returncode == 2 and said.stderr == "reglint: error: nowhere.keras: no such file or folder\n"
    stdin = reglint(project, "check", "-")  # review 45: "-" is no file, and reglint reads no stream
    assert stdin.returncode == 2 and stdin.stderr == ("reglint: error: -: reading a model from stdin is not "
                                                      "supported: name the file\n")


def test_show_settings_prints_the_config_and_the_command_line(project):
    result = reglint(project, "check", "models/a.keras", "--show-settings", "--extend-select", "RL0",
                     "--l2", "dense*=0.1", "--samples", "60000")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["Resolved settings for: models/a.keras", "Settings path: pyproject.toml", ""]
    settings = dict(line.split(" = ", 1) for line in lines[3:])
    assert settings["lint.ignore"] == '["RL011"]'
    assert settings["lint.extend-select"] == '["RL0"]'
    assert settings["context.samples"] == "60000"
    assert settings["context.regularizers"] == '[{"layers": "dense*", "target": "kernel", "l2": 0.1}]'
    assert settings["exclude"] == '["skipped/"]' and settings["fail-on"] == '"error"'
    assert lines[3:] == sorted(lines[3:])
    flags = reglint(project, "check", "models/a.keras", "--show-settings", "--format", "json", "--baseline", "bl.json")
    assert 'output-format = "json"' in flags.stdout and 'baseline = "bl.json"' in flags.stdout  # review 27, D9
    bogus = reglint(project, "check", "models/a.keras", "--show-settings", "--format", "bogus")
    assert bogus.returncode == 2 and bogus.stdout == ""
    isolated = reglint(project, "check", "models/a.keras", "--show-settings", "--isolated")
    assert "Settings path: (none: the defaults)" in isolated.stdout and 'lint.ignore = []' in isolated.stdout


def test_silent_leaves_the_exit_code_and_the_report_files(project):
    (project / "pyproject.toml").write_text("", encoding="utf-8")
    result = reglint(project, "check", "models/a.keras", "-s", "--format", "full,json:out.json")
    assert result.returncode == 1 and result.stdout == "" and result.stderr == ""
    assert '"RL001"' in (project / "out.json").read_text()
    (project / "pyproject.toml").write_text(textwrap.dedent("""\
        [[tool.reglint.lint.overrides]]
        files = ["models/a.keras"]
        ignore = ["RL001"]
        reason = "until the retrain"
        expires = 2020-01-01
        """), encoding="utf-8")
    assert "expired on 2020-01-01" in reglint(project, "check", "models/a.keras").stderr
    expired = reglint(project, "check", "models/a.keras", "-s")
    assert (expired.returncode, expired.stdout, expired.stderr) == (1, "", "")  # review 27, D13
    broken = reglint(project, "check", "models/broken.keras", "--silent")
    assert broken.returncode == 2 and broken.stdout == "" and broken.stderr.startswith("reglint: error: ")


@pytest.mark.parametrize("cache", [False, True])
def test_a_suppression_that_suppressed_nothing_is_named(project, cache):
    for _ in range(2 if cache else 1):  # the second run is served from the cache
        result = reglint(project, "check", "models/a.keras", "models/b.keras", cache=cache)
        assert result.returncode == 0, result.stderr  # RL001 on a.keras is ignored
        warnings = sorted(line for line in result.stderr.splitlines() if "suppressed nothing" in line)
        assert warnings == [
            "reglint: warning: per-file-ignores 'models/b.keras' = ['RL003'] in pyproject.toml suppressed nothing "
            "in the files it matched: remove it, or it will hide the next finding it matches",
            "reglint: warning: the override ignoring ['RL001'] for files ['models/*.keras'], layers "
            "['renamed_long_ago*'] in pyproject.toml suppressed nothing in the files it matched: remove it, or it "
            "will hide the next finding it matches"]


def test_a_suppression_is_judged_only_on_files_and_rules_that_ran(project):
    # b.keras alone: the entries for a.keras and other/ matched no file read; RL001 did not run
    result = reglint(project, "check", "models/b.keras", "--select", "RL005")
    assert result.returncode == 0, result.stderr
    assert "suppressed nothing" not in result.stderr
    # an entry for RL001 and RL005 on a --select RL005 run: RL001 did not run, not judged (review 27, D8)
    (project / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.reglint.lint]
        per-file-ignores = { "models/a.keras" = ["RL001", "RL005"] }
        """), encoding="utf-8")
    for flags in (["--select", "RL005"], ["--ignore", "RL001"]):
        assert "suppressed nothing" not in reglint(project, "check", "models/a.keras", *flags).stderr, flags
    # every entry used: no warning
    (project / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.reglint.lint]
        per-file-ignores = { "models/a.keras" = ["RL001"] }
        """), encoding="utf-8")
    assert "suppressed nothing" not in reglint(project, "check", "models/a.keras").stderr
    assert reglint(project, "check", "models/a.keras", "-s").stderr == ""


def test_verbose_says_what_governs_each_file_and_what_it_suppressed(project):
    first = reglint(project, "check", "models/a.keras", "models/b.keras", "-v", "-q", cache=True)
    again = reglint(project, "check", "models/a.keras", "models/b.keras", "-v", "-q", cache=True)
    for result, source in ((first, "read"), (again, "from the cache")):
        lines = [line for line in result.stderr.splitlines() if line.startswith("reglint: verbose: ")]
        assert lines == [
            f"reglint: verbose: models/a.keras: keras_v3, settings from pyproject.toml, {source}; 0 kept, "
            "suppressed: RL001",
            f"reglint: verbose: models/b.keras: keras_v3, settings from pyproject.toml, {source}; 2 kept, "
            "suppressed: RL005 [dense_1]"]
    assert "verbose" not in reglint(project, "check", "models/a.keras", "-q").stderr


def test_verbose_names_a_file_that_failed_on_every_run(project):
    """Review 45, 8: -v said nothing of a file whose read failed, so a
    failure served from the cache looked like a fresh one. Failures are
    never cached now, and -v says each run read it again."""
    for _ in range(2):
        result = reglint(project, "check", "models/broken.keras", "models/b.keras", "-v", "-q", cache=True)
        lines = [line for line in result.stderr.splitlines() if line.startswith("reglint: verbose: ")]
        assert "reglint: verbose: models/broken.keras: read failed (never cached)" in lines, result.stderr
