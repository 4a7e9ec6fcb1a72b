"""CI without glue (issue 17, items 6 and 13): the README's pre-commit,
GitHub Actions and GitLab CI snippets work as written, and the composite
action (``action.yml``) does what it says when its ``run:`` steps are run,
inputs substituted as GitHub substitutes them, on real model files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import KERAS_FIXTURES, ROOT, SARIF_SCHEMA, pre_commit, readme_block, snapshot_checkout

yaml = pytest.importorskip("yaml")  # PyYAML: in the test extra, with pre-commit

BAD = KERAS_FIXTURES / "scenario_penalty_dominates.keras"  # an RL001 error
GOOD = KERAS_FIXTURES / "scenario_healthy_sgd.keras"
WARN = KERAS_FIXTURES / "scenario_decayed_twice.keras"  # warnings only
ACTION = ROOT / "action.yml"


def project(tmp_path: Path) -> Path:
    """A user's repository: models/bad.keras, models/good.keras, models/warn.keras."""
    root = tmp_path / "user"
    (root / "models").mkdir(parents=True)
    shutil.copy(BAD, root / "models" / "bad.keras")
    shutil.copy(GOOD, root / "models" / "good.keras")
    shutil.copy(WARN, root / "models" / "warn.keras")
    return root


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REGLINT_", "GITHUB_", "PRE_COMMIT")) and k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
               GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_SYSTEM=os.devnull, GIT_AUTHOR_NAME="t",
               GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")  # this checkout's reglint
    env.update(extra)
    return env


# ---------------------------------------------------------------------------
# pre-commit: the README's `repo: local` form, as written


def test_readme_precommit_local_hook_works_as_written(tmp_path):
    tool = pre_commit()
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    snippet = readme_block("repo: local")
    config = yaml.safe_load(snippet)
    [hook] = config["repos"][0]["hooks"]
    manifest = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    assert hook["files"] == manifest["files"] and hook["entry"] == manifest["entry"]  # one regex, one entry
    repo = project(tmp_path)
    env = clean_env(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    (repo / ".pre-commit-config.yaml").write_text(snippet)
    (repo / "notes.txt").write_text("not a model\n")
    (repo / "package.json").write_text('{"name": "not a model"}\n')  # matched by name, skipped by content
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)

    def run(*files: str) -> subprocess.CompletedProcess:
        return subprocess.run([tool, "run", "--files", *files], cwd=repo, capture_output=True, text=True,
                              env=env, timeout=300)

    refused = run("models/bad.keras", "notes.txt")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "RL001" in refused.stdout and "models/bad.keras" in refused.stdout
    passed = run("models/good.keras", "notes.txt", "package.json")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout


def test_readme_precommit_clone_form_names_a_real_hook():
    config = yaml.safe_load(readme_block("rev: REV"))
    [repo] = config["repos"]
    assert repo["repo"] == "/path/to/reglint" and [h["id"] for h in repo["hooks"]] == ["reglint"]
    assert "reglint" in {h["id"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


# ---------------------------------------------------------------------------
# the composite action


def action() -> dict:
    return yaml.safe_load(ACTION.read_text(encoding="utf-8"))


def test_action_declares_its_interface():
    data = action()
    assert data["runs"]["using"] == "composite"
    assert set(data["inputs"]) >= {"paths", "args", "sarif", "version", "python-version"}
    assert all(not spec.get("required", False) for spec in data["inputs"].values())
    steps = data["runs"]["steps"]
    assert [s.get("uses", "").split("@")[0] for s in steps if "uses" in s] == ["actions/setup-python"]
    for step in steps:
        if "run" in step:
            assert step["shell"] == "bash"
            # inputs reach scripts through env only: nothing pasted into the shell text
            assert "${{" not in step["run"], step["run"]


def test_readme_workflow_uses_the_action_inputs():
    workflow = yaml.safe_load(readme_block("upload-sarif"))
    steps = workflow["jobs"]["reglint"]["steps"]
    ours = next(s for s in steps if s.get("uses", "").startswith("./"))
    assert set(ours["with"]) <= set(action()["inputs"])
    upload = next(s for s in steps if "upload-sarif" in s.get("uses", ""))
    assert upload["with"]["sarif_file"] == ours["with"]["sarif"] and upload["if"] == "always()"
    assert workflow["permissions"]["security-events"] == "write"


def substitute(value: str, inputs: dict[str, str], action_path: Path) -> str:
    """GitHub's ``${{ ... }}`` expressions this action uses."""
    def one(match: re.Match) -> str:
        expr = match.group(1).strip()
        if expr == "github.action_path":
            return str(action_path)
        if expr.startswith("inputs."):
            return inputs[expr[len("inputs."):]]
        raise AssertionError(f"expression the test does not know: {expr}")
    return re.sub(r"\$\{\{(.*?)\}\}", one, value)


class ActionRunner:
    """Runs the action's ``run:`` steps as the runner would: bash -e, the
    step's env with inputs substituted, GITHUB_OUTPUT/STEP_SUMMARY files."""

    def __init__(self, action_path: Path, workdir: Path, env: dict[str, str]):
        self.action_path, self.workdir, self.env = action_path, workdir, env
        self.data = action()

    def inputs(self, given: dict[str, str]) -> dict[str, str]:
        defaults = {name: str(spec.get("default", "")) for name, spec in self.data["inputs"].items()}
        return {**defaults, **given}

    def run_step(self, step_id_or_name: str, given: dict[str, str], tmp: Path) -> subprocess.CompletedProcess:
        step = next(s for s in self.data["runs"]["steps"]
                    if step_id_or_name in (s.get("id"), s.get("name")))
        inputs = self.inputs(given)
        env = dict(self.env)
        env.update({k: substitute(str(v), inputs, self.action_path) for k, v in step.get("env", {}).items()})
        env.update(GITHUB_OUTPUT=str(tmp / "github_output"), GITHUB_STEP_SUMMARY=str(tmp / "step_summary.md"),
                   GITHUB_ACTION_PATH=str(self.action_path))
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                              cwd=self.workdir, env=env, capture_output=True, text=True, timeout=600)


def test_action_steps_lint_a_project(tmp_path):
    repo = project(tmp_path)
    runner = ActionRunner(ROOT, repo, clean_env(tmp_path))
    sarif = "reglint.sarif"
    result = runner.run_step("lint", {"paths": "models/bad.keras models/good.keras", "sarif": sarif}, tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::error file=models/bad.keras,line=1,title=reglint (RL001)::models/bad.keras: RL001 ")
    assert not any("good.keras" in line for line in lines)
    # SARIF from the same run: schema-valid, the same finding
    document = json.loads((repo / sarif).read_text())
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(document, json.loads(SARIF_SCHEMA.read_text()))
    [run] = document["runs"]
    assert [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
            for r in run["results"]] == [("RL001", "models/bad.keras")]
    assert (tmp_path / "github_output").read_text() == f"sarif={sarif}\n"
    assert "## reglint" in (tmp_path / "step_summary.md").read_text()


def test_action_args_and_defaults(tmp_path):
    repo = project(tmp_path)
    (repo / "models" / "bad.keras").unlink()
    runner = ActionRunner(ROOT, repo, clean_env(tmp_path))
    # paths defaults to "." (the folder is searched); warnings alone pass ...
    default = runner.run_step("lint", {}, tmp_path)
    assert default.returncode == 0, default.stdout + default.stderr
    assert "::warning file=models/warn.keras" in default.stdout
    assert not (tmp_path / "github_output").exists() or "sarif=" not in (tmp_path / "github_output").read_text()
    # ... unless args say otherwise
    strict = runner.run_step("lint", {"args": "--fail-on warning --no-cache"}, tmp_path)
    assert strict.returncode == 1


def test_action_inputs_cannot_inject_shell(tmp_path):
    repo = project(tmp_path)
    runner = ActionRunner(ROOT, repo, clean_env(tmp_path))
    result = runner.run_step("lint", {"paths": "models/good.keras $(touch pwned) `touch pwned2` ;touch pwned3",
                                      "args": "--no-cache"}, tmp_path)
    assert not list(repo.glob("pwned*"))
    assert result.returncode == 2  # the odd words are missing files, reported as such
    assert "no such file or folder" in result.stderr


@pytest.mark.slow
def test_action_installs_reglint_from_its_own_checkout(tmp_path):
    """The install step, for real: a fresh virtual environment whose
    dependencies come from this one (no index needed), reglint built from a
    snapshot of this checkout as ``github.action_path``."""
    action_path = snapshot_checkout(tmp_path / "action")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    site = next(venv.glob("lib/python*/site-packages"))
    ours = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "_test_deps.pth").write_text("\n".join(ours) + "\n")
    env = clean_env(tmp_path, PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0")
    env["PATH"] = str(venv / "bin") + os.pathsep + env["PATH"]
    repo = project(tmp_path)
    runner = ActionRunner(action_path, repo, env)
    installed = runner.run_step("Install reglint", {}, tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert installed.stdout.strip().endswith("reglint 0.1.0")
    assert (venv / "bin" / "reglint").exists()
    linted = runner.run_step("lint", {"paths": "models/bad.keras"}, tmp_path)
    assert linted.returncode == 1 and "::error file=models/bad.keras" in linted.stdout, linted.stderr


# ---------------------------------------------------------------------------
# GitLab CI: the README's job, its reglint line run as written


def test_readme_gitlab_job_writes_the_code_quality_report(tmp_path):
    job = yaml.safe_load(readme_block("codequality"))["reglint"]
    report_name = job["artifacts"]["reports"]["codequality"]
    assert job["artifacts"]["when"] == "always"
    commands = [line for line in job["script"] if line.startswith("reglint ")]
    assert len(commands) == 1
    repo = project(tmp_path)
    result = subprocess.run(["bash", "-c", commands[0]], cwd=repo, env=clean_env(tmp_path), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "Found " in result.stdout and "RL001" in result.stdout  # the full report in the job log
    issues = json.loads((repo / report_name).read_text())
    assert {i["location"]["path"] for i in issues} == {"models/bad.keras", "models/warn.keras"}
    for issue in issues:
        assert set(issue) >= {"check_name", "description", "severity", "fingerprint", "location"}
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert issue["location"]["positions"]["begin"]["line"] == 1
    assert len({i["fingerprint"] for i in issues}) == len(issues)
