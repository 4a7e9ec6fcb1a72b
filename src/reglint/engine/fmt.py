"""Number formatting for messages: short, exact enough, never 'nan' surprises.

>>> g(0.009999999776482582)
'0.01'
>>> g(1220)
'1,220'
>>> g(261.4, 2)
'261'
>>> g(99.6, 2), g(999.7), g(999.96, 4), g(1234.5, 4)
('100', '1,000', '1,000', '1,234')
>>> pct(0.0578)
'5.8%'
>>> plural(1, "kernel"), plural(3, "layer")
('1 kernel', '3 layers')
"""

from __future__ import annotations

import math


def g(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "?"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if value == int(value) and abs(value) < 1e6:
        return f"{int(value):,}"
    if 10 ** digits <= abs(value) < 1e6:
        return f"{round(value):,}"
    if 1e-3 <= abs(value) < 1e5:
        shown = f"{value:.{digits}g}"
        # rounding up to 10**digits switches %g to an exponent (99.6 -> '1e+02', review 54); a whole number
        # of four digits or more takes its thousands separator, as the branches above give it (review 55)
        return f"{round(float(shown)):,}" if "e" in shown or ("." not in shown and abs(float(shown)) >= 1000) \
            else shown
    return f"{value:.{max(1, digits - 1)}e}".replace("e-0", "e-").replace("e+0", "e+")


def g_down(value: float | None, digits: int = 3) -> str:
    """``g`` of ``value`` rounded toward zero at ``digits`` significant
    digits: a largest safe value shown must not be past the bound (review
    39: 0.64760 shown as 0.648 made RL001 warn when typed back).

    >>> g(0.6476), g_down(0.6476), g_down(0.863), g_down(None)
    ('0.648', '0.647', '0.863', '?')
    """
    if value is None or not math.isfinite(value) or value == 0:
        return g(value, digits)
    step = 10 ** (math.floor(math.log10(abs(value))) - digits + 1)
    return g(math.copysign(math.floor(abs(value) / step) * step, value), digits)


def pct(value: float | None) -> str:
    """A ratio as a percentage a reader takes in at a glance: never in
    scientific notation, two significant digits below 10%, and ``<0.001%``
    for what is practically nothing.

    >>> [pct(v) for v in (19.28, 0.515, 0.058, 0.00052, 0.000031, 1e-9, 0.0, -0.25)]
    ['1,928%', '51.5%', '5.8%', '0.052%', '0.0031%', '<0.001%', '0%', '-25.0%']
    """
    if value is None or not math.isfinite(value):
        return "?"
    if value < 0:
        return "-" + pct(-value)
    percent = value * 100
    if percent == 0:
        return "0%"
    if percent >= 100:
        return f"{percent:,.0f}%"
    if percent >= 10:
        return f"{percent:.1f}%"
    if percent >= 0.001:
        return f"{percent:.2g}%"
    return "<0.001%"


def decayed_to(decay: float) -> str:
    """What is left of a weight an integrated decay ``D`` shrinks, ``exp(-D)``,
    written as a number while it is one (not the 0 an underflow prints).

    >>> decayed_to(4.5), decayed_to(750.0)
    ('0.011', 'exp(-750)')
    """
    return g(math.exp(-decay), 2) if decay < 300 else f"exp(-{g(decay, 3)})"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and the noun in the right number."""
    return f"{count:,} {noun if count == 1 else (many or noun + 's')}"


def amount(value: float | None, noun: str, digits: int = 2) -> str:
    """A measured quantity and its noun in the right number, as shown.

    >>> amount(1.0, "step"), amount(3.49, "step"), amount(13.16, "step")
    ('1 step', '3.5 steps', '13 steps')
    """
    text = g(value, digits)
    return f"{text} {noun}" if text == "1" else f"{text} {noun}s"


def lam(reg) -> str:
    """A regularizer as the user wrote it: L2(0.01), L1L2(l1=1e-05, l2=0.0001)."""
    if reg.kind == "l2":
        return f"L2({g(reg.l2)})"
    if reg.kind == "l1":
        return f"L1({g(reg.l1)})"
    if reg.kind == "l1l2":
        return f"L1L2(l1={g(reg.l1)}, l2={g(reg.l2)})"
    if reg.kind == "orthogonal":
        return f"OrthogonalRegularizer({g(reg.factor)}, mode={reg.mode})"
    return reg.class_name or "custom"


def lam_list(regularizers, limit: int = 3) -> str:
    """Distinct regularizers as the user wrote them, strongest first (their
    largest lambda), the first ``limit`` named and the rest counted (review
    40, 7: three sorted as text, the strongest left out unsaid).

    >>> from types import SimpleNamespace as R
    >>> regs = [R(kind="l2", l2=x, l1=0.0) for x in (0.001, 0.2, 0.02, 0.2, 0.05)] + [R(kind="l1", l1=0.03, l2=0.0)]
    >>> lam_list(regs)
    'L2(0.2), L2(0.05), L1(0.03) and 2 more'
    """
    strongest: dict[str, float] = {}
    for reg in regularizers:
        text = lam(reg)
        strength = max(getattr(reg, "l1", 0.0) or 0.0, getattr(reg, "l2", 0.0) or 0.0,
                       getattr(reg, "factor", 0.0) or 0.0)
        strongest[text] = max(strength, strongest.get(text, 0.0))
    names = sorted(strongest, key=lambda text: (-strongest[text], text))
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def steps_taken(iterations: int, accumulation: int | None) -> str:
    """The optimizer's recorded steps as both reports say them: the stored
    counter counts batches, and under gradient accumulation one optimizer
    step is ``accumulation`` of them.

    >>> steps_taken(1200, None), steps_taken(10, 4)
    ('1,200 steps taken', '2 steps taken (10 batches, 4 per step)')
    """
    k = accumulation if accumulation is not None and accumulation > 1 else 1
    if k == 1:
        return f"{g(iterations)} steps taken"
    return f"{g(iterations // k)} steps taken ({g(iterations)} batches, {k} per step)"
