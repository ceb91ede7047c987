"""The plot's static snapshot: an SVG with axes, ticks, a legend and the plot's kind.

Drawn like the live uPlot view: the x range follows the points shown (time
of day for timestamps, in UTC as the table writes them), the y range is
rounded out to tick values, series take the front end's colours in order.
A line is a polyline per unbroken run of values, a scatter a round dot per
point, a bar chart bars from zero side by side; dots and bars of one series
are a single path, so a window of 500 points stays a small snapshot.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import math
from collections.abc import Callable, Sequence

from ._format import esc, fmt_time
from ._svg import PALETTE, dash_of, el, nice_ticks, svg_root, text, text_width, truncate

__all__ = ["plot_summary", "plot_svg"]

Point = tuple[float, list[float | None]]
AXIS, GRID, INK = "#999", "#eee", "#444"


def _num(v: float, step: float) -> str:
    """``v`` with as many decimals as ``step`` needs."""
    if abs(v) >= 1e6 or (v and abs(v) < 1e-4):
        return f"{v:.3g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    s = f"{v:.{decimals}f}"
    return "0" if s.strip("-0.") == "" else s


def _clock(t: float, step: float) -> str:
    """A timestamp as time of day to the precision ``step`` needs (a date once ticks are a day apart)."""
    if step >= 43_200:
        return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d")
    s = fmt_time(t)  # HH:MM:SS.mmm
    return s[:8] if step >= 1 else s[:10] if step >= 0.1 else s[:11] if step >= 0.01 else s


def _legend(fields: Sequence[str], last: list[float | None], width: float) -> tuple[list[str], float]:
    """Swatches with each field's name and last value, wrapped to ``width``; their height."""
    out, x, y = [], 8.0, 14.0
    for i, name in enumerate(fields):
        v = last[i]
        label = truncate(name, 40) + ("" if v is None else f" {v:.4g}")
        w = 14 + text_width(label, 11) + 16
        if x > 8 and x + w > width:
            x, y = 8.0, y + 16
        out.append(
            el("rect", {"x": x, "y": y - 9, "width": 10, "height": 10, "fill": PALETTE[i % len(PALETTE)]})
        )
        out.append(text(x + 14, y, label, font_size=11, fill=INK))
        x += w
    return out, y + 16


def _runs(pts: Sequence[Point], i: int) -> list[list[tuple[float, float]]]:
    """The unbroken runs of series ``i`` (a ``None`` is a gap)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, ys in pts:
        v = ys[i]
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, v))
    return [r for r in runs if r]


def _blank(width: float, height: float, note: str) -> str:
    """A framed drawing with only ``note`` in it."""
    words = text(width / 2, height / 2, note, text_anchor="middle", font_size=13, fill="#888")
    frame = el("rect", {"width": width, "height": height, "fill": "none", "stroke": GRID})
    return svg_root(width, height, frame, words, max_width=width)


def plot_svg(
    pts: Sequence[Point],
    fields: Sequence[str],
    *,
    x: str,
    kind: str,
    width: float = 640,
    height: float = 240,
    empty: str = "no data yet",
    time_x: bool = False,
) -> str:
    """An SVG of ``pts`` (``(x, [y per field])``, oldest first), ``kind`` line, scatter or bar."""
    ys = [v for _, row in pts for v in row if v is not None]
    xs = sorted({p[0] for p in pts})
    if not pts or not ys:
        return _blank(width, height, empty)
    if not (math.isfinite(max(ys) - min(ys)) and math.isfinite(xs[-1] - xs[0])):
        return _blank(width, height, "values too far apart to draw")  # spans past 1e308
    last: list[float | None] = [None] * len(fields)
    for _, row in pts:
        last = [v if v is not None else old for v, old in zip(row, last, strict=False)]
    legend, top = _legend(fields, last, width)
    height = max(height, top + 120)  # many fields: a taller drawing, not a flat plot

    lo, hi = min(ys), max(ys)
    if kind == "bar":
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        lo, hi = lo - (abs(lo) / 10 or 1), hi + (abs(hi) / 10 or 1)
    _, ystep = nice_ticks(lo, hi, 5)
    lo, hi = math.floor(lo / ystep + 1e-9) * ystep, math.ceil(hi / ystep - 1e-9) * ystep
    yticks, _ = nice_ticks(lo, hi, 5)
    ylabels = [_num(v, ystep) for v in yticks]

    slot = min((b - a for a, b in itertools.pairwise(xs)), default=1.0)
    x0, x1 = xs[0], xs[-1]
    if kind == "bar":  # room for half a bar at either end
        x0, x1 = x0 - slot / 2, x1 + slot / 2
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    xticks, xstep = nice_ticks(x0, x1, 5)
    fmt: Callable[[float, float], str] = _clock if x == "timestamp" or time_x else _num

    left = 12 + max(text_width(s, 11) for s in ylabels)
    right, bottom = width - 14, height - 34
    sx = (right - left) / (x1 - x0)
    sy = (bottom - top) / (hi - lo)

    def px(v: float) -> float:
        return left + (v - x0) * sx

    def py(v: float) -> float:
        return bottom - (v - lo) * sy

    parts = list(legend)
    for v, s in zip(yticks, ylabels, strict=False):
        parts.append(
            el("line", {"x1": left, "x2": right, "y1": f"{py(v):.1f}", "y2": f"{py(v):.1f}", "stroke": GRID})
        )
        parts.append(text(left - 6, py(v) + 4, s, text_anchor="end", font_size=11, fill=INK))
    for v in xticks:
        parts.append(
            el(
                "line",
                {"x1": f"{px(v):.1f}", "x2": f"{px(v):.1f}", "y1": bottom, "y2": bottom + 4, "stroke": AXIS},
            )
        )
        label = fmt(v, xstep)
        # the last label may not fit centred under its tick: it ends there instead
        end = px(v) + text_width(label, 11) / 2 > width - 2
        parts.append(
            text(px(v), bottom + 16, label, text_anchor="end" if end else "middle", font_size=11, fill=INK)
        )
    parts.append(
        el(
            "path",
            {"d": f"M {left:.1f} {top:.1f} V {bottom:.1f} H {right:.1f}", "fill": "none", "stroke": AXIS},
        )
    )
    axis = "time (UTC)" if x == "timestamp" else f"{truncate(x, 40)} (UTC)" if time_x else truncate(x, 40)
    parts.append(text(right, height - 4, axis, text_anchor="end", font_size=11, fill="#888"))

    n = max(1, len(fields))
    bar = min(40.0, 0.6 * slot * sx) / n
    for i in range(len(fields)):
        colour = PALETTE[i % len(PALETTE)]
        runs = _runs(pts, i)
        if kind == "bar":
            base = py(max(lo, min(hi, 0.0)))
            d = "".join(
                f"M{px(a) - n * bar / 2 + i * bar:.1f} {base:.1f}V{py(b):.1f}h{bar:.1f}V{base:.1f}z"
                for run in runs
                for a, b in run
            )
            parts.append(el("path", {"d": d, "fill": colour, "data-series": fields[i]}))
            continue
        lines = [r for r in runs if len(r) > 1] if kind == "line" else []
        dots = [p for r in runs for p in r] if kind == "scatter" else [r[0] for r in runs if len(r) == 1]
        pattern = dash_of(i)
        dash = {"stroke-dasharray": pattern} if pattern else {}
        for run in lines:
            coords = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in run)
            parts.append(
                el(
                    "polyline",
                    {
                        "points": coords,
                        "fill": "none",
                        "stroke": colour,
                        "stroke-width": 1.5,
                        "stroke-linejoin": "round",
                        "data-series": fields[i],
                        **dash,
                    },
                )
            )
        if dots:
            d = "".join(f"M{px(a):.1f} {py(b):.1f}h0" for a, b in dots)
            parts.append(
                el(
                    "path",
                    {
                        "d": d,
                        "stroke": colour,
                        "stroke-width": 5,
                        "stroke-linecap": "round",
                        "fill": "none",
                        "data-series": fields[i],
                    },
                )
            )
    return svg_root(width, height, *parts, max_width=width)


def plot_summary(pts: Sequence[Point], fields: Sequence[str], *, empty: str = "no data yet") -> str:
    """The plotted values in a few numbers (last, min, max of each field), for where SVG is not shown."""
    rows = []
    for i, name in enumerate(fields):
        vs = [v for _, row in pts if (v := row[i]) is not None]
        if vs:
            cells = [name, f"{vs[-1]:.4g}", f"{min(vs):.4g}", f"{max(vs):.4g}", str(len(vs))]
            rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    if not rows:
        return f"<div>{esc(empty)}</div>"
    head = "".join(f"<th>{h}</th>" for h in ("field", "last", "min", "max", "points"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
