"""File discovery (folders, SavedModels, .gitignore, excludes, symlinks), the
content-hash cache and ``--jobs``."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reglint.cli.app import app
from reglint.engine.cache import Cache, cache_dir, clear
from reglint.engine.discover import discover
from reglint.engine.parallel import lint_many
from reglint.engine.settings import Override, Settings


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


@pytest.fixture
def tree(tmp_path, monkeypatch) -> Path:
    """A repository with models, a SavedModel, ignored and excluded files."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    touch(tmp_path, "models/a.keras", "models/B.H5", "models/c.hdf5", "models/d.onnx", "models/notes.txt",
          "sm/saved_model.pb", "sm/keras_metadata.pb", "sm/fingerprint.pb", "sm/variables/variables.index",
          "sm/variables/variables.data-00000-of-00001", "sm/assets/inner.keras",
          ".venv/lib/site.h5", "node_modules/x.onnx",
          "build/out.keras", "logs/keep.keras", "logs/drop.keras", "deep/er/z.keras", "deep/er/skip.onnx")
    (tmp_path / ".gitignore").write_text("build/\nlogs/*.keras\n!logs/keep.keras\n")
    (tmp_path / "deep" / ".gitignore").write_text("*.onnx\n")
    return tmp_path


def test_folders_are_searched_and_a_savedmodel_is_one_model(tree):
    files, missing, _ = discover(["."], Settings())
    assert files == ["deep/er/z.keras", "logs/keep.keras", "models/B.H5", "models/a.keras", "models/c.hdf5",
                     "models/d.onnx", "sm"]
    assert missing == []


def test_gitignore_can_be_turned_off(tree):
    files, _, _ = discover(["."], Settings(respect_gitignore=False))
    assert {"build/out.keras", "logs/drop.keras", "deep/er/skip.onnx"} <= set(files)
    assert ".venv/lib/site.h5" not in files  # default excludes still apply


def test_exclude_replaces_defaults_and_extend_exclude_adds(tree):
    files, _, _ = discover(["."], Settings(extend_exclude=["models/*.onnx", "deep/"]))
    assert "models/d.onnx" not in files and "deep/er/z.keras" not in files and "models/a.keras" in files
    files, _, _ = discover(["."], Settings(exclude=["models"]))
    assert ".venv/lib/site.h5" in files and "node_modules/x.onnx" in files and "models/a.keras" not in files


def test_files_pre_commit_passes(tree):
    """Named files: SavedModel parts map to the folder, linted once; named
    files are linted even when ignored, unless --force-exclude."""
    named = ["sm/saved_model.pb", "sm/keras_metadata.pb", "sm/variables/variables.index",
             "sm/variables/variables.data-00000-of-00001", "./models/a.keras", "models/a.keras",
             "build/out.keras", ".venv/lib/site.h5", "gone.keras"]
    files, missing, _ = discover(named, Settings())
    assert files == [".venv/lib/site.h5", "build/out.keras", "models/a.keras", "sm"]
    assert missing == ["gone.keras"]
    files, _, _ = discover(named, Settings(force_exclude=True, extend_exclude=["build/"]))
    assert files == ["models/a.keras", "sm"]


def test_a_named_folder_is_searched_even_when_it_is_ignored(tree):
    """Patterns that match the named folder or its parents do not hide its
    contents (model folders are often gitignored); patterns that match
    what lies below it still do; --force-exclude skips an excluded folder."""
    touch(tree, "build/sub/deep.keras", "build/tmp/scratch.keras", "build/sub/x.onnx")
    (tree / "build" / ".gitignore").write_text("tmp/\n")
    (tree / ".gitignore").write_text("build/\nlogs/*.keras\n!logs/keep.keras\n*.onnx\n")
    assert discover(["build"], Settings())[0] == ["build/out.keras", "build/sub/deep.keras"]
    assert discover(["build/sub"], Settings())[0] == ["build/sub/deep.keras"]
    assert discover([".venv"], Settings())[0] == [".venv/lib/site.h5"]
    assert discover(["."], Settings())[0] == ["deep/er/z.keras", "logs/keep.keras", "models/B.H5", "models/a.keras",
                                              "models/c.hdf5", "sm"]  # the root's own search is unchanged
    excluded = Settings(extend_exclude=["models/", "*.hdf5"])
    assert discover(["models"], excluded)[0] == ["models/B.H5", "models/a.keras"]
    forced = Settings(extend_exclude=["models/"], force_exclude=True)
    assert discover(["models"], forced)[0] == []
    os.chdir(tree / "build")
    assert discover(["."], Settings())[0] == ["out.keras", "sub/deep.keras"]


def test_a_file_named_twice_is_linted_once(tree):
    spellings = ["models/a.keras", str(tree / "models" / "a.keras"), "./models/../models/a.keras", "models"]
    files, _, _ = discover(spellings, Settings())
    assert files == ["models/B.H5", "models/a.keras", "models/c.hdf5", "models/d.onnx"]


def test_a_file_reached_through_symlinks_is_linted_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "models/m.keras")
    (tmp_path / "models" / "alias.keras").symlink_to(tmp_path / "models" / "m.keras")
    (tmp_path / "mirror").symlink_to(tmp_path / "models", target_is_directory=True)
    assert discover(["models/m.keras", "models/alias.keras"], Settings())[0] == ["models/m.keras"]
    assert discover(["models", "mirror"], Settings())[0] == ["models/alias.keras"]
    assert discover(["mirror/m.keras", "models/m.keras"], Settings())[0] == ["mirror/m.keras"]


def test_a_folder_named_inside_a_savedmodel_is_the_savedmodel(tree):
    """'saved/variables' named (tab completion stops there) is the SavedModel, as its files are."""
    assert discover(["sm/variables"], Settings())[0] == ["sm"]
    assert discover(["sm/assets", "sm/variables/variables.index"], Settings())[0] == ["sm"]


def hf_and_keras_training_folder(root: Path) -> Path:
    """A Keras folder (config.json + model.weights.h5) holding a Trainer checkpoint folder, other models
    beside its own files and a sub-folder with a model."""
    touch(root, "run/config.json", "run/metadata.json", "run/model.weights.h5", "run/best.keras",
          "run/export.onnx", "run/weights.pt", "run/sub/x.keras", "run/checkpoint-3/config.json",
          "run/checkpoint-3/model.safetensors", "run/checkpoint-3/optimizer.pt", "run/checkpoint-3/rng_state.pth",
          "run/checkpoint-3/trainer_state.json", "run/checkpoint-3/training_args.bin",
          "run/checkpoint-3/scheduler.pt", "run/checkpoint-3/extra.onnx",
          "hf/config.json", "hf/model-00001-of-00002.safetensors", "hf/model-00002-of-00002.safetensors",
          "hf/model.safetensors.index.json", "hf/checkpoint-6/trainer_state.json",
          "hf/checkpoint-6/model.safetensors", "hf/checkpoint-6/config.json")
    return root


def test_a_keras_or_hf_folder_does_not_hide_the_models_inside_it(tmp_path, monkeypatch):
    """The folder's own model is linted as the folder; every other model in it (best.keras, an ONNX
    export, checkpoint-N/, a sub-folder's model) is found too. Its own files are not linted twice."""
    monkeypatch.chdir(tmp_path)
    hf_and_keras_training_folder(tmp_path)
    expected = ["hf", "hf/checkpoint-6", "run", "run/best.keras", "run/checkpoint-3", "run/checkpoint-3/extra.onnx",
                "run/export.onnx", "run/sub/x.keras", "run/weights.pt"]
    assert discover(["."], Settings())[0] == expected
    assert discover(["run", "hf"], Settings())[0] == expected  # named, the same
    # pre-commit names files: the folder's own map to it, the others are themselves
    assert discover(["run/config.json", "run/best.keras", "hf/model-00002-of-00002.safetensors",
                     "run/checkpoint-3/rng_state.pth"], Settings())[0] == \
        ["hf", "run", "run/best.keras", "run/checkpoint-3"]


def test_stray_checkpoint_files_are_not_models(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "ckpt/variables/variables.index", "lonely/keras_metadata.pb")
    files, missing, _ = discover(["ckpt/variables/variables.index", "lonely/keras_metadata.pb"], Settings())
    assert files == ["lonely/keras_metadata.pb"] and missing == []  # the reader explains that one


def test_symlinks_never_lead_out_of_the_tree(tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    touch(outside, "secret.keras", "dir/other.keras")
    repo = tmp_path / "repo"
    touch(repo, "models/real.keras")
    (repo / "models" / "link_out.keras").symlink_to(outside / "secret.keras")
    (repo / "models" / "link_in.keras").symlink_to(repo / "models" / "real.keras")
    (repo / "models" / "linked_dir").symlink_to(outside / "dir", target_is_directory=True)
    monkeypatch.chdir(repo)
    files, _, _ = discover(["models"], Settings())
    assert files == ["models/link_in.keras"]  # a link and its target: one file, linted once, first spelling
    # review 55: a link into a sibling folder of the working directory is followed, as the reader follows it
    touch(repo, "runs/best.keras")
    (repo / "models" / "latest.keras").symlink_to(repo / "runs" / "best.keras")
    assert discover(["models"], Settings())[0] == ["models/latest.keras", "models/link_in.keras"]
    # Named explicitly, a link is the user's choice.
    assert discover(["models/link_out.keras"], Settings())[0] == ["models/link_out.keras"]


def test_a_folder_searched_from_outside_offers_only_links_the_reader_follows(tmp_path, monkeypatch):
    """Review 56: searched from another working directory, a link to a
    sibling folder of the tree was offered (its target is inside the folder
    searched) and the reader then refused it (a link is followed within its
    own folder or the working directory): exit 2 on a file the user never
    named (its target ignored by .gitignore, so not found as itself). The
    search keeps the reader's rule, whatever the working directory."""
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    touch(repo, "runs/best.keras", "models/real.keras")
    (repo / ".gitignore").write_text("runs/\n")
    elsewhere.mkdir()
    (repo / "models" / "latest.keras").symlink_to(repo / "runs" / "best.keras")
    (repo / "models" / "alias.keras").symlink_to(repo / "models" / "real.keras")
    (repo / "models" / "broken.keras").symlink_to(tmp_path / "gone" / "nope.keras")  # kept: the reader reports it
    monkeypatch.chdir(elsewhere)
    found = discover([str(repo)], Settings())[0]
    assert [Path(p).relative_to(repo).as_posix() for p in found] == ["models/alias.keras", "models/broken.keras"]
    monkeypatch.chdir(repo)  # inside the project the reader follows it: so does the search
    assert discover(["."], Settings())[0] == ["models/alias.keras", "models/broken.keras", "models/latest.keras"]


def test_relative_excludes_are_anchored_at_the_config_root(tree):
    os.chdir(tree / "models")
    files, _, _ = discover(["."], Settings(root=str(tree), extend_exclude=["/models/a.keras"]))
    assert "a.keras" not in files and "c.hdf5" in files


# ---------------------------------------------------------------------------
# cache and jobs


@pytest.fixture
def many(project) -> list[str]:
    """Two hundred copies of a small wrecked model."""
    folder = project / "many"
    folder.mkdir()
    for i in range(200):
        shutil.copy(project / "models" / "tiny_bad.keras", folder / f"m{i:03d}.keras")
    return sorted(str(p.relative_to(project)) for p in folder.iterdir())


def summary(reports) -> list[tuple[str, list[tuple[str, str | None]]]]:
    return [(r.path, [(f.code, f.layer) for f in r.findings]) for r in reports]


def test_two_hundred_models_with_jobs_then_from_the_cache(project, many):
    result = CliRunner().invoke(app, ["check", "many", "--jobs", "2", "-f", "concise"])
    assert result.exit_code == 1, result.output
    assert result.stdout.count("RL001") == 200

    folder = cache_dir(Settings())
    assert (folder / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"

    again = lint_many(many, Settings(), jobs=2, use_cache=True, progress=False)
    assert len(again) == 200 and all(r.cached for r in again)
    fresh = lint_many(many, Settings(), jobs=1, use_cache=False, progress=False)
    assert not any(r.cached for r in fresh)
    assert summary(again) == summary(fresh)


def test_parallel_results_match_sequential_ones(project):
    files = sorted(str(p.relative_to(project)) for p in (project / "models").iterdir())
    parallel = lint_many(files, Settings(), jobs=3, use_cache=False, progress=False)
    sequential = lint_many(files, Settings(), jobs=1, use_cache=False, progress=False)
    assert summary(parallel) == summary(sequential)
    assert [r.path for r in parallel] == files  # input order kept


def test_cache_keys_on_content_settings_and_path(project):
    path = "models/tiny_bad.keras"
    lint_many([path], Settings(), use_cache=True, progress=False)
    assert lint_many([path], Settings(), use_cache=True, progress=False)[0].cached
    assert not lint_many([path], Settings(ignore=["RL002"]), use_cache=True, progress=False)[0].cached
    shutil.copy(project / "models" / "healthy.keras", project / path)  # same name, new content
    report = lint_many([path], Settings(), use_cache=True, progress=False)[0]
    assert not report.cached and report.findings == []
    shutil.copy(project / path, project / "models" / "copy.keras")
    assert not lint_many(["models/copy.keras"], Settings(), use_cache=True, progress=False)[0].cached


def test_running_out_of_memory_is_never_cached(project, monkeypatch):
    """Memory is the machine's, not the file's: a report that ran out of it
    (a run under a memory limit) is not kept, and the next run reads the
    file again (review 12: the cached error came back until --no-cache)."""
    import reglint.engine.runner as runner

    path = "models/healthy.keras"
    real = runner.read_model

    def starved(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(runner, "read_model", starved)
    first = lint_many([path], Settings(), use_cache=True, progress=False)[0]
    assert first.error and "MemoryError" in first.error and first.transient
    monkeypatch.setattr(runner, "read_model", real)
    second = lint_many([path], Settings(), use_cache=True, progress=False)[0]
    assert not second.cached and second.error is None
    assert lint_many([path], Settings(), use_cache=True, progress=False)[0].cached  # a real report is kept


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize(("folder", "model", "sibling"), [
    ("onnx/external", "model.onnx", "weights.bin"),
    ("tf_checkpoint/tf_ckpts", "ckpt-1.index", "ckpt-1.data-00000-of-00001"),
])
def test_a_file_read_beside_the_model_is_part_of_its_cache_entry(tmp_path, monkeypatch, folder, model, sibling):
    """Review 45, 1: the key hashed the linted file alone, so an ONNX
    model's external data or a checkpoint's shard turned to NaN was still
    served clean from the cache. The files a read opens beside the model
    are hashed with the entry: a change is a miss, and the new read sees
    the NaNs (RL013)."""
    import numpy as np

    monkeypatch.chdir(tmp_path)
    shutil.copytree(FIXTURES / folder, tmp_path / "m")
    path = f"m/{model}"
    first = lint_many([path], Settings(), use_cache=True, progress=False)[0]
    assert first.error is None and str(tmp_path / "m" / sibling) in first.read_with
    assert lint_many([path], Settings(), use_cache=True, progress=False)[0].cached
    data = np.fromfile(tmp_path / "m" / sibling, dtype=np.uint8)
    data[:] = 0xFF  # every float32 a NaN
    data.tofile(tmp_path / "m" / sibling)
    again = lint_many([path], Settings(), use_cache=True, progress=False)[0]
    assert not again.cached and "RL013" in {f.code for f in again.findings}


def test_onnxruntime_artifacts_removed_beside_the_training_graph_are_a_miss(tmp_path, monkeypatch):
    """Review 45, 1: the optimizer graph and checkpoint read beside
    ``training_model.onnx``: once deleted, the cached optimizer is stale."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(FIXTURES / "onnx" / "artifacts_adamw", tmp_path / "art")
    path = "art/training_model.onnx"
    assert lint_many([path], Settings(), use_cache=True, progress=False)[0].model.optimizer is not None
    assert lint_many([path], Settings(), use_cache=True, progress=False)[0].cached
    (tmp_path / "art" / "optimizer_model.onnx").unlink()
    report = lint_many([path], Settings(), use_cache=True, progress=False)[0]
    assert not report.cached


def test_a_failed_read_is_never_cached(tmp_path, monkeypatch):
    """Review 45, 2: an ONNX model read while its external data was still
    a Git LFS pointer failed, and the cached failure outlived ``git lfs
    pull``. A failed run writes nothing, the cache included."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    shutil.copy(FIXTURES / "onnx" / "external" / "model.onnx", tmp_path / "m")
    (tmp_path / "m" / "weights.bin").write_text("version https://git-lfs.github.com/spec/v1\n"
                                                 f"oid sha256:{'0' * 64}\nsize 11048\n")
    failed = lint_many(["m/model.onnx"], Settings(), use_cache=True, progress=False)[0]
    assert failed.error and not list((tmp_path / ".reglint_cache").rglob("*.pickle"))
    shutil.copy(FIXTURES / "onnx" / "external" / "weights.bin", tmp_path / "m")  # git lfs pull
    report = lint_many(["m/model.onnx"], Settings(), use_cache=True, progress=False)[0]
    assert report.error is None and not report.cached


def test_no_cache_writes_nothing_and_env_moves_the_cache(project, tmp_path, monkeypatch):
    lint_many(["models/healthy.keras"], Settings(), use_cache=False, progress=False)
    assert not (project / ".reglint_cache").exists()
    monkeypatch.setenv("REGLINT_CACHE_DIR", str(tmp_path / "elsewhere"))
    lint_many(["models/healthy.keras"], Settings(), use_cache=True, progress=False)
    assert (tmp_path / "elsewhere" / "CACHEDIR.TAG").is_file() and not (project / ".reglint_cache").exists()
    assert clear(Settings()) and not (tmp_path / "elsewhere").exists()


class _Boom:
    """Unpickling this would create a file: a cache must never do it."""

    def __reduce__(self):
        return (Path.touch, (Path(os.environ["BOOM_FILE"]),))


def test_unsigned_or_tampered_entries_are_never_unpickled(project, tmp_path, monkeypatch):
    path = "models/healthy.keras"
    lint_many([path], Settings(), use_cache=True, progress=False)
    cache = Cache.open(Settings())
    key = cache.key(path)
    entry = cache._entry(key)
    boom = tmp_path / "boom"
    monkeypatch.setenv("BOOM_FILE", str(boom))
    # A repository shipping a doctored cache cannot sign it with our key.
    entry.write_bytes(b"\0" * 32 + pickle.dumps(_Boom()))
    assert cache.get(key) is None and not boom.exists()
    report = lint_many([path], Settings(), use_cache=True, progress=False)[0]
    assert not report.cached and not boom.exists()
    assert lint_many([path], Settings(), use_cache=True, progress=False)[0].cached  # rewritten, signed


def test_overrides_suppress_the_same_findings_whatever_the_jobs(project):
    files = ["models/tiny_bad.keras", "models/wreck.keras"]

    def suppressed(jobs: int, use_cache: bool):
        settings = Settings(overrides=[Override(files=["*"], layers=["dense_0"], ignore=["RL002"])])
        reports = lint_many(files, settings, jobs=jobs, use_cache=use_cache, progress=False)
        return reports, sorted(f.key for r in reports for f in r.suppressed)

    _, sequential = suppressed(1, False)
    assert sequential and all(key.startswith("RL002:") for key in sequential)
    assert suppressed(2, False)[1] == sequential
    suppressed(1, True)  # fill the cache
    reports, cached = suppressed(1, True)
    assert all(r.cached for r in reports) and cached == sequential


def test_no_progress_output_when_stderr_is_not_a_terminal(project, many, capfd):
    lint_many(many[:20], Settings(), jobs=1, use_cache=False, progress=True)
    assert capfd.readouterr().err == ""


def test_a_training_checkpoints_files_map_to_its_index(tmp_path, monkeypatch):
    """Review 35, D3: pre-commit never passed a TensorFlow training
    checkpoint (its regex took .index and shards only under variables/), and
    a shard named alone was 'unrecognised'. With --force-exclude each of its
    files stands for the .index; an .index or shard of no checkpoint is
    skipped. The real checkpoint is the one fixtures/tf_checkpoint holds."""
    from helpers import FIXTURES

    shutil.copytree(FIXTURES / "tf_checkpoint" / "training_1", tmp_path / "ckpt")
    (tmp_path / "stray.index").write_text("not a checkpoint")
    (tmp_path / "lone.data-00000-of-00001").write_text("no index")
    monkeypatch.chdir(tmp_path)
    named = ["ckpt/cp.ckpt.index", "ckpt/cp.ckpt.data-00000-of-00001", "stray.index", "lone.data-00000-of-00001"]
    files, missing, _ = discover(named, Settings(force_exclude=True))
    assert files == ["ckpt/cp.ckpt.index"] and missing == []
