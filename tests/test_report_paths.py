"""One name per file in every report and baseline: relative to the working
directory, whatever configuration governs the file and whatever else is on
the command line (third review, item 1).

The layout is the reviewer's: a repository with models/pd.keras under
models/reglint.toml and other/pd.keras under other/.reglint.toml (both copies
of the committed penalty-dominates fixture: one RL001 error each), linted
from the repository root.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reglint.cli.app import app

from helpers import KERAS_FIXTURES

PD = KERAS_FIXTURES / "scenario_penalty_dominates.keras"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    for folder, config in (("models", "reglint.toml"), ("other", ".reglint.toml")):
        (root / folder).mkdir()
        shutil.copy(PD, root / folder / "pd.keras")
        (root / folder / config).write_text("[lint]\nselect = ['RL001']\n")
    monkeypatch.chdir(root)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    for name in ("REGLINT_OUTPUT_FORMAT", "REGLINT_SARIF_FLAVOR", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    return root


def check(*args: str):
    return CliRunner().invoke(app, ["check", *args, "--no-cache"])


def github_files(output: str) -> list[str]:
    return [line.split("file=", 1)[1].split(",", 1)[0] for line in output.splitlines() if line.startswith("::")]


def concise_files(output: str) -> list[str]:
    return [line.split(": ", 1)[0] for line in output.splitlines() if ": RL" in line]


def gitlab_files(output: str) -> list[str]:
    return [issue["location"]["path"] for issue in json.loads(output)]


def junit_files(output: str) -> list[str]:
    return [case.get("file") for case in ET.fromstring(output).iter("testcase")]


def sarif_files(output: str) -> list[str]:
    run = json.loads(output)["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == Path.cwd().as_uri() + "/"
    return [location["physicalLocation"]["artifactLocation"]["uri"]
            for result in run["results"] for location in result["locations"]]


def json_lines_files(output: str) -> list[str]:
    return [json.loads(line)["filename"] for line in output.splitlines()]


def pylint_files(output: str) -> list[str]:
    return [line.split(":", 1)[0] for line in output.splitlines()]


def json_files(output: str) -> list[str]:
    return [f["path"] for f in json.loads(output)["files"]]


READERS = {"github": github_files, "concise": concise_files, "gitlab": gitlab_files, "junit": junit_files,
           "sarif": sarif_files, "json-lines": json_lines_files, "pylint": pylint_files}


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_a_file_under_its_own_config_is_named_from_the_repository_root(repo, fmt):
    alone = check("-f", fmt, "models/pd.keras")
    assert alone.exit_code == 1, alone.output
    assert READERS[fmt](alone.stdout) == ["models/pd.keras"]
    both = check("-f", fmt, "models/pd.keras", "other/pd.keras")
    assert sorted(set(READERS[fmt](both.stdout))) == ["models/pd.keras", "other/pd.keras"]


def test_a_file_outside_the_working_directory_is_named_absolutely_where_people_read_it(repo, monkeypatch):
    monkeypatch.chdir(repo / "models")
    outside = (repo / "other" / "pd.keras").as_posix()
    assert concise_files(check("-f", "concise", "../other/pd.keras").stdout) == [outside]
    assert json_files(check("-f", "json", "../other/pd.keras").stdout) == [outside]
    assert check("../other/pd.keras").stdout.startswith(outside + "  (")
    assert f'data-path="{outside}"' in check("-f", "html", "../other/pd.keras").stdout
    # machine formats anchor at the repository root (review 35, D4): the
    # same path and fingerprint as from the root
    sarif = json.loads(check("-f", "sarif", "../other/pd.keras").stdout)["runs"][0]
    location = sarif["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "other/pd.keras", "uriBaseId": "%SRCROOT%"}
    assert sarif["originalUriBaseIds"]["%SRCROOT%"]["uri"] == repo.as_uri() + "/"


def test_a_baseline_made_from_one_file_holds_for_the_whole_tree(repo):
    created = check("models/pd.keras", "--baseline", "bl.json", "--create-baseline")
    assert created.exit_code == 0, created.output
    assert [e["path"] for e in json.loads((repo / "bl.json").read_text())["findings"]] == ["models/pd.keras"]

    tree = check("-f", "concise", ".", "--baseline", "bl.json")
    assert concise_files(tree.stdout) == ["other/pd.keras"], tree.stdout  # models/ accepted, other/ is new
    assert tree.exit_code == 1

    other = check("-f", "concise", "other/pd.keras", "--baseline", "bl.json")
    assert concise_files(other.stdout) == ["other/pd.keras"] and other.exit_code == 1  # not hidden by models/


def test_a_baseline_at_the_root_matches_from_a_subfolder(repo, monkeypatch):
    assert check("models/pd.keras", "other/pd.keras", "--baseline", "bl.json", "--create-baseline").exit_code == 0
    monkeypatch.chdir(repo / "models")
    rerun = check("-f", "concise", ".", "--baseline", "../bl.json")
    assert rerun.stdout == "All checks passed!\n" and rerun.exit_code == 0


def legacy_baseline(repo: Path, path: str) -> None:
    """bl.json as reglint wrote it before paths were relative to the baseline:
    no ``paths`` key (the fingerprint is recomputed from ``path`` on load)."""
    assert check("models/pd.keras", "--baseline", "bl.json", "--create-baseline").exit_code == 0
    data = json.loads((repo / "bl.json").read_text())
    del data["paths"]
    for entry in data["findings"]:
        entry["path"] = path
        del entry["fingerprint"]
    (repo / "bl.json").write_text(json.dumps(data))


def test_a_legacy_entry_relative_to_a_config_folder_hides_no_other_file(repo):
    legacy_baseline(repo, "pd.keras")  # written by `reglint models/pd.keras`: relative to models/
    other = check("-f", "concise", "other/pd.keras", "--baseline", "bl.json")
    assert concise_files(other.stdout) == ["other/pd.keras"] and other.exit_code == 1


def test_a_legacy_entry_relative_to_the_baseline_folder_still_matches(repo, monkeypatch):
    legacy_baseline(repo, "models/pd.keras")  # written from the root under a root config
    monkeypatch.chdir(repo / "models")
    rerun = check("-f", "concise", "pd.keras", "--baseline", "../bl.json")
    assert rerun.stdout == "All checks passed!\n" and rerun.exit_code == 0


def test_a_legacy_entry_naming_two_existing_files_matches_neither(repo, monkeypatch):
    shutil.copy(PD, repo / "pd.keras")
    legacy_baseline(repo, "pd.keras")
    monkeypatch.chdir(repo / "models")  # ../pd.keras (from the baseline) or ./pd.keras (from here)?
    rerun = check("-f", "concise", "pd.keras", "--baseline", "../bl.json")
    assert concise_files(rerun.stdout) == ["pd.keras"] and rerun.exit_code == 1
