"""The pre-commit hook: the manifest is valid, its ``files`` regex picks the
files that make up models, and (slow: pre-commit builds the hook's virtual
environment from this checkout, which needs the package index) a commit
holding a wrecked model is refused while a healthy one passes, with the
README's clone form of ``.pre-commit-config.yaml``. pre-commit and PyYAML are
in the ``test`` extra, so CI runs all of it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import GIT_ENV, git, pre_commit, readme_block, snapshot_checkout

yaml = pytest.importorskip("yaml")  # comes with pre-commit

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / ".pre-commit-hooks.yaml"


def hook() -> dict:
    return next(h for h in yaml.safe_load(MANIFEST.read_text()) if h["id"] == "reglint")


def test_manifest_validates():
    done = subprocess.run([pre_commit(), "validate-manifest", str(MANIFEST)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_manifest_follows_the_conventions():
    entry = hook()
    assert entry["entry"] == "reglint check --force-exclude"
    assert entry["language"] == "python" and entry["types"] == ["file"]
    assert entry["require_serial"] is True and entry["minimum_pre_commit_version"] == "3.2.0"


@pytest.mark.parametrize(("path", "matched"), [
    ("models/a.keras", True), ("b.h5", True), ("c.hdf5", True), ("d.onnx", True),
    ("sm/saved_model.pb", True), ("sm/keras_metadata.pb", True),
    ("sm/variables/variables.index", True), ("sm/variables/variables.data-00000-of-00001", True),
    ("models/model.json", True),  # passed by name; reglint --force-exclude keeps only Keras architectures
    ("ckpt/step-10/__0_0.distcp", True),  # a torch.distributed.checkpoint: mapped to its folder
    ("ckpt/global_step2/zero_pp_rank_0_mp_rank_00_model_states.pt", True),  # DeepSpeed: to its tag folder
    ("ckpt/cp.ckpt.index", True), ("ckpt/cp.ckpt.data-00000-of-00001", True),  # a TF training checkpoint
    ("variables/other.index", True),  # passed by name; reglint --force-exclude skips what is no checkpoint
    ("notes.txt", False), ("a.keras.txt", False), ("other.pb", False), ("a.data-0-of-1", False),
])
def test_files_regex(path, matched):
    # pre-commit matches with re.search on the repo-relative path.
    assert bool(re.search(hook()["files"], path)) is matched


# ---------------------------------------------------------------------------
# the real thing


@pytest.mark.slow
def test_commit_with_a_wrecked_model_is_refused(tmp_path, real_models, monkeypatch):
    tool = pre_commit()
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path / "pre-commit-home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    hooks_repo = snapshot_checkout(tmp_path / "reglint-src")
    repo = tmp_path / "user"
    repo.mkdir()
    git(repo, "init", "-q")
    shutil.copy(real_models["tiny_bad"], repo / "bad.keras")
    shutil.copy(real_models["healthy"], repo / "good.keras")
    git(repo, "add", "bad.keras", "good.keras")

    def try_repo(*files: str, verbose: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([tool, "try-repo", str(hooks_repo), "reglint", *(["--verbose"] if verbose else []),
                               "--files", *files], cwd=repo, capture_output=True, text=True, timeout=900)

    bad = try_repo("bad.keras")
    if bad.returncode != 0 and "RL001" not in bad.stdout:
        pytest.skip("pre-commit could not build the hook environment (is the package index reachable?):\n"
                    + (bad.stdout + bad.stderr)[-1500:])
    assert bad.returncode == 1 and "RL001" in bad.stdout
    good = try_repo("good.keras")
    assert good.returncode == 0, good.stdout
    # Every .json of a commit is passed; only Keras architectures are linted,
    # and a save_weights checkpoint passes (nothing to lint, not an error).
    (repo / "package.json").write_text('{"name": "web", "version": "1.0.0"}')
    shutil.copy(ROOT / "fixtures" / "exactness" / "json_mlp.json", repo / "model.json")
    shutil.copy(ROOT / "fixtures" / "keras" / "tfk_mlp_weights.h5", repo / "ckpt.h5")
    others = try_repo("package.json", "model.json", "ckpt.h5", verbose=True)
    assert others.returncode == 0, others.stdout + others.stderr
    assert "model.json" in others.stdout and "package.json" not in others.stdout + others.stderr

    # As a user would have it: the README's clone form, its two placeholders
    # filled in, installed into Git.
    rev = git(hooks_repo, "rev-parse", "HEAD").stdout.strip()
    snippet = readme_block("rev: REV")
    assert "/path/to/reglint" in snippet
    (repo / ".pre-commit-config.yaml").write_text(
        snippet.replace("/path/to/reglint", str(hooks_repo)).replace("rev: REV", f"rev: {rev}"))
    subprocess.run([tool, "install"], cwd=repo, check=True, capture_output=True)
    git(repo, "add", ".pre-commit-config.yaml")
    refused = git(repo, "commit", "-m", "add a wrecked model", check=False)
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "bad.keras  (keras_v3" in output and "RL001 penalty-dominates-loss" in output
    git(repo, "rm", "-q", "--cached", "bad.keras")
    accepted = git(repo, "commit", "-m", "add a healthy model", check=False)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
