"""``python -m reglint``."""

from reglint.cli import entry

entry()
