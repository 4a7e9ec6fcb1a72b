"""The terminal consoles the reports are drawn on: colour as the user
asked (``--color``, ``NO_COLOR``) and width as the stream allows (a pipe or
a file is never wrapped). Every command's terminal output goes through
``make_console``."""

from __future__ import annotations

import os
import sys
from enum import Enum


class Color(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


# Piped output is never wrapped (ruff's rule): a CI log or a file gets one
# line per finding whatever its length, so the console is made this wide.
UNWRAPPED_WIDTH = 10_000


def make_console(color: Color = Color.auto, stderr: bool = False, file=None):
    """The terminal report's console.

    Colour: an explicit ``--color always`` wins over ``NO_COLOR`` (no-color.org:
    command-line arguments override it); ``--color never``, and ``NO_COLOR``
    without the flag, drop every ANSI style (pylint's reading, not only rich's
    colours). Width: a terminal keeps its width (the table truncates long
    cells with an ellipsis); a pipe or a file gets ``UNWRAPPED_WIDTH`` and soft
    wrapping, so no line is ever broken.
    """
    from rich.console import Console

    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    options: dict = {"stderr": stderr, "file": file, "highlight": False}
    if color is Color.always:
        options.update(force_terminal=True, no_color=False)
    elif color is Color.never or os.environ.get("NO_COLOR"):
        options.update(no_color=True, color_system=None, force_terminal=False if color is Color.never else None)
    if not _isatty(stream):
        options.update(width=UNWRAPPED_WIDTH, soft_wrap=True)
    console = Console(**options)
    if color is Color.always and console.color_system is None:  # TERM=dumb or unset: colour all the same
        console = Console(**options, color_system="standard")
    return console


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
