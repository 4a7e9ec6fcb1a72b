"""Escaping for every output: names in a model file are data, never markup
or terminal control sequences."""

from __future__ import annotations

import re
from typing import Any

from reglint.engine.fmt import plural

# C0/C1 controls and DEL, except nothing: a name never needs a newline.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Whole escape sequences first (CSI, OSC), so no fragment survives.
_ESCAPE_SEQ = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def clean(text: object) -> str:
    """Strip terminal escape sequences and control characters, and keep a
    name from starting a GitHub Actions workflow command.

    >>> clean("dense\\x1b[31m_red\\x1b[0m\\n")
    'dense_red'
    >>> clean("::add-mask::secret.keras")
    './::add-mask::secret.keras'
    """
    value = strip_controls(text)
    # A log line starting (after spaces) with "::" or "##[" is a command to
    # the Actions runner (::warning, ::add-mask::, ::stop-commands::); a file
    # or layer name may start a line of the human reports (review 45, 4).
    # "./" keeps a path the same path.
    if value.lstrip().startswith(WORKFLOW_COMMAND):
        value = "./" + value.lstrip()
    return value


WORKFLOW_COMMAND = ("::", "##[")


def strip_controls(text: object) -> str:
    """Terminal escape sequences, control characters and bidi overrides
    removed (``clean`` without its workflow-command guard: a GitHub
    annotation's ``file=`` property names the file as it is)."""
    value = _ESCAPE_SEQ.sub("", str(text))
    value = _CONTROL.sub("", value)
    # Unicode bidi overrides can reorder what a reviewer sees.
    return re.sub("[\u202a-\u202e\u2066-\u2069]", "", value)


def markup(text: object) -> str:
    """Cleaned and escaped for rich markup."""
    from rich.markup import escape

    return escape(clean(text))


def lambda_note(model, ran: bool = False) -> str | None:
    """The note for a model's ``Lambda`` layers, which neither ``check`` nor
    ``profile`` shows in its table (no weights of their own): ``check`` reads
    no code, ``profile`` (under ``--trust-model``) runs it but sees what it
    does only through the data loss. None when there is no Lambda layer."""
    names = [layer.path for layer in model.layers if layer.class_name == "Lambda"]
    if not names:
        return None
    listed = ", ".join(clean(n) for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    one = len(names) == 1
    subject = f"{plural(len(names), 'Lambda layer')} ({listed})"
    if ran:
        what = "it computes" if one else "they compute"
        return (f"{subject} ran as Python code from the file (--trust-model) and {'is' if one else 'are'} skipped "
                f"in the table: no weights of {'its' if one else 'their'} own; what {what} "
                f"is measured only through the data loss")
    return (f"{subject} {'holds' if one else 'hold'} Python code reglint neither reads nor runs: skipped, "
            f"so nothing {'it computes' if one else 'they compute'} is checked")


def summary_line(report) -> str:
    """The last line of the full and concise reports, counted by severity:
    ``Found 6 findings (1 error, 3 warnings, 2 infos) in 2 files.``"""
    counts = {"error": 0, "warning": 0, "info": 0}
    for _, finding in report.findings:
        counts[finding.severity.value] += 1
    total = sum(counts.values())
    parts = [plural(n, level) for level, n in counts.items() if n]
    text = f"Found {plural(total, 'finding')}" + (f" ({', '.join(parts)})" if parts else "")
    text += f" in {plural(len(report.files), 'file')}"
    unreadable = len(report.errors)
    if unreadable:
        text += f"; {unreadable} unreadable"
    return text + "."


def estimates_line(estimates: list[dict], fmt, pct, limit: int = 3) -> str | None:
    """``activity penalty (RL010's estimate per sample at init): d2 about
    2.29 = 142% of the data-loss scale``, from the JSON's
    ``analysis.penalty_estimates``: the terminal's and the HTML's words
    (review 71, 3); ``fmt`` and ``pct`` are the surface's number formats.

    >>> estimates_line([{"code": "RL010", "layer": "d2", "kind": "activity", "per_sample": 2.29, "ratio": 1.42,
    ...                  "batch_factor": 1}], str, lambda v: f"{v:.0%}")
    "activity penalty (RL010's estimate per sample at init): d2 about 2.29 = 142% of the data-loss scale"
    >>> estimates_line([{"code": "RL010", "layer": "c", "kind": "activity", "per_sample": 0.04, "ratio": 0.02,
    ...                  "bound": "at least", "assumed": True}], str, lambda v: f"{v:.0%}").split(": ", 1)[1]
    'c at least 0.04 = 2% (assuming what the file leaves open: reglint explain) of the data-loss scale'
    >>> estimates_line([], str, str) is None
    True
    """
    if not estimates:
        return None
    codes = ", ".join(dict.fromkeys(f"{e['code']}'s" for e in estimates))
    parts = [f"{e['layer']} {e.get('bound') or 'about'} {fmt(e['per_sample'])}"
             + (f" x batch {e['batch_factor']}" if (e.get("batch_factor") or 1) > 1 else "")
             + f" = {pct(e['ratio'])}" + (" (assuming what the file leaves open: reglint explain)"
                                          if e.get("assumed") else "") for e in estimates[:limit]]
    more = f" and {len(estimates) - limit} more (reglint explain)" if len(estimates) > limit else ""
    return (f"{estimates[0]['kind']} penalty ({codes} estimate per sample at init): {', '.join(parts)}{more} "
            f"of the data-loss scale")


def activity_share_text(initial: dict[str, Any], fmt, static: float | None = None) -> str:
    """What the weights' penalty/data ratio leaves out, for the profile's
    terminal and HTML alike: the activity penalty's part of the first batch's
    penalty (review 71, 2: an activity L2 alone read "penalty/data 0" where
    penalty/data was 1.6). ``initial``: ``ProfileResult.to_dict()['initial']``;
    ``fmt``: the surface's number format; ``static``: the static estimate
    of the whole ratio (the weights' and RL010's activity estimate).

    >>> activity_share_text({"other_penalty": 2.43, "penalty_ratio_all": 1.57}, str, 1.42)
    '; counting the activity penalty 2.43 too: 1.57 (static estimate 1.42)'
    >>> activity_share_text({"other_penalty": 0.0, "penalty_ratio_all": 0.0}, str)
    ''
    """
    other, whole = initial.get("other_penalty"), initial.get("penalty_ratio_all")
    if not isinstance(other, (int, float)) or not other > 0 or not isinstance(whole, (int, float)):
        return ""
    told = f" (static estimate {fmt(static)})" if static is not None else ""
    return f"; counting the activity penalty {fmt(other)} too: {fmt(whole)}{told}"
