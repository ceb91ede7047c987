"""What a stream widget keeps between two sends: the newest raw values.

The listener runs on the producing thread, so it only appends references
(sequence number, timestamp, value) for the last ``keep`` values of each batch
and counts the rest; formatting happens in the pump, once per send, for at
most ``keep`` values however many arrived.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from ..stream import Chunk, DataStream
from ._base import LiveWidget

if TYPE_CHECKING:
    from reactivex.disposable import Disposable

__all__ = ["StreamWidget"]

Raw = tuple[int, float, Any]


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
        # Subscribed first, then the history: values in both are taken once.
        history = stream.datapoints()[-keep:]
        with self._lock:
            first = self._pending[0][0] if self._pending else None
            old = [(d.seq, d.timestamp, d.value) for d in history if first is None or d.seq < first]
            self._pending = deque(old + list(self._pending), maxlen=keep)
        if stream.ended:
            self._on_end(stream.error)
        self._changed()

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

    def _header(self) -> dict[str, Any]:
        return {
            "count": len(self.stream),
            "rate": round(self.stream.stats.rate, 1),
            "ended": self._ended,
            "error": self._error,
        }
