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


def entry() -> None:
    """The ``reglint`` console script: ``main``, then exit without tearing the
    interpreter down. Unloading numpy, h5py and the rest costs ~30 ms of every
    pre-commit call and does nothing for a process that is about to end:
    every file has been closed and every output written and flushed by then."""
    if sys.argv[1:2] != ["profile"]:  # TensorFlow keeps its own threading
        one_blas_thread()
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # reader gone (``| head``) or stream closed
        pass
    os._exit(code)
