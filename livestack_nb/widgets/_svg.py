"""Small pieces shared by the SVG snapshots of graphs and plots.

A saved notebook shows the snapshots without the extension's CSS or code, so
every drawing carries its own colours and sizes as attributes, and its text
is escaped here (the only way user text gets into an SVG). The colours are
the front end's (``labextension/style/index.css`` and ``src/plot.ts``; a
test keeps them in step), so a snapshot looks like the live view it stands for.
"""

from __future__ import annotations

import math

from ._format import esc

__all__ = [
    "FONT",
    "drawing_or_text",
    "PALETTE",
    "STATUS_COLOURS",
    "el",
    "fmt_rate",
    "nice_ticks",
    "svg_root",
    "text",
    "text_width",
    "truncate",
]

#: One font for every snapshot: monospace, so text widths can be known here.
FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"

#: The plot's series colours, in order (``COLOURS`` in ``src/plot.ts``).
#: Series colours: Okabe and Ito's palette, told apart with the common kinds of colour
#: blindness; past eight series the colours come again dashed (see :func:`dash_of`).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")


def dash_of(i: int) -> str | None:
    """The dash pattern of series ``i``: solid for the first eight, then dashed, dotted."""
    return (None, "6 3", "2 2")[(i // len(PALETTE)) % 3]


#: Node colours by status, ``(fill, stroke)`` (``.lsnb-status-*`` in ``style/index.css``).
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "idle": ("#f4f4f4", "#555"),
    "requested": ("#fff8d6", "#555"),
    "running": ("#d6ebff", "#1f77b4"),
    "completed": ("#dcf5dc", "#2ca02c"),
    "failed": ("#e53935", "#8e0000"),
    "cancelled": ("#eeeeee", "#555"),
}


def el(tag: str, attrs: dict[str, object], *children: str) -> str:
    """An element; attribute values are escaped, ``children`` must be markup already."""
    a = "".join(f' {k.replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None)
    return f"<{tag}{a}>{''.join(children)}</{tag}>" if children else f"<{tag}{a}/>"


def text(x: float, y: float, content: str, **attrs: object) -> str:
    """A ``<text>`` element holding ``content`` as escaped text."""
    return el("text", {"x": f"{x:.1f}", "y": f"{y:.1f}", **attrs}, esc(content))


def svg_root(width: float, height: float, *children: str, max_width: float) -> str:
    """The outer ``<svg>``: drawn in ``width`` x ``height`` units, shown at most
    ``max_width`` pixels wide (scaled down, never up)."""
    scale = min(1.0, max_width / width) if width > 0 else 1.0
    return el(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "width": f"{width * scale:.0f}",
            "height": f"{height * scale:.0f}",
            "viewBox": f"0 0 {width:.0f} {height:.0f}",
            "font-family": FONT,
            "style": "max-width:100%;height:auto;background:#fff",
        },
        *children,
    )


def text_width(s: str, size: float) -> float:
    """Width of ``s`` in the monospace font at ``size`` px (0.6 em a character)."""
    return 0.6 * size * len(s)


def truncate(s: str, n: int) -> str:
    """``s`` cut to ``n`` characters with an ellipsis."""
    return s if len(s) <= n else s[: n - 1] + "…"


def fmt_rate(rate: float) -> str:
    """A rate per second as the front end writes it (``fmtRate`` in ``src/base.ts``)."""
    if not rate:
        return "0/s"
    if rate >= 1000:
        return f"{rate / 1000:.{0 if rate >= 10000 else 1}f}k/s"
    return f"{rate:.{0 if rate >= 10 else 1}f}/s"


def nice_ticks(lo: float, hi: float, n: int = 5) -> tuple[list[float], float]:
    """About ``n`` round values (steps of 1, 2 or 5 times a power of ten) in
    ``[lo, hi]``, and the step."""
    if not hi > lo:
        return [lo], 1.0
    raw = (hi - lo) / max(1, n - 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * (1 - 1e-9))
    first = math.ceil(lo / step - 1e-9) * step
    count = math.floor((hi - first) / step + 1e-9) + 1
    return [first + i * step for i in range(count)], step


# Without CSS the text shows and the drawing is hidden; this style, where it is
# kept, swaps them (more specific than any ``[hidden]`` rule, hence the ``>``s).
_SWAP = (
    "<style>.lsnb-snapshot>.lsnb-drawing[hidden]{display:block!important}"
    ".lsnb-snapshot>.lsnb-text{display:none}</style>"
)


def drawing_or_text(drawing: str, text_html: str) -> str:
    """``drawing`` (markup holding an SVG) where SVG is shown, else ``text_html``.

    JupyterLab and Notebook 7 sanitize the HTML of a notebook they do not
    trust (one executed and saved elsewhere): ``<svg>`` and ``<style>`` are
    removed, the text inside an SVG is kept as a run of words, and the
    ``hidden`` attribute stays. So the drawing goes in a hidden block that
    only the style shows, and a text version in a block the style hides:
    nbconvert's page shows the drawing, a sanitized output the text.
    Place the result directly inside the ``lsnb-snapshot`` block.
    """
    hidden = f'<div class="lsnb-drawing" hidden="hidden">{drawing}</div>'
    return f'{_SWAP}{hidden}<div class="lsnb-text">{text_html}</div>'
