"""Text for the page: escaping, numbers as the JSON holds them, severity
labels. Everything here reads plain JSON values (the report dict), never the
engine's objects.

Every name comes from an untrusted model file and goes through ``esc``
(``clean``, then ``html.escape``).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from typing import Any

from reglint.engine.fmt import g, pct
from reglint.reporters.text import clean

SEVERITY_MARK = {"error": "\u2716", "warning": "\u25B2", "info": "\u25CF"}  # cross, triangle, dot
SEVERITIES = ("error", "warning", "info")


def esc(value: object) -> str:
    """Untrusted text, safe in element content and quoted attributes."""
    return html.escape(clean(value), quote=True)


def num_attr(value: Any) -> str:
    """A number for a ``data-*`` attribute, exactly as JSON writes it."""
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return json.dumps(value)


def json_for_script(data: Any) -> str:
    """JSON that cannot end its ``<script>`` element early: ``<``, ``>``
    and ``&`` as ``\\u`` escapes (``json.loads`` reads back the same).

    >>> text = json_for_script({"a": "</script>"})
    >>> "<" in text, json.loads(text)
    (False, {'a': '</script>'})
    """
    text = json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def number(value: Any) -> float | None:
    """A JSON value as a float: numbers as they are, the strings ``"inf"``,
    ``"-inf"`` and ``"nan"`` the JSON writes for non-finite floats as
    floats, anything else None.

    >>> number(2), number("inf"), number("x"), number(True)
    (2.0, inf, None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.lower() in ("inf", "-inf", "infinity", "-infinity", "nan"):
        return float(value)
    return None


def as_object(value: Any) -> dict:
    """A JSON object as it is, anything else (null, a list) as {}."""
    return value if isinstance(value, dict) else {}


def positive(value: Any) -> float | None:
    """``number(value)`` when it is finite and above zero (a point on a log axis)."""
    v = number(value)
    return v if v is not None and math.isfinite(v) and v > 0 else None


def gx(value: Any, digits: int = 3) -> str:
    """``g`` for a JSON value: ints keep their thousands separators, "?"
    for a missing one, other text as it is."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return g(value)
    v = number(value)
    if v is not None:
        return g(v, digits)
    return "?" if value is None else str(value)


def pctx(value: Any) -> str:
    """``pct`` for a JSON value; an exact zero is ``0%``.

    >>> pctx(0), pctx(0.0578), pctx(None)
    ('0%', '5.8%', '?')
    """
    v = number(value)
    if v is None:
        return "?"
    return "0%" if v == 0 else pct(v)


def num_text(value: Any, fmt: Callable[[Any], str] = gx) -> str:
    """A number for the page, escaped; empty for a missing one."""
    if value is None:
        return ""
    if number(value) is None:
        return esc(value)
    return esc(fmt(value))


def sev_label(severity: str, text: str | None = None) -> str:
    """Severity in words and a shape, never colour alone."""
    return (f"<span class=\"sev sev-{esc(severity)}\"><span aria-hidden=\"true\">"
            f"{SEVERITY_MARK.get(severity, '')}</span> {esc(text or severity)}</span>")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def severity_counts(findings: list[dict]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        severity = finding.get("severity")
        if severity in counts:
            counts[severity] += 1
    return counts


def counts_text(counts: dict[str, int]) -> str:
    """``"1 error, 2 warnings"``; empty when there are none."""
    return ", ".join(plural(counts[k], k) for k in SEVERITIES if counts[k])


def worst(findings: list[dict]) -> str | None:
    counts = severity_counts(findings)
    return next((k for k in SEVERITIES if counts[k]), None)


def zone(value: Any, warning: Any, error: Any) -> str | None:
    """Which band of a curve's chart ``value`` lies in: the rule's own
    levels, as the chart draws them (error at or above ``error``, warning
    at or above ``warning``).

    >>> zone(20, 5, 18), zone(6, 5, 18), zone(1, 5, None), zone(None, 5, 18)
    ('error', 'warning', None, None)
    """
    v, w, e = number(value), number(warning), number(error)
    if v is None or v != v:
        return None
    if e is not None and v >= e:
        return "error"
    if w is not None and v >= w:
        return "warning"
    return None


def regularizer_text(reg: dict) -> str:
    """A regularizer dict of the JSON as the user wrote it: ``L2(0.01)``,
    ``L1L2(l1=1e-05, l2=0.0001)`` (the terminal's ``fmt.lam`` on the JSON).

    >>> regularizer_text({"kind": "l2", "l1": 0.0, "l2": 0.01})
    'L2(0.01)'
    """
    kind = reg.get("kind")
    if kind == "l2":
        return f"L2({gx(reg.get('l2'))})"
    if kind == "l1":
        return f"L1({gx(reg.get('l1'))})"
    if kind == "l1l2":
        return f"L1L2(l1={gx(reg.get('l1'))}, l2={gx(reg.get('l2'))})"
    if kind == "orthogonal":
        return f"OrthogonalRegularizer({gx(reg.get('factor'))}, mode={reg.get('mode')})"
    return str(reg.get("class_name") or "custom")


def change_text(change: dict) -> str:
    """One change of a finding's fix: ``layer target parameter current -> suggested``
    (``remove`` when the fix drops the setting)."""
    where = " ".join(str(x) for x in (change.get("layer"), change.get("target")) if x)
    to = "remove" if change.get("suggested") is None else \
        f"{gx(change.get('current'))} -> {gx(change.get('suggested'))}"
    return f"{where + ' ' if where else ''}{change.get('parameter', '?')} {to}"
