"""What a stream widget keeps between two sends: the newest raw values.

The listener runs on the producing thread, so it only appends references
(sequence number, timestamp, value) for the last ``keep`` values of each batch
and counts the rest; formatting happens in the pump, once per send, for at
most ``keep`` values however many arrived.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any, TypedDict

import traitlets

from ..stream import Chunk, DataStream
from ._base import LiveWidget

if TYPE_CHECKING:
    from reactivex.disposable import Disposable

__all__ = ["StreamHeader", "StreamWidget", "at_least_one"]


class StreamHeader(TypedDict):
    """What every message of a stream's widget carries about the stream."""

    count: int
    rate: float
    ended: bool
    error: str


Raw = tuple[int, float, Any]


def at_least_one(name: str, value: int) -> int:
    """``value`` if it is a window size (a trait validator's check)."""
    if value < 1:
        raise traitlets.TraitError(f"{name} must be at least 1, not {value}")
    return value


class StreamWidget(LiveWidget):
    """A live widget fed by one :class:`DataStream` (see the module docstring)."""

    def __init__(self, stream: DataStream, keep: int, **kwargs: Any) -> None:
        if not isinstance(stream, DataStream):
            raise TypeError(f"expected a DataStream, not {type(stream).__name__}")
        if keep < 1:
            raise ValueError(f"must keep at least one value, not {keep}")
        super().__init__(**kwargs)
        self.stream = stream
        self._keep = keep
        self._lock = threading.Lock()
        self._pending: deque[Raw] = deque(maxlen=keep)
        self._events = 0
        self._ended = False
        self._error = ""
        sub: Disposable = stream.listen_chunks(self._on_chunk, self._on_end)
        self._on_dispose(sub.dispose)
        self._refill(keep)  # subscribed first, then the history: values in both are taken once
        if stream.ended:
            self._on_end(stream.error)
        self._changed()

    def _refill(self, keep: int) -> None:
        """Keep ``keep`` values from now on and make the newest ``keep`` of the
        stream's history pending again (what a new or resized window shows)."""
        if keep < 1:
            raise ValueError(f"must keep at least one value, not {keep}")
        # Only what is shown (no whole read); with the memory vault at most what it holds.
        held = keep if self.stream.archived else min(keep, self.stream.history)
        history = self.stream.datapoints(last=held)
        with self._lock:
            self._keep = keep
            first = self._pending[0][0] if self._pending else None
            old = [(d.seq, d.timestamp, d.value) for d in history if first is None or d.seq < first]
            self._pending = deque(old + list(self._pending), maxlen=keep)

    def _new_window(self, keep: int) -> None:
        """Start an empty window of ``keep`` values (what the subclass shows)."""
        raise NotImplementedError

    def _resize(self, keep: int) -> None:
        """Show the newest ``keep`` values from now on (``max_rows`` or ``window``
        changed): the window is rebuilt from the stream's history and sent whole,
        and the snapshot follows."""
        if "stream" not in vars(self) or self._disposed:
            return  # still being made (its traits are set first), or gone
        with self._send_lock:
            self._refill(keep)
            self._new_window(keep)
            self._send_live(self._reset())
        self._snap_dirty = True

    def _on_chunk(self, chunk: Chunk) -> None:
        values = chunk.values
        n = len(values)
        keep = self._keep
        t = chunk.time
        if n > keep:
            base = chunk.seq0 + n - keep
            values = values[-keep:]
        else:
            base = chunk.seq0
        with self._lock:
            self._pending.extend((base + i, t, v) for i, v in enumerate(values))
            self._events += n
        self._changed()

    def _on_end(self, error: BaseException | None) -> None:
        self._ended = True
        if error is not None:
            self._error = f"{type(error).__name__}: {error}"
        self._changed()

    def _take(self) -> tuple[list[Raw], int]:
        """The pending values and how many events they stand for; clears both."""
        with self._lock:
            raw = list(self._pending)
            self._pending.clear()
            events, self._events = self._events, 0
        return raw, events

    def _header(self) -> StreamHeader:
        return {
            "count": len(self.stream),
            "rate": round(self.stream.stats.rate, 1),
            "ended": self._ended,
            "error": self._error,
        }
