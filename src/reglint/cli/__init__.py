"""The command line. ``main`` answers ``--version`` before importing Typer,
so the version check costs no more than starting Python."""

from __future__ import annotations

import sys


def main() -> int:
    if sys.argv[1:] in (["--version"], ["version"]):
        from reglint import __version__

        sys.stdout.write(f"reglint {__version__}\n")
        return 0
    from reglint.cli.app import main as app_main

    return app_main()
