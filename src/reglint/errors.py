"""Errors that end in a one-line message and exit code 2, never a traceback."""

from __future__ import annotations

import sys


class ReglintError(Exception):
    """Base class: anything reglint reports to the user as one line."""


class ModelReadError(ReglintError):
    """The file cannot be read as a model (corrupt, truncated, wrong format,
    weights only, an LFS pointer ...). The message names what is missing."""


class UnsafeInputError(ModelReadError):
    """The file tries something a linter must refuse: a path outside the
    model's folder, a zip bomb, absurd nesting."""


class NotAModelError(ModelReadError):
    """A file that is no model at all (a ``.json`` file that is not a Keras
    architecture): an error when named, skipped when found by searching."""


class ConfigError(ReglintError):
    """The [tool.reglint] table or a command-line option is invalid."""


def one_line(message: str, limit: int = 400) -> str:
    """Collapse whitespace and control characters so a message is one line."""
    text = " ".join(str(message).split())
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def err(message: str) -> None:
    """One line on stderr, never a traceback."""
    sys.stderr.write(f"reglint: error: {one_line(message)}\n")


# ``check -s/--silent``: warnings and notes are not written (errors are).
SILENT = False


def warn(message: str, kind: str = "warning") -> None:
    """A ``reglint: warning:`` (or ``note:``) line on stderr, unless silent."""
    if not SILENT:
        sys.stderr.write(f"reglint: {kind}: {message}\n")
