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


def entry() -> None:
    """The ``reglint`` console script: ``main``, then exit without tearing the
    interpreter down. Unloading numpy, h5py and the rest costs ~30 ms of every
    pre-commit call and does nothing for a process that is about to end:
    every file has been closed and every output written and flushed by then."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # reader gone (``| head``) or stream closed
        pass
    os._exit(code)
