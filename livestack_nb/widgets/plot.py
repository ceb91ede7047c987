"""StreamPlot: numeric fields of a stream on a live canvas (uPlot in the browser)."""

from __future__ import annotations

import datetime as _dt
from collections import deque
from collections.abc import Sequence
from typing import Any, TypedDict

import traitlets

from ..stream import DataStream
from ._format import columns_of, esc, field, number
from ._messages import PlotMessage, PlotReset
from ._plot_svg import plot_summary, plot_svg
from ._streamed import Raw, StreamWidget, at_least_one
from ._svg import drawing_or_text

__all__ = ["StreamPlot"]

KINDS = ("line", "scatter", "bar")


class PlotColumns(TypedDict):
    """The points of a message: their x, and one list of y per series."""

    x: list[float]
    y: list[list[float | None]]


class StreamPlot(StreamWidget):
    """A live plot of one or more numeric fields of a stream, over a rolling window.

    Parameters
    ----------
    stream:
        The stream to plot.
    x:
        ``"timestamp"`` (the default: when each value was emitted), ``"seq"``
        (its position in the stream), or a numeric field. A field of
        ``datetime`` values, or of numbers that read as epoch seconds (years
        2000 to 2100), is drawn on a time axis. Values fed or emitted
        together as one batch share one emission time and stand in a column
        at the default x: plot them by ``"seq"`` or by their own time field.
    y:
        The fields to plot; by default every numeric field of the first value
        (``"value"`` for a stream of numbers).
    kind:
        ``"line"``, ``"scatter"`` or ``"bar"``.
    window:
        How many of the newest points are drawn; setting it on a shown plot
        refills it from the stream's in-memory history.
    by:
        For a long-format stream (one row per key, as ``ls.window`` emits):
        draw one series of the single ``y`` field per value of this field.
        Each point carries the latest value of every key seen so far, so each
        key's line runs on until its next value; a new key adds a series.

    Examples
    --------
    >>> StreamPlot(job.output(), y=["temperature", "pressure"])  # doctest: +SKIP
    >>> StreamPlot(p95.output(), y="p95", by="path")  # doctest: +SKIP
    """

    _model_name = traitlets.Unicode("StreamPlotModel").tag(sync=True)
    _view_name = traitlets.Unicode("StreamPlotView").tag(sync=True)
    x = traitlets.Unicode("timestamp").tag(sync=True)
    y = traitlets.List(traitlets.Unicode()).tag(sync=True)
    kind = traitlets.Unicode("line").tag(sync=True)
    window = traitlets.Int(500).tag(sync=True)
    height = traitlets.Int(240).tag(sync=True)

    def __init__(
        self,
        stream: DataStream,
        x: str = "timestamp",
        y: Sequence[str] | None = None,
        kind: str = "line",
        *,
        window: int = 500,
        title: str | None = None,
        by: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if isinstance(y, str):
            y = [y]
        self._by = by
        self._by_y: str | None = None
        self._latest: dict[str, float | None] = {}  # by key: its latest value
        self._series_changed = False
        if by is not None:
            if not isinstance(by, str) or not by:
                raise ValueError(f"by must be a field name, not {by!r}")
            if not y or len(y) != 1:
                raise ValueError(f"by={by!r} draws one field per key: give y= one field, not {y!r}")
            self._by_y = y[0]
            y = []
        self._new_window(max(1, window))
        fields = list(y) if y else None
        if fields is None and by is None:
            declared = columns_of(stream.type.cls)
            if declared != ["value"]:
                fields = [f for f in declared if f != x and _numeric_annotation(stream.type.cls, f)]
        self._fields = fields if by is None else []
        self._time_x = x == "timestamp"
        super().__init__(
            stream, window, x=x, y=fields or [], kind=kind, window=window, title=title or stream.stream_id
        )

    def _new_window(self, keep: int) -> None:
        self._points: deque[tuple[float, list[float | None]]] = deque(maxlen=keep)
        self._unsent: deque[tuple[float, list[float | None]]] = deque(maxlen=keep)
        if self._by is not None:  # refilled from history: the keys are found again
            self._latest.clear()
            self._series_changed = True

    @traitlets.validate("window")
    def _check_window(self, proposal: Any) -> int:
        return at_least_one("window", proposal["value"])

    @traitlets.observe("window")
    def _window_changed(self, change: Any) -> None:
        self._resize(change["new"])

    def _points_of(self, raw: list[Raw]) -> list[tuple[float, list[float | None]]]:
        if self._by is not None:
            return self._pivoted(raw)
        if self._fields is None and raw:
            sample = raw[0][2]
            cols = columns_of(None, sample)
            self._fields = [c for c in cols if c != self.x and number(field(sample, c)) is not None]
            self.y = self._fields
        fields = self._fields or []
        xname = self.x
        out: list[tuple[float, list[float | None]]] = []
        for seq, t, v in raw:
            xv = t if xname == "timestamp" else float(seq) if xname == "seq" else _x_number(field(v, xname))
            if xv is None:
                continue
            if not out and xname not in ("timestamp", "seq") and not self._points:
                self._time_x = _looks_like_time(field(v, xname), xv)
            out.append((xv, [number(field(v, f)) for f in fields]))
        return out

    def _pivoted(self, raw: list[Raw]) -> list[tuple[float, list[float | None]]]:
        """Long rows to one series per key: each point holds every key's latest value."""
        by, yname, xname = self._by, self._by_y, self.x
        assert by is not None and yname is not None
        latest = self._latest
        out: list[tuple[float, list[float | None]]] = []
        for seq, t, v in raw:
            xv = t if xname == "timestamp" else float(seq) if xname == "seq" else _x_number(field(v, xname))
            if xv is None:
                continue
            if not out and xname not in ("timestamp", "seq") and not self._points:
                self._time_x = _looks_like_time(field(v, xname), xv)
            key = str(field(v, by))
            if key not in latest:
                self._series_changed = True
            latest[key] = number(field(v, yname))
            out.append((xv, list(latest.values())))
        if self._series_changed:
            names = list(latest)
            width = len(names)
            for pts in (self._points, self._unsent):  # earlier points: None for keys not seen yet
                for i, (xv, ys) in enumerate(pts):
                    if len(ys) < width:
                        pts[i] = (xv, ys + [None] * (width - len(ys)))
            out = [(xv, ys + [None] * (width - len(ys))) for xv, ys in out]
            self._fields = names
            self.y = names
        return out

    def _advance(self) -> None:
        raw, _ = self._take()
        pts = self._points_of(raw)
        self._points.extend(pts)
        self._unsent.extend(pts)

    @staticmethod
    def _columns(pts: Sequence[tuple[float, list[float | None]]], n: int) -> PlotColumns:
        return {"x": [p[0] for p in pts], "y": [[p[1][i] for p in pts] for i in range(n)]}

    def _reset(self) -> PlotReset:
        self._advance()
        self._series_changed = False
        self._unsent.clear()
        return self._whole()

    def _whole(self) -> PlotReset:
        cols = self._columns(list(self._points), len(self.y))
        return {"type": "reset", **cols, **self._header(), "time_x": self._time_x}

    def _delta(self) -> PlotMessage | None:
        self._advance()
        if self._series_changed:  # a new key: the front end gets the whole window again
            self._series_changed = False
            self._unsent.clear()
            return self._whole()
        pts = list(self._unsent)
        self._unsent.clear()
        return {"type": "points", **self._columns(pts, len(self.y)), **self._header(), "time_x": self._time_x}

    def points(self) -> list[tuple[float, list[float | None]]]:
        """The points now drawn: ``(x, [y per field])``, oldest first."""
        with self._send_lock:
            self._advance()
            return list(self._points)

    def _snapshot(self) -> tuple[str, str]:
        pts = self.points()
        h = self._header()
        note = f"{h['count']} events" + (" · ended" if h["ended"] else "")
        empty = "no data yet" if not h["count"] else "no numeric value to plot"
        svg = plot_svg(
            pts, self.y, x=self.x, kind=self.kind, height=self.height, empty=empty, time_x=self._time_x
        )
        body = drawing_or_text(svg, plot_summary(pts, self.y, empty=empty))
        html = f'<div class="lsnb-snapshot"><div><b>{esc(self.title)}</b> · {esc(note)}</div>{body}</div>'
        last = pts[-1][1] if pts else []
        text = f"{self.title}: {note}; last " + ", ".join(
            f"{f}={v}" for f, v in zip(self.y, last, strict=False)
        )
        return html, text

    def __repr__(self) -> str:
        return f"<StreamPlot {self.stream.stream_id!r} y={self.y}>"


#: Epoch seconds of 2000-01-01 and 2100-01-01: numbers in between read as times.
_EPOCH_RANGE = (946_684_800.0, 4_102_444_800.0)


def _x_number(v: Any) -> float | None:
    """An x value: a number, or a ``datetime`` as epoch seconds (naive ones taken as UTC)."""
    if isinstance(v, _dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=_dt.timezone.utc)).timestamp()
    return number(v)


def _looks_like_time(v: Any, xv: float) -> bool:
    return isinstance(v, _dt.datetime) or (
        not isinstance(v, bool) and _EPOCH_RANGE[0] <= xv <= _EPOCH_RANGE[1]
    )


def _numeric_annotation(cls: Any, name: str) -> bool:
    ann = cls.model_fields[name].annotation
    return ann in (int, float, bool)
