"""A small SVG toolkit for the report's charts: scales, axes, curves,
threshold zones, markers and legends. Pure drawing: it knows pixels and
numbers, nothing about rules or models.

Colours are Okabe & Ito's (2008) colour-blind-safe set; every encoding also
has a shape, a dash pattern or a text label, never hue alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from reglint.engine.fmt import g
from reglint.reporters.html.markup import esc, num_attr

BLUE = "#0072B2"
VERMILLION = "#D55E00"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
PURPLE = "#CC79A7"
INK = "#1a1a1a"
GREY = "#6b6b6b"
DARK_GREEN = "#005a46"

# One style per series: colour and dash pattern ("" is solid).
SERIES = ((BLUE, ""), (ORANGE, "9 3"), (PURPLE, "3 3"), (GREEN, "12 3 3 3"), (SKY, "6 2"), (VERMILLION, "2 2"))


def series_style(i: int) -> tuple[str, str]:
    return SERIES[i % len(SERIES)]


def text(x: float, y: float, content: str, *, size: int = 12, anchor: str = "start", cls: str = "",
         weight: str = "", fill: str = INK, extra: str = "") -> str:
    """A ``<text>``; ``content`` must already be escaped."""
    attrs = f" class=\"{cls}\"" if cls else ""
    if weight:
        attrs += f" font-weight=\"{weight}\""
    return (f"<text x=\"{x:.1f}\" y=\"{y:.1f}\" font-size=\"{size}\" text-anchor=\"{anchor}\" "
            f"fill=\"{fill}\"{attrs}{extra}>{content}</text>")


def label_box(x: float, y: float, content: str, *, size: int = 11, weight: str = "600", fill: str = INK,
              anchor: str = "start") -> str:
    """Text on a white box, readable over hatching and grid lines; ``content``
    is plain (escaped here). ``x``: the box's left edge (``anchor="end"``:
    its right edge)."""
    width = len(content) * size * (0.6 if weight else 0.55) + 8  # an estimate: no font metrics here
    left = x - width if anchor == "end" else x
    # the text is anchored at the box's fixed edge, so a wider font spills away from that edge only
    at = text(x - 4, y, esc(content), size=size, weight=weight, fill=fill, anchor="end") if anchor == "end" \
        else text(x + 4, y, esc(content), size=size, weight=weight, fill=fill)
    return (f"<rect x=\"{left:.1f}\" y=\"{y - size - 1:.1f}\" width=\"{width:.0f}\" height=\"{size + 5}\" "
            "fill=\"#ffffff\" fill-opacity=\"0.88\" rx=\"2\"/>" + at)


def shorten(content: str, limit: int) -> str:
    return content if len(content) <= limit else content[: limit - 1] + "\u2026"


def patterns(prefix: str) -> str:
    """Fills: hatched (error), dotted (warning), hatched bars."""
    return (
        "<defs>"
        f"<pattern id=\"{prefix}-hatch\" width=\"7\" height=\"7\" patternUnits=\"userSpaceOnUse\" "
        "patternTransform=\"rotate(45)\"><rect width=\"7\" height=\"7\" fill=\"#fbe3d2\"/>"
        f"<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"7\" stroke=\"{VERMILLION}\" stroke-width=\"2.2\" "
        "stroke-opacity=\"0.55\"/></pattern>"
        f"<pattern id=\"{prefix}-dots\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
        "<rect width=\"6\" height=\"6\" fill=\"#fdf3cf\"/>"
        f"<circle cx=\"3\" cy=\"3\" r=\"1.1\" fill=\"{ORANGE}\"/></pattern>"
        f"<pattern id=\"{prefix}-barhatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
        f"patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"{VERMILLION}\"/>"
        "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#ffffff\" stroke-width=\"1.6\" "
        "stroke-opacity=\"0.6\"/></pattern>"
        "</defs>")


# ---------------------------------------------------------------------------
# scales


class LogScale:
    """``value`` in [lo, hi] (log10) to pixels in [p0, p1].

    >>> s = LogScale(0.01, 100, 0, 400)
    >>> s(1.0), s(0.01), s.decades()
    (200.0, 0.0, [-2, -1, 0, 1, 2])
    """

    def __init__(self, lo: float, hi: float, p0: float, p1: float):
        self.vlo, self.vhi = lo, hi
        self.lo, self.hi, self.p0, self.p1 = math.log10(lo), math.log10(hi), p0, p1

    def __call__(self, value: float) -> float:
        v = math.log10(max(value, 1e-300))
        return self.p0 + (v - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)

    def clamp(self, value: float) -> float:
        lo, hi = sorted((self.p0, self.p1))
        return min(max(self(value), lo), hi)

    def contains(self, value: float) -> bool:
        return self.vlo <= value <= self.vhi

    def decades(self) -> list[int]:
        return list(range(math.ceil(self.lo - 1e-9), math.floor(self.hi + 1e-9) + 1))

    def samples(self, n: int) -> list[float]:
        """``n`` values evenly spaced in log from lo to hi."""
        return [10.0 ** (self.lo + (self.hi - self.lo) * i / (n - 1)) for i in range(n)]


class LinearScale:
    def __init__(self, lo: float, hi: float, p0: float, p1: float):
        self.lo, self.hi, self.p0, self.p1 = lo, hi if hi > lo else lo + 1.0, p0, p1

    def __call__(self, value: float) -> float:
        return self.p0 + (value - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)

    def ticks(self, n: int = 5) -> list[float]:
        raw = (self.hi - self.lo) / n
        step = 10 ** math.floor(math.log10(raw))
        step = next(s * step for s in (1, 2, 2.5, 5, 10) if s * step >= raw)
        first = math.ceil(self.lo / step - 1e-9) * step
        return [first + i * step for i in range(int((self.hi - first) / step + 1e-9) + 1)]


def decade_label(e: int) -> str:
    return g(10.0 ** e) if -3 <= e <= 3 else f"1e{e}"


def decade_range(values: Iterable[float | None], max_span: int = 12) -> tuple[float, float]:
    """Whole decades around the positive finite ``values`` (at most
    ``max_span`` of them, kept at the top); (0.1, 1) when there are none."""
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not vals:
        return 0.1, 1.0
    lo = math.floor(math.log10(min(vals)) + 1e-12)
    hi = math.ceil(math.log10(max(vals)) - 1e-12)
    if hi <= lo:
        hi = lo + 1
    if hi - lo > max_span:
        lo = hi - max_span
    return 10.0 ** lo, 10.0 ** hi


# ---------------------------------------------------------------------------
# pieces of a panel


def path_of(points: Iterable[tuple[float, float]]) -> str:
    pts = [f"{x:.1f},{y:.1f}" for x, y in points]
    return "M" + " L".join(pts) if pts else ""


def polyline(xs: Callable[[float], float], ys: LogScale, ms: list[float], fn: Callable[[float], float]) -> str:
    """The path of ``fn`` sampled at ``ms``, dropping values a log axis cannot show."""
    pts = []
    for m in ms:
        v = fn(m)
        if v is None or v <= 0 or not math.isfinite(v):
            continue
        pts.append((xs(m), ys(v)))
    return path_of(pts)


def zones(prefix: str, x0: float, x1: float, ys: LogScale, bands) -> str:
    """Horizontal bands ``(lo, hi, kind, label)`` from ``lo`` up to ``hi``
    (None: the top), hatched for errors and dotted for warnings, with a
    dashed line at ``lo`` and the label in words."""
    out = []
    top = min(ys.p0, ys.p1)
    for lo, hi, kind, label in bands:
        if lo is None:
            continue
        y_lo = ys.clamp(lo)
        y_hi = ys.clamp(hi) if hi is not None else top
        if y_lo - y_hi < 1:
            continue
        fill = f"url(#{prefix}-hatch)" if kind == "error" else f"url(#{prefix}-dots)"
        stroke = VERMILLION if kind == "error" else ORANGE
        out.append(f"<g class=\"zone zone-{kind}\" data-level=\"{num_attr(lo)}\"><rect x=\"{x0}\" y=\"{y_hi:.1f}\" "
                   f"width=\"{x1 - x0}\" height=\"{y_lo - y_hi:.1f}\" fill=\"{fill}\" fill-opacity=\"0.75\"/>"
                   f"<line x1=\"{x0}\" y1=\"{y_lo:.1f}\" x2=\"{x1}\" y2=\"{y_lo:.1f}\" stroke=\"{stroke}\" "
                   f"stroke-width=\"1.4\" stroke-dasharray=\"6 3\"/>")
        if y_lo - y_hi >= 14:
            # curves rise to the right: the error band is clear at its left
            # end, the warning band (crossed lower down) at its right end
            if kind == "error":
                out.append(label_box(x0 + 4, y_hi + 15, label, fill="#9a3a00"))
            else:
                out.append(label_box(x1 - 4, y_hi + 15, label, fill="#7a5a00", anchor="end"))
        out.append("</g>")
    return "".join(out)


def frame(x0: float, x1: float, top: float, h: float) -> str:
    return (f"<rect x=\"{x0}\" y=\"{top}\" width=\"{x1 - x0}\" height=\"{h}\" fill=\"none\" stroke=\"{INK}\" "
            "stroke-width=\"1\"/>")


def log_y_axis(ys: LogScale, x0: float, x1: float, label: str, top: float, h: float) -> str:
    """Grid lines at each decade, labels on at most eight, the title rotated."""
    out = [frame(x0, x1, top, h)]
    decades = ys.decades()
    step = max(1, math.ceil(len(decades) / 8))
    for e in decades:
        y = ys(10.0 ** e)
        out.append(f"<line x1=\"{x0}\" y1=\"{y:.1f}\" x2=\"{x1}\" y2=\"{y:.1f}\" stroke=\"#000\" "
                   "stroke-opacity=\"0.08\"/>")
        if e % step == 0:
            out.append(f"<line x1=\"{x0 - 5}\" y1=\"{y:.1f}\" x2=\"{x0}\" y2=\"{y:.1f}\" stroke=\"{INK}\"/>")
            out.append(text(x0 - 8, y + 4, esc(decade_label(e)), size=11, anchor="end", fill=GREY))
    out.append(y_title(label, top + h / 2))
    return "".join(out)


def linear_y_axis(ys: LinearScale, x0: float, x1: float, label: str, top: float, h: float,
                  fmt: Callable[[float], str] = g) -> str:
    out = [frame(x0, x1, top, h)]
    for v in ys.ticks():
        y = ys(v)
        out.append(f"<line x1=\"{x0}\" y1=\"{y:.1f}\" x2=\"{x1}\" y2=\"{y:.1f}\" stroke=\"#000\" "
                   "stroke-opacity=\"0.08\"/>")
        out.append(text(x0 - 8, y + 4, esc(fmt(v)), size=11, anchor="end", fill=GREY))
    out.append(y_title(label, top + h / 2))
    return "".join(out)


def y_title(label: str, cy: float) -> str:
    return text(18, cy, esc(label), size=11, anchor="middle", extra=f" transform=\"rotate(-90 18 {cy:.1f})\"")


def multiplier_axis(xs: LogScale, top: float, h: float, absolute: float | None) -> str:
    """Decade ticks as multipliers of today's value (x1 in bold), and the
    absolute value under each when there is a single one today."""
    out = []
    y = top + h
    for e in xs.decades():
        x = xs(10.0 ** e)
        out.append(f"<line x1=\"{x:.1f}\" y1=\"{top}\" x2=\"{x:.1f}\" y2=\"{y}\" "
                   "stroke=\"#000\" stroke-opacity=\"0.08\"/>")
        out.append(f"<line x1=\"{x:.1f}\" y1=\"{y}\" x2=\"{x:.1f}\" y2=\"{y + 5}\" stroke=\"{INK}\"/>")
        out.append(text(x, y + 17, esc("\u00d7" + decade_label(e)), size=11, anchor="middle",
                        fill=INK if e == 0 else GREY, weight="700" if e == 0 else ""))
        if absolute:
            out.append(text(x, y + 30, esc(g(absolute * 10.0 ** e, 2)), size=10, anchor="middle", fill=GREY))
    return "".join(out)


def vline(x: float, top: float, h: float, cls: str = "") -> str:
    klass = f" class=\"{cls}\"" if cls else ""
    return (f"<line{klass} x1=\"{x:.1f}\" y1=\"{top}\" x2=\"{x:.1f}\" y2=\"{top + h}\" stroke=\"{INK}\" "
            "stroke-width=\"1.4\" stroke-dasharray=\"5 3\"/>")


def dot(x: float, y: float, colour: str) -> str:
    return (f"<circle cx=\"{x:.1f}\" cy=\"{y:.1f}\" r=\"5.5\" fill=\"{colour}\" stroke=\"#fff\" "
            "stroke-width=\"1.5\"/>")


def triangle(x: float, y: float, colour: str = GREEN) -> str:
    """An upward triangle centred on (x, y): a fix's landing point."""
    return (f"<path d=\"M{x:.1f},{y - 7:.1f} L{x + 7:.1f},{y + 5:.1f} L{x - 7:.1f},{y + 5:.1f} Z\" "
            f"fill=\"{colour}\" stroke=\"{INK}\" stroke-width=\"0.8\"/>")


class Legend:
    """Symbols and words stacked in a column: every encoding in a chart has a
    text label."""

    def __init__(self, x: float, y: float):
        self.x, self.y = x, y
        self.parts: list[str] = []

    def item(self, symbol: str, lines: list[str]) -> None:
        """``symbol``: SVG with @X (left), @R (right), @M (middle), @Y
        (centre line), @T/@B (top/bottom) placeholders."""
        x, y = self.x, self.y
        self.parts.append(symbol.replace("@X", f"{x:.1f}").replace("@Y", f"{y:.1f}")
                          .replace("@R", f"{x + 22:.1f}").replace("@M", f"{x + 11:.1f}")
                          .replace("@T", f"{y - 7:.1f}").replace("@B", f"{y + 7:.1f}"))
        for i, line in enumerate(lines):
            self.parts.append(text(x + 28, y + 4 + i * 14, esc(line), size=11))
        self.y += 14 * len(lines) + 10

    def line(self, colour: str, dash: str, lines: list[str], width: float = 2.6) -> None:
        dashes = f" stroke-dasharray=\"{dash}\"" if dash else ""
        self.item(f"<line x1=\"@X\" y1=\"@Y\" x2=\"@R\" y2=\"@Y\" stroke=\"{colour}\" stroke-width=\"{width}\""
                  f"{dashes}/>", lines)

    def svg(self) -> str:
        return "<g class=\"legend\">" + "".join(self.parts) + "</g>"
