"""TensorFlow training checkpoints (fixtures/tf_checkpoint, written by
TensorFlow 2.15's tf.keras: fixtures/make_tf_checkpoint_fixtures.py): a
``cp.ckpt.index`` beside its shards is a model, read without TensorFlow."""

from __future__ import annotations

import json
import shutil

import pytest

from reglint.engine.discover import discover
from reglint.engine.settings import Settings
from reglint.errors import ModelReadError
from reglint.readers import read_model
from reglint.readers.sniff import Format, sniff

from helpers import FIXTURES, run_reglint

CHECKPOINTS = FIXTURES / "tf_checkpoint"
MANIFEST = json.loads((CHECKPOINTS / "manifest.json").read_text())["files"]
BARE = sorted(name for name, entry in MANIFEST.items() if entry.get("model") is False)
MODELS = {name: entry for name, entry in MANIFEST.items() if name not in BARE}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_counts_equal_keras(name):
    model = read_model(CHECKPOINTS / name)
    assert (model.total_params, model.trainable_params) == (MODELS[name]["params"], MODELS[name]["trainable"])
    assert all(v.stats is not None for _, v in model.variables())
    assert any("not the architecture, the regularizers" in note for note in model.notes)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_learning_rate_the_steps_and_the_slots(name):
    optimizer = read_model(CHECKPOINTS / name).optimizer
    saved = MODELS[name]
    assert optimizer.learning_rate.initial == pytest.approx(saved["lr"])
    assert optimizer.iterations == saved["steps"]
    assert ("Adam" in optimizer.class_name) == (saved["slots"] == 2)
    assert optimizer.weight_decay is None  # a Python float: not saved


@pytest.mark.parametrize("name", sorted(n for n in MODELS if n.startswith("legacy/")))
def test_legacy_slots_together_name_the_optimizer(name):
    """Review 44, 4: the slot names were joined with "or" as if each were a
    class ("RMSprop or SGD or mg", "Adam or vhat"); an optimizer keeps all
    its slots, so their set names it: Keras' class and settings."""
    assert read_model(CHECKPOINTS / name).optimizer.class_name == f"unknown ({MODELS[name]['optimizer']})"


def test_the_index_is_the_model_and_the_rest_are_not():
    found = discover([str(CHECKPOINTS)], Settings()).files
    assert sorted(f[len(str(CHECKPOINTS)) + 1:] for f in found) == sorted(MODELS)  # no bare variables
    assert sniff(CHECKPOINTS / "training_1" / "cp.ckpt.index") is Format.TF_CHECKPOINT


def test_an_index_without_its_shards_is_not_a_checkpoint(tmp_path):
    lone = tmp_path / "cp.ckpt.index"
    shutil.copy(CHECKPOINTS / "training_1" / "cp.ckpt.index", lone)
    assert discover([str(tmp_path)], Settings()).files == []
    done = run_reglint(lone)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_keras_3s_weights_are_named_by_the_object_graph():
    """Keras 3's trainable weights sit under optimizer/_trainable_variables/N
    (the first path TensorFlow meets); the object graph names them by the model."""
    model = read_model(CHECKPOINTS / "keras3_ckpts" / "ckpt-1.index")
    locations = [v.location for _, v in model.variables()]
    assert not any(loc.startswith("optimizer") for loc in locations)
    assert sum(loc.endswith("kernel") for loc in locations) == 2
    assert sum(v.role.name == "KERNEL" for _, v in model.variables()) == 2


def test_without_an_object_graph_keras_3s_weights_are_still_counted(monkeypatch):
    """An unreadable object graph leaves the optimizer's list unnamed, not uncounted."""
    import reglint.readers.tf_checkpoint as reader

    monkeypatch.setattr(reader, "model_paths", lambda *args: {})
    model = read_model(CHECKPOINTS / "keras3_ckpts" / "ckpt-1.index")
    saved = MANIFEST["keras3_ckpts/ckpt-1.index"]
    assert (model.total_params, model.trainable_params) == (saved["params"], saved["trainable"])
    assert any("unnamed" in note for note in model.notes)


def test_a_truncated_index_is_a_one_line_error(tmp_path):
    for path in (CHECKPOINTS / "training_1").iterdir():
        shutil.copy(path, tmp_path / path.name)
    index = tmp_path / "cp.ckpt.index"
    index.write_bytes(index.read_bytes()[:300])
    done = run_reglint(index)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cp.ckpt.index is not a TensorFlow checkpoint index" in done.stderr


@pytest.mark.parametrize("name", BARE)
def test_a_checkpoint_holding_no_model_is_skipped_where_files_are_found_not_named(name):
    """Review 36, D7: the pre-commit hook passes every checkpoint's files; a
    tf.train.Checkpoint of bare variables failed it with exit 2. With
    --force-exclude (and in a folder walk) it is skipped; named alone it is
    still an error that says why."""
    index = CHECKPOINTS / name
    shard = index.with_name(index.name.replace(".index", ".data-00000-of-00001"))
    assert discover([str(index), str(shard)], Settings(force_exclude=True)).files == []
    with pytest.raises(ModelReadError, match="without model variables"):
        read_model(index)
