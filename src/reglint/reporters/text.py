"""Escaping for every output: names in a model file are data, never markup
or terminal control sequences."""

from __future__ import annotations

import re

# C0/C1 controls and DEL, except nothing: a name never needs a newline.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Whole escape sequences first (CSI, OSC), so no fragment survives.
_ESCAPE_SEQ = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def clean(text: object) -> str:
    """Strip terminal escape sequences and control characters.

    >>> clean("dense\\x1b[31m_red\\x1b[0m\\n")
    'dense_red'
    """
    value = str(text)
    value = _ESCAPE_SEQ.sub("", value)
    value = _CONTROL.sub("", value)
    # Unicode bidi overrides can reorder what a reviewer sees.
    return re.sub("[\u202a-\u202e\u2066-\u2069]", "", value)


def markup(text: object) -> str:
    """Cleaned and escaped for rich markup."""
    from rich.markup import escape

    return escape(clean(text))
