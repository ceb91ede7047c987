"""StreamTable: the newest values of a stream as a live table."""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

import traitlets

from ..stream import DataStream
from ._base import live_widgets
from ._format import Cell, cell_text, cells, columns_of, field, fmt_time, table_html
from ._messages import TableMessage, TableReset, TableRows
from ._streamed import Raw, StreamWidget, at_least_one

__all__ = ["StreamTable"]


#: Rows in a table's plain-text fallback (newest first); the HTML snapshot shows them all.
TEXT_ROWS = 10


class StreamTable(StreamWidget):
    """A live table of a stream's newest values, one column per model field.

    Rows are sent as appended deltas at most ~30 times a second; the header
    line says how many events, their rate, and how many were folded into the
    last update. Every value is shown as text, except images and audio (bytes
    whose magic number says so, or a PIL image): thumbnails and players the
    front end builds from the bytes, and thumbnails in the static snapshot.

    Parameters
    ----------
    stream:
        The stream to show (``job.output()``, a flow run's output, ...).
    max_rows:
        How many of the newest rows stay visible; setting it on a shown table
        refills it from the stream's in-memory history.
    title:
        Header text; the stream id by default.
    by:
        Show one row per value of this field, its latest (``by="key"`` on a
        window's output: the current window of each key), the keys updated
        last at the bottom; ``max_rows`` keys at most.

    A table of a stream of a stepped run whose :class:`FlowGraph` is shown
    has clickable rows: a click shows that datapoint's journey on the graph.

    Examples
    --------
    >>> StreamTable(job.output(), max_rows=10)  # doctest: +SKIP
    >>> StreamTable(p95.output(), by="key")  # doctest: +SKIP
    """

    _model_name = traitlets.Unicode("StreamTableModel").tag(sync=True)
    _view_name = traitlets.Unicode("StreamTableView").tag(sync=True)
    max_rows = traitlets.Int(20).tag(sync=True)

    def __init__(
        self, stream: DataStream, max_rows: int = 20, *, title: str | None = None, by: str | None = None
    ) -> None:
        if by is not None and (not isinstance(by, str) or not by):
            raise ValueError(f"by must be a field name, not {by!r}")
        self._by = by
        self._latest: OrderedDict[str, list[Cell]] = OrderedDict()  # by key: its latest row
        self._fields: list[str] | None = None
        self._open_keys = False
        declared = columns_of(getattr(stream, "type", None) and stream.type.cls)
        if declared != ["value"]:
            self._fields = declared
        self._new_window(max(1, max_rows))
        self._columns_sent: list[str] | None = None
        self._last_folded = 0
        super().__init__(stream, max_rows, max_rows=max_rows, title=title or stream.stream_id)

    def _new_window(self, keep: int) -> None:
        self._window: deque[list[Cell]] = deque(maxlen=keep)
        self._unsent: deque[list[Cell]] = deque(maxlen=keep)
        if self._by is not None:
            self._latest.clear()

    @traitlets.validate("max_rows")
    def _check_max_rows(self, proposal: Any) -> int:
        return at_least_one("max_rows", proposal["value"])

    @traitlets.observe("max_rows")
    def _max_rows_changed(self, change: Any) -> None:
        self._resize(change["new"])

    @property
    def columns(self) -> list[str]:
        """The table's columns: ``#``, ``time``, then the value's fields."""
        return ["#", "time", *(self._fields or ["value"])]

    def _rows(self, raw: list[Raw]) -> list[list[Cell]]:
        if self._fields is None and raw:
            self._fields = columns_of(None, raw[0][2])
            self._open_keys = isinstance(raw[0][2], dict)
        if self._open_keys and self._fields is not None:
            # dicts may bring new keys: they become new columns, at the right
            seen = set(self._fields)
            for _, _, v in raw:
                if isinstance(v, dict):
                    for k in v:
                        if str(k) not in seen:
                            seen.add(str(k))
                            self._fields.append(str(k))
        fields = self._fields or ["value"]
        return [[str(seq), fmt_time(t), *cells(v, fields)] for seq, t, v in raw]

    def _advance(self) -> None:
        raw, events = self._take()
        rows = self._rows(raw)
        if events:
            self._last_folded = events
        if self._by is not None:
            latest, keep = self._latest, self._window.maxlen or 1
            for (_, _, v), row in zip(raw, rows, strict=True):
                key = str(field(v, self._by))
                latest[key] = row
                latest.move_to_end(key)
            while len(latest) > keep:
                latest.popitem(last=False)
            self._window = deque(latest.values(), maxlen=keep)
            return
        self._window.extend(rows)
        self._unsent.extend(rows)

    def _reset(self) -> TableReset:
        self._advance()
        self._unsent.clear()
        self._columns_sent = self.columns
        return {
            "type": "reset",
            "columns": self.columns,
            "rows": list(self._window),
            "folded": self._last_folded,
            "journeys": bool(self._stages()),
            **self._header(),
        }

    def _delta(self) -> TableMessage | None:
        if self._by is not None:  # rows change in place: the table is sent whole (max_rows keys)
            return self._reset()
        self._advance()
        rows = list(self._unsent)
        self._unsent.clear()
        h = self._header()
        msg: TableRows = {
            "type": "rows",
            "rows": rows,
            "folded": self._last_folded,
            "journeys": bool(self._stages()),
            "count": h["count"],
            "rate": h["rate"],
            "ended": h["ended"],
            "error": h["error"],
        }
        if self.columns != self._columns_sent:
            self._columns_sent = msg["columns"] = self.columns
        return msg

    def _stages(self) -> list[Any]:
        """The shown graphs of stepped runs that carry this stream (where a row's journey goes)."""
        from .graph import FlowGraph

        sid = self.stream.stream_id
        return [w for w in live_widgets() if isinstance(w, FlowGraph) and w.knows_stream(sid)]

    def show_journey(self, seq: int) -> list[dict[str, Any] | None]:
        """Show the journey of this stream's datapoint ``seq`` (a row's ``#``) on every
        shown graph of a stepped run carrying the stream; what each found."""
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ValueError(f"{self.title}: a row's # is a sequence number (an int from 0), not {seq!r}")
        return [g.show_journey(f"{self.stream.stream_id}:{seq}") for g in self._stages()]

    def _on_front_end(self, widget: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "journey" and not self._disposed:
            seq = content.get("seq")
            if isinstance(seq, str) and seq.isdigit():
                self.show_journey(int(seq))
            elif seq is None:  # the row chosen again: its journey is cleared
                for g in self._stages():
                    g.show_journey(None)
            return
        super()._on_front_end(widget, content, buffers)

    def table(self) -> tuple[list[str], list[list[Cell]]]:
        """The columns and the rows now shown (oldest first), as the front end has them."""
        with self._send_lock:
            self._advance()
            columns = self.columns
            # rows made before a new column appeared are padded, as the front end shows them
            return columns, [r + [""] * (len(columns) - len(r)) for r in self._window]

    def _snapshot(self) -> tuple[str, str]:
        columns, rows = self.table()
        h = self._header()
        note = (
            f"{h['count']} events"
            + (" · ended" if h["ended"] else "")
            + (f" · {h['error']}" if h["error"] else "")
        )
        shown = rows[-TEXT_ROWS:]
        lines = [" | ".join(map(cell_text, r)) for r in reversed(shown)]
        if len(rows) > len(shown):  # say what is left out, not leave a row silently missing
            lines.append(f"… {len(rows) - len(shown)} older rows not shown in this text")
        text = f"{self.title}: {note}\n" + "\n".join(lines)
        return table_html(self.title, columns, rows, note), text

    def __repr__(self) -> str:
        return f"<StreamTable {self.stream.stream_id!r} {len(self.stream)} values>"
