"""Issue: model files are untrusted input. Every hostile file ends in exit 0,
1 or 2 with a one-line message, no traceback, no code from the file run,
nothing read or written outside the model's folder, in bounded time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import KERAS_FIXTURES
from hostile_files import write_hostile_files

REGLINT = [sys.executable, "-m", "reglint"]
PWNED = Path("/tmp/reglint_pwned")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "models"
    return folder, write_hostile_files(folder)


def run(*args, timeout=60):
    return subprocess.run([*REGLINT, *args], capture_output=True, text=True, timeout=timeout)


def test_each_hostile_file_alone(hostile):
    folder, cases = hostile
    PWNED.unlink(missing_ok=True)
    for name, expected in sorted(cases.items()):
        result = run("check", str(folder / name), "--format", "json", "--no-cache")  # run's timeout: a hang guard
        assert result.returncode in expected, (name, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout, name
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        if result.returncode == 2 or result.stderr:
            assert len(lines) == 1 and lines[0].startswith("reglint: "), (name, result.stderr)
        if result.returncode == 2:  # the only file unreadable: the error line is the whole answer
            assert result.stdout == "", name
            continue
        report = json.loads(result.stdout)  # machine output stays valid JSON
        if not report["files"]:
            assert "no model files" in result.stderr, name
            continue
        entry = report["files"][0]
        assert (entry["error"] is not None) == (result.returncode == 2), name
        # RL012 reports a bad factor; no rule estimates anything from it
        if name.startswith("lambda_") and name != "lambda_layer.keras":
            errors = {f["code"] for f in entry["findings"] if f["severity"] == "error"}
            assert errors == {"RL012"}, (name, errors)
            assert not any(t in f["message"] for f in entry["findings"] if f["code"] != "RL012"
                           for t in ("nan", "infx", " ?")), name
    assert not PWNED.exists(), "code from a model file ran"


def test_whole_folder_lints_the_rest(hostile):
    folder, _cases = hostile
    result = run("check", str(folder), "--format", "json", "--no-cache", timeout=300)
    assert result.returncode == 2  # some files are unreadable
    report = json.loads(result.stdout)
    linted = {Path(f["path"]).name for f in report["files"] if f["error"] is None}
    assert {"lambda_nan.keras", "nan_weights.keras", "escape_names.keras"} <= linted


def test_names_cannot_drive_the_terminal(hostile):
    folder, _ = hostile
    for fmt in ("full", "concise", "json", "sarif", "github", "junit"):
        result = run("check", str(folder / "escape_names.keras"), "--format", fmt, "--no-cache")
        out = result.stdout
        assert "\x1b" not in out and "\x07" not in out, fmt
        assert "EVIL" in out or fmt == "full" or "evil" in out.lower(), fmt
    full = run("check", str(folder / "escape_names.keras"), "--color", "always", "--no-cache").stdout
    assert "[bold red]EVIL[/]" in full  # shown literally, not interpreted as markup
    assert "\x1b]8;;" not in full


def test_lambda_bytecode_and_modules_are_data(hostile):
    folder, _ = hostile
    PWNED.unlink(missing_ok=True)
    for name in ("lambda_layer.keras", "module_import.keras", "member_traversal.keras"):
        result = run("check", str(folder / name), "--no-cache")
        assert result.returncode in (0, 1), (name, result.stderr)
    assert not PWNED.exists()
    script = ("import sys, reglint.cli.app as a; a.main(['check', '-q', sys.argv[1]]); "
              "print(' '.join(sorted(m for m in sys.modules if m.startswith(('tensorflow', 'keras')))))")
    assert "tensorflow" not in subprocess.run(
        [sys.executable, "-c", script, str(folder / "lambda_layer.keras")], capture_output=True, text=True).stdout


def test_json_past_the_integer_digit_limit_is_a_read_error():
    # json.loads raises a plain ValueError here, not a JSONDecodeError (no .msg, no .lineno).
    from reglint.errors import ModelReadError
    from reglint.readers.safe_io import load_json

    with pytest.raises(ModelReadError, match=r"^config\.json is not readable JSON \(Exceeds the limit"):
        load_json(b'{"units": ' + b"1" * 5000 + b"}", what="config.json", max_bytes=1 << 20, max_depth=100)


@pytest.mark.parametrize("name", ["notes.pt", "archive.zip"])
def test_zip_that_is_neither_keras_nor_torch_says_so(tmp_path, name):
    """A zip archive with neither config.json nor data.pkl is no model: the
    error says what either kind would hold, not 'not a .keras model'."""
    import zipfile

    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes/readme.txt", "hello")
    result = subprocess.run([sys.executable, "-m", "reglint", "check", str(path), "--no-cache"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "neither config.json (a .keras model) nor data.pkl (a torch.save checkpoint)" in line


def _one_error_line(result, name: str) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, (name, result.stderr)
    assert "internal error" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith(f"reglint: error: {name}: "), line
    return line


def test_symlink_loops_are_read_errors_in_every_command(tmp_path, monkeypatch):
    """Path.resolve() raises RuntimeError on a loop (Python 3.11): the config
    search, the output checks and the folder walk each met it first and
    answered "internal error". A loop is a read error of its own file."""
    monkeypatch.chdir(tmp_path)
    Path("loop.keras").symlink_to("loop.keras")
    Path("a.onnx").symlink_to("b.onnx")
    Path("b.onnx").symlink_to("a.onnx")
    Path("notes.json").symlink_to("notes.json")  # no model's name: skipped by the walk
    for args in (["check", "loop.keras"], ["loop.keras", "--no-cache"], ["explain", "loop.keras"],
                 ["check", "a.onnx", "--isolated"], ["check", "a.onnx", "--format", "json", "-o", "out.json"]):
        result = run(*args)
        name = next(a for a in args if a.endswith((".keras", ".onnx")))
        assert "symbolic link loop" in _one_error_line(result, name), args
        assert result.stdout == "" and not Path("out.json").exists(), args
    shutil.copy(KERAS_FIXTURES / "scenario_penalty_dominates.keras", "good.keras")
    result = run("check", ".", "--format", "json")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert sorted(line.split(":")[2].strip() for line in result.stderr.splitlines()) == [
        "a.onnx", "b.onnx", "loop.keras"]
    files = {Path(f["path"]).name: f["error"] for f in json.loads(result.stdout)["files"]}
    assert files.keys() == {"a.onnx", "b.onnx", "loop.keras", "good.keras"} and files["good.keras"] is None


def test_a_link_into_a_sibling_folder_of_the_project_is_followed_one_out_of_it_refused(tmp_path, monkeypatch):
    """Review 54, 5: ``latest.keras -> ../runs/best.keras`` was refused (its
    target is outside the link's folder) and the refusal named the file
    twice. A link is followed within its folder or the working directory
    (the project pre-commit and CI lint); one leaving both is refused, named
    once."""
    project, outside = tmp_path / "project", tmp_path / "elsewhere"
    for folder in (project / "runs", project / "models", outside):
        folder.mkdir(parents=True)
    shutil.copy(KERAS_FIXTURES / "scenario_penalty_dominates.keras", project / "runs" / "best.keras")
    shutil.copy(KERAS_FIXTURES / "scenario_penalty_dominates.keras", outside / "secret.keras")
    Path(project / "models" / "latest.keras").symlink_to("../runs/best.keras")
    Path(project / "models" / "out.keras").symlink_to(outside / "secret.keras")
    monkeypatch.chdir(project)
    followed = run("check", "models/latest.keras", "--format", "json")
    assert followed.returncode == 1 and json.loads(followed.stdout)["files"][0]["findings"], followed.stderr
    line = _one_error_line(run("check", "models/out.keras"), "models/out.keras")
    assert line.endswith("symbolic link pointing outside the model's folder and the working directory: refused")
    assert line.count("out.keras") == 1
    monkeypatch.chdir(outside)  # from elsewhere, the project's own link leaves both
    _one_error_line(run("check", str(project / "models" / "latest.keras")), str(project / "models" / "latest.keras"))


def test_a_fifo_is_refused_without_being_read(tmp_path, monkeypatch):
    """The cache hashed a model's bytes before the reader checked it was a
    regular file: `reglint check fifo.keras` waited forever for a writer."""
    import os

    monkeypatch.chdir(tmp_path)
    os.mkfifo("fifo.keras")
    for args in (["check", "fifo.keras"], ["fifo.keras"], ["explain", "fifo.keras"]):
        line = _one_error_line(run(*args, timeout=120), "fifo.keras")  # the timeout: a hang guard
        assert line.endswith("not a regular file"), args
    assert run("check", ".", timeout=120).returncode == 0  # a folder's FIFO is no model: skipped, not opened


def _as_a_user() -> list[str] | None:
    """The prefix that runs a command without root's permission override
    (root reads chmod 000 files): none for a user, ``unshare --user`` for
    root where the kernel allows it; None where neither can run it."""
    import os

    if os.geteuid() != 0:
        return []
    prefix = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if probe.returncode == 0 else None


def test_unreadable_folders_and_targets_are_one_line_errors(tmp_path, monkeypatch):
    """Review 27, D1/D2: Path.is_file() raises PermissionError inside a
    folder that cannot be searched (Python 3.11); a chmod 000 folder in a
    linted tree ended the run as an "internal error", and a folder that can
    be entered but not listed was skipped ("no model files", exit 0)."""
    prefix = _as_a_user()
    if prefix is None:
        pytest.skip("cannot drop root's permission override here (no unprivileged user namespace)")
    monkeypatch.chdir(tmp_path)
    shutil.copy(KERAS_FIXTURES / "scenario_penalty_dominates.keras", "a.keras")
    for name, mode in (("secret", 0o000), ("listless", 0o311)):
        Path(name).mkdir()
        shutil.copy("a.keras", Path(name) / "b.keras")
        Path(name).chmod(mode)
    try:
        def run_as_user(*args):
            return subprocess.run([*prefix, *REGLINT, *args], capture_output=True, text=True, timeout=120)

        result = run_as_user("check", ".", "--no-cache", "--format", "json")
        assert result.returncode == 2 and "Traceback" not in result.stderr and "internal" not in result.stderr
        assert sorted(result.stderr.splitlines()) == [
            "reglint: error: listless: permission denied: the folder cannot be listed",
            "reglint: error: secret: permission denied: the folder cannot be listed"]
        files = {f["path"]: f["error"] for f in json.loads(result.stdout)["files"]}
        assert files["a.keras"] is None and set(files) == {"a.keras", "secret", "listless"}  # the rest linted
        for args, line in (
                (["check", "secret/b.keras"], "reglint: error: secret/b.keras: permission denied"),
                (["explain", "secret/b.keras"], "reglint: error: secret/b.keras: permission denied"),
                (["check", "a.keras", "-o", "secret/out.json"],
                 "reglint: error: cannot write the full report to secret/out.json: permission denied"),
                (["check", "a.keras", "--baseline", "secret/b.json", "--create-baseline"],
                 "reglint: error: cannot write the baseline to secret/b.json: permission denied"),
                (["check", "a.keras", "--config", "secret/c.toml"],
                 "reglint: error: secret/c.toml: permission denied")):
            result = run_as_user(*args, "--no-cache") if args[0] == "check" else run_as_user(*args)
            assert (result.returncode, result.stderr.strip()) == (2, line), args
            assert result.stdout == ""
        # review 45, 3: an unreadable file named beside a readable one is one line; the other is linted
        shutil.copy("a.keras", "noread.keras")
        Path("noread.keras").chmod(0o000)
        result = run_as_user("check", "noread.keras", "a.keras", "--no-cache", "--format", "json")
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("reglint: error: noread.keras: ") and "ermission denied" in result.stderr
        files = {f["path"]: f for f in json.loads(result.stdout)["files"]}
        assert [f["code"] for f in files["a.keras"]["findings"]] == ["RL001"] and files["noread.keras"]["error"]
        Path("write_only.json").touch(mode=0o200)  # written, never read: -o takes it (review 27, D11)
        result = run_as_user("check", "a.keras", "--no-cache", "--format", "json", "-o", "write_only.json")
        assert result.returncode == 1 and result.stderr == "", result.stderr
        Path("write_only.json").chmod(0o600)
        assert '"RL001"' in Path("write_only.json").read_text()
    finally:
        for name in ("secret", "listless"):
            Path(name).chmod(0o755)


def test_a_name_cannot_start_a_github_workflow_command(tmp_path, monkeypatch):
    """Review 45, 4-5: a model file named ``::warning file=README.md::...``
    began lines of the full, concise and pylint reports, which the Actions
    runner executes as workflow commands (a forged annotation,
    ``::add-mask::``, ``::stop-commands::``); and the github format's
    ``file=`` property kept an escape byte its message had removed."""
    monkeypatch.chdir(tmp_path)
    hostile = "::warning file=README.md,line=1::looks fine.keras"
    shutil.copy(KERAS_FIXTURES / "scenario_penalty_dominates.keras", hostile)
    shutil.copy(KERAS_FIXTURES / "scenario_penalty_dominates.keras", "esc\x1b[31mred.keras")
    for fmt in ("full", "concise", "pylint"):
        result = run("check", hostile, "--no-cache", "--format", fmt, timeout=120)
        assert result.returncode == 1, result.stderr
        lines = result.stdout.splitlines()
        assert not [line for line in lines if line.lstrip().startswith(("::", "##["))], fmt
        assert any("./::warning file=README.md,line=1::looks fine.keras" in line for line in lines), fmt
    result = run("check", "esc\x1b[31mred.keras", "--no-cache", "--format", "github", timeout=120)
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("::error ")]
    assert "\x1b" not in line and line.startswith("::error file=escred.keras,")  # as its message names it


def test_a_keras_archive_with_a_member_twice_is_refused(tmp_path):
    """Review 45, 7: two ``config.json`` members; Python's zipfile (and so
    Keras) reads the last, ``unzip`` shows the first: the archive was linted
    as the hidden one. A zip-smuggling trick: one line, exit 2."""
    import zipfile

    from helpers import assert_one_line_refusal, run_reglint

    source = KERAS_FIXTURES / "scenario_penalty_dominates.keras"
    target = tmp_path / "twice.keras"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, old.read(info))
        with pytest.warns(UserWarning, match="Duplicate name"):
            new.writestr("config.json", '{"class_name": "Sequential", "config": {"layers": []}}')
    assert_one_line_refusal(run_reglint(target), "'config.json' appears twice")


def test_a_stored_tensor_the_config_refutes_is_not_counted(tmp_path):
    """Review 54: where the config fixes only part of a kernel's shape (no
    input shape recorded), a 32 KB file declaring a 200000 x 200000 kernel
    where the config implies (?, 16) was counted as 40 billion regularized
    weights, with RL001 and RL004 judging them. RL019 reports the tensor;
    counts and penalties leave it out."""
    import h5py

    path = tmp_path / "huge.h5"
    shutil.copy(KERAS_FIXTURES / "tfk_mlp.h5", path)
    with h5py.File(path, "a") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"] = config["config"]["layers"][1:]  # no InputLayer: the input width is lost
        for layer in config["config"]["layers"]:
            layer["config"].pop("batch_input_shape", None)
        f.attrs["model_config"] = json.dumps(config)
        group = f["model_weights/dense/dense"]
        del group["kernel:0"]
        group.create_dataset("kernel:0", shape=(200000, 200000), dtype="f4", chunks=(1000, 1000))  # never written
    result = run("check", str(path), "--format", "json", "--no-cache")
    report = json.loads(result.stdout)["files"][0]
    assert result.returncode == 1 and report["error"] is None
    mismatch = [f for f in report["findings"] if f["code"] == "RL019" and f["severity"] == "error"]
    assert [(f["layer"], f["message"]) for f in mismatch] == [
        ("dense", "kernel: stored shape (200000, 200000) where the config implies (?, 16)")]
    assert report["model"]["params"]["total"] < 1000
    assert not any(f["code"] in ("RL001", "RL004") for f in report["findings"])
    assert any("which the config refutes: left out of the counts and penalties" in n for n in report["model"]["notes"])
