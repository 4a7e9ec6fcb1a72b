"""The command line. ``main`` answers ``--version`` before importing Typer,
so the version check costs no more than starting Python; ``entry`` (the
console script) also skips the interpreter's teardown."""

from __future__ import annotations

import os
import sys


def main() -> int:
    if sys.argv[1:] in (["--version"], ["version"]):
        from reglint import __version__

        sys.stdout.write(f"reglint {__version__}\n")
        return 0
    from reglint.cli.app import main as app_main

    return app_main()


def one_blas_thread() -> None:
    """reglint's arithmetic is sums over weights, not matrix products, yet
    numpy's OpenBLAS starts a worker per core at import and lets it spin:
    ~0.15 s of CPU per run for nothing, taken from the reader on a 2-core CI
    runner and multiplied when pre-commit runs hooks side by side (ResNet50
    check: user CPU 0.47 -> 0.32 s). Set before numpy is imported; a value
    the user exported wins."""
    for name in ("OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


class PipeSafe:
    """stdout or stderr, quiet once its reader is gone. ``reglint ... | head
    -1`` closes the pipe early: that is the reader's choice, not an error,
    so the rest of the output goes to /dev/null (Python's advice for
    SIGPIPE) and the command ends with the exit code it would have had
    (1 still means findings, 2 an error), with no message. Without this,
    rich exits 1 and Click exits 1 on EPIPE: "findings" for a clean file."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # no file descriptor (a test's capture): drop the output
            self._stream = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def entry() -> None:
    """The ``reglint`` console script: ``main``, then exit without tearing the
    interpreter down. Unloading numpy, h5py and the rest costs ~30 ms of every
    pre-commit call and does nothing for a process that is about to end:
    every file has been closed and every output written and flushed by then."""
    if sys.argv[1:2] != ["profile"]:  # TensorFlow keeps its own threading
        one_blas_thread()
    sys.stdout, sys.stderr = PipeSafe(sys.stdout), PipeSafe(sys.stderr)
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # reader gone (``| head``) or stream closed
        pass
    os._exit(code)
