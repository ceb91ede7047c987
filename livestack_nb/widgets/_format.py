"""Turning values into table cells, plot numbers and escaped HTML.

Kept apart from the widgets so the static snapshots and the live messages
format values the same way, and so escaping lives in one place.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Sequence
from typing import Any

from ._messages import MediaCell

__all__ = [
    "MAX_CELL",
    "Cell",
    "cell",
    "cell_text",
    "cells",
    "columns_of",
    "esc",
    "fmt_time",
    "number",
    "table_html",
]

#: Longest text sent for one cell; the front end shows less and keeps the rest in a tooltip.
MAX_CELL = 2000


def esc(value: object) -> str:
    """``str(value)`` escaped for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def fmt_time(t: float) -> str:
    """A datapoint timestamp as UTC wall-clock time with milliseconds."""
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def columns_of(value_type: Any, sample: Any = None) -> list[str]:
    """The value columns of a stream: a model's fields, a dict's keys, else ``value``."""
    fields = getattr(value_type, "model_fields", None)
    if isinstance(fields, dict) and fields:
        return list(fields)
    if sample is not None:
        fields = getattr(type(sample), "model_fields", None)
        if isinstance(fields, dict) and fields:
            return list(fields)
        if isinstance(sample, dict):
            return [str(k) for k in sample]
    return ["value"]


def _text(v: Any) -> str:
    s = v if isinstance(v, str) else repr(v) if isinstance(v, bytes) else str(v)
    return s if len(s) <= MAX_CELL else s[: MAX_CELL - 1] + "…"


def field(value: Any, name: str) -> Any:
    """Field ``name`` of a model or dict; the value itself for the ``value`` column."""
    if isinstance(value, dict):
        return value.get(name, "")
    if name == "value" and not hasattr(type(value), "model_fields"):
        return value
    return getattr(value, name, "")


#: A table cell: text, or a media cell (see ``_media.media_of``).
Cell = str | MediaCell


def cell(v: Any) -> Cell:
    """Text, or an image or audio cell for bytes that are one (or a PIL image)."""
    if isinstance(v, (bytes, bytearray, memoryview)) or type(v).__module__.startswith("PIL."):
        from ._media import media_of

        media = media_of(v)
        if media is not None:
            return media
    return _text(v)


def cell_text(c: Cell) -> str:
    """What a cell says as text (a media cell: its type and size)."""
    return c if isinstance(c, str) else c["text"]


def cells(value: Any, columns: Sequence[str]) -> list[Cell]:
    """One row of cells for ``value`` under ``columns``: text, or media built from bytes."""
    return [cell(field(value, c)) for c in columns]


def number(v: Any) -> float | None:
    """A finite float, or ``None`` (a gap in the plot) for anything else."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    return None


def _td(c: Cell) -> str:
    """A snapshot cell: escaped text, or a small image embedded from its own bytes."""
    if isinstance(c, str):
        return f"<td>{esc(c)}</td>"
    from ._media import SNAPSHOT_MEDIA

    # mime comes from the bytes' magic number and b64 is base64's alphabet: nothing to escape
    if c["media"] == "image" and len(c["b64"]) * 3 // 4 <= SNAPSHOT_MEDIA:
        return (
            f'<td><img class="lsnb-thumb" style="max-height:64px;max-width:160px" '
            f'alt="{esc(c["text"])}" title="{esc(c["text"])}" src="data:{c["mime"]};base64,{c["b64"]}"></td>'
        )
    return f"<td>{esc(c['text'])}</td>"


def table_html(title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]], note: str) -> str:
    """A static, escaped HTML table (newest row first) with a caption line."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_td(v) for v in r) + "</tr>" for r in reversed(rows))
    return (
        f'<div class="lsnb-snapshot"><div><b>{esc(title)}</b> · {esc(note)}</div>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )
