"""Reading a stream's history: ``replay()``, ``values()``, ``datapoints()``,
iteration, ``next_value``, ``len``, ``stats``, ``to_pandas()``.

What memory still holds is read from the stream; what it let go of comes back
from the vault's archive when the vault is durable, and a read that cannot be
whole says so. These are :class:`~livestack_nb.stream.DataStream`'s methods
(a mixin), kept apart from how chunks are made, kept and delivered.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Any, cast

import reactivex
from reactivex import abc as rx_abc
from reactivex.disposable import Disposable

from ._chunk import Chunk, Datapoint, StreamStats, _Offloaded
from ._delivery import Delivery, _Join, _Listener, _observer_listener
from .reading import StreamReader, aiterate, iterate, warn_missing, warn_truncated

if TYPE_CHECKING:
    import pandas as pd

    from .stream import DataStream

__all__ = ["Reads"]


class Reads(Delivery):
    """The reading half of :class:`~livestack_nb.stream.DataStream`."""

    def replay(self) -> reactivex.Observable[Any]:  # type: ignore[override]
        """An observable of the history, then the live values.

        With a durable vault the history is complete, in order, each datapoint
        once: the older part from the vault, the rest from memory. Otherwise it
        is the last ``history`` datapoints kept in memory.
        """

        def subscribe(
            observer: rx_abc.ObserverBase[Any], scheduler: rx_abc.SchedulerBase | None = None
        ) -> rx_abc.DisposableBase:
            return self._add(_observer_listener(observer, self._resolved), replay=True)

        return reactivex.Observable(subscribe)

    # -- reading the history ----------------------------------------------

    def _history_chunks(self, before: int | None = None) -> list[Chunk]:
        self.flush()
        with self._state_lock:
            chunks = list(self._chunks)
            skip = self._held - self.history
        out: list[Chunk] = []
        for c in chunks:
            if before is not None and c.seq0 >= before:
                break
            if skip > 0:  # only the first chunk holds values beyond the bound
                c, skip = c.tail(skip), 0
            if before is not None and c.seq0 + len(c.stored) > before:
                c = _head(c, before - c.seq0)
            if c.stored:
                out.append(_readable(c, cast("DataStream", self)))
        return out

    def _resolved(self, chunk: Chunk) -> list[Any]:
        return chunk.values

    def _load(self, v: Any) -> Any:
        if type(v) is _Offloaded:
            assert self._storage is not None
            return self._storage.load(v.ref)
        return v

    def chunks_before(self, stop: int | None = None, start: int = 0, *, reader: str) -> Iterator[Chunk]:
        """The readable chunks of seqs ``[start, stop)`` (``stop=None``: all held now), in order.

        What memory holds is taken now; what it no longer holds comes from the
        vault when it is durable, a page at a time, when the iterator gets
        there. Without a durable vault, a read that cannot begin at ``start``
        warns (:class:`TruncatedHistoryWarning`) naming ``reader``.
        """
        memory = self._history_chunks(stop)
        first = memory[0].seq0 if memory else (self._count if stop is None else stop)
        if start > 0 and memory and memory[0].seq0 < start:
            memory = [c if c.seq0 >= start else c.tail(start - c.seq0) for c in memory]
            memory = [c for c in memory if c.stored]
        if first <= start:
            return iter(memory)
        if self._archive is None:
            warn_truncated(cast("DataStream", self), first, reader)
            return iter(memory)
        return chain(self._synced_archive(start, first), memory)

    def _synced_archive(self, start: int, stop: int) -> Iterator[Chunk]:
        if self._sync_archive is not None:
            self._sync_archive()
        expected = start
        for c in self._archived(stop):
            end = c.seq0 + len(c.stored)
            if end <= start:
                continue
            if c.seq0 > expected:  # trimmed away in the vault: said, never silent
                warn_missing(cast("DataStream", self), expected, c.seq0)
            yield c if c.seq0 >= start else c.tail(start - c.seq0)
            expected = end
        if expected < stop:
            warn_missing(cast("DataStream", self), expected, stop)

    def _range(self, last: int | None, what: str) -> Iterator[Chunk]:
        if last is None:
            return self.chunks_before(None, reader=what)
        if not isinstance(last, int) or isinstance(last, bool) or last < 0:
            raise ValueError(f"last must be an int >= 0, not {last!r}")
        count = self._count
        if last == 0:
            return iter(())
        return self.chunks_before(count, max(0, count - last), reader=what)

    def values(self, last: int | None = None) -> list[Any]:
        """The stream's values, oldest first: all of them, or the ``last`` n.

        With a durable vault this is the whole stream (what memory no longer
        holds is read back from the vault, a page at a time). Otherwise it is
        what memory holds (the last ``history``): when that is not all that
        was asked for, a :class:`~livestack_nb.TruncatedHistoryWarning` says so.
        """
        out: list[Any] = []
        for c in self._range(last, "values()"):
            out.extend(c.values)
        return out

    def datapoints(self, last: int | None = None) -> list[Datapoint]:
        """The datapoints (as :meth:`values`), with ids, timestamps and parent ids."""
        sid = self.stream_id
        return [
            Datapoint(f"{sid}:{c.seq0 + i}", sid, c.seq0 + i, c.time, v, c.parents_of(i))
            for c in self._range(last, "datapoints()")
            for i, v in enumerate(c.values)
        ]

    # -- reading as it comes ---------------------------------------------

    def follow_chunks(
        self,
        on_chunk: Callable[[Chunk], None],
        on_end: Callable[[BaseException | None], None],
    ) -> tuple[int, Disposable]:
        """Listen to every chunk from now on; return the first seq it will get, and a disposable.

        Everything before that seq is in the history (memory, or the vault):
        a reader reads it from there, then what this listener got.
        """
        listener = _Listener(on_chunk, on_end)
        me = threading.get_ident()
        claimed = False
        try:
            with self._state_lock:
                mark = self._count
                self._pending.append(_Join(listener, mark, False))
                if not self._delivering:
                    claimed = True
                    self._delivering = me
            if claimed:
                self._deliver()
        except BaseException:
            if claimed:
                self._let_go(me)
            raise
        return mark, Disposable(lambda: self._remove(listener))

    def __iter__(self) -> Iterator[Any]:
        """``for v in stream``: every value from the first datapoint held, then live ones,
        until the stream ends.

        With a durable vault the loop begins at the stream's first datapoint
        (read back from the vault); otherwise at the oldest one still in
        memory (a :class:`~livestack_nb.TruncatedHistoryWarning` says when
        that is not the first). A stream that ended with an error (a failed
        job's outputs) raises it (``ls.JobFailed``) after its last value. A
        ``KeyboardInterrupt`` stops a loop waiting for values at once.
        """
        return iterate(cast("DataStream", self))

    def __aiter__(self) -> AsyncIterator[Any]:
        """``async for v in stream``: as :meth:`__iter__`, waiting without blocking the loop."""
        return aiterate(cast("DataStream", self))

    def next_value(self, timeout: float | None = None) -> Any:
        """The next value this stream object has not returned yet (Livestack's ``nextValue``).

        The first call returns the first datapoint held (as a ``for`` loop
        does), each next call the one after; it waits for a value that has
        not come yet.

        Raises
        ------
        StreamEnded
            The stream has ended and every value was returned.
        WaitTimeout
            ``timeout`` seconds passed with no new value (the next call may still get it).
        JobFailed
            The stream ended with an error (a failed job's outputs), after its last value.
        """
        return self._reader().next_value(timeout)

    async def anext_value(self, timeout: float | None = None) -> Any:
        """:meth:`next_value` for coroutines (the same place in the stream)."""
        return await self._reader().anext_value(timeout)

    def _reader(self) -> StreamReader:
        cursor = self._cursor
        if cursor is None:
            made = StreamReader(cast("DataStream", self))
            with self._state_lock:
                if self._cursor is None:
                    self._cursor = made
                cursor = self._cursor
            if cursor is not made:  # another thread made it first
                made.close()
        return cursor

    def __getitem__(self, key: slice | int) -> reactivex.Observable[Any]:
        """RxPY's slice of the live values (``stream[1:10]``); an int index is refused:
        ``stream[0]`` would be an observable, not a value (use ``values()[0]``)."""
        if not isinstance(key, slice):
            raise TypeError(
                f"a DataStream is indexed by slices of its live values (RxPY), not by {key!r}: "
                "use stream.values()[i] for a stored value, stream.next_value() for the next one"
            )
        return super().__getitem__(key)

    def last(self) -> Any:  # type: ignore[override]
        """The most recent value, or ``None`` before the first one."""
        self.flush()
        with self._state_lock:
            if not self._chunks:
                return None
            v = self._chunks[-1].stored[-1]
        return self._load(v)

    def __len__(self) -> int:
        """How many values were ever emitted (not only those still in memory)."""
        return self._count + len(self._buf)

    def __bool__(self) -> bool:
        return True

    @property
    def stats(self) -> StreamStats:
        """Count, recent rate (events/s over the last few seconds) and last time."""
        with self._state_lock:
            samples = list(self._samples)
            count, last = self._count, self._last_time
        rate = 0.0
        now = self._now()
        recent = [smp for smp in samples if now - smp[0] <= 5.0]
        if recent:
            t0, c0 = recent[0]
            if now - t0 >= 0.05:
                rate = (count - c0) / (now - t0)
        return StreamStats(count=count, rate=rate, last_time=last)

    def to_pandas(self, last: int | None = None) -> pd.DataFrame:
        """The values (as :meth:`values`: all, or the ``last`` n) as a DataFrame: model
        fields (or dict keys) as columns, a scalar as column ``value``; indexed by timestamp."""
        import pandas as pd

        chunks = list(self._range(last, "to_pandas()"))
        values = list(chain.from_iterable(c.values for c in chunks))
        # A chunk's values share one timestamp: convert one per chunk and
        # repeat it, rather than a float per value.
        stamps = pd.to_datetime([c.time for c in chunks], unit="s", utc=True)
        index = pd.DatetimeIndex(stamps.repeat([len(c.values) for c in chunks]), name="timestamp")
        frame: pd.DataFrame
        first = values[0] if values else None
        if first is None:
            declared = getattr(self.type.cls, "model_fields", None)
            frame = pd.DataFrame(index=index, columns=list(declared) if declared else ["value"])
        elif hasattr(first, "model_dump"):
            model = type(first)
            fields = list(model.model_fields)
            if set(map(type, values)) == {model}:  # one C-level pass
                cols = {f: list(map(attrgetter(f), values)) for f in fields}
                frame = pd.DataFrame(cols, index=index, columns=fields)
            else:
                frame = pd.DataFrame([v.model_dump() for v in values], index=index)
        elif isinstance(first, dict):
            frame = pd.DataFrame(values, index=index)
        else:
            frame = pd.DataFrame({"value": values}, index=index)
        return frame


def _head(c: Chunk, n: int) -> Chunk:
    h = Chunk(
        c.stream_id,
        c.seq0,
        c.time,
        c.stored[:n],
        c.parent_stream,
        None if c.parent_seqs is None else c.parent_seqs[:n],
    )
    h.offloaded = c.offloaded
    return h


def _readable(c: Chunk, stream: DataStream) -> Chunk:
    """A history chunk whose values are the real ones (offloaded values loaded)."""
    if not c.offloaded:
        if c.values is not c.stored:
            c = Chunk(c.stream_id, c.seq0, c.time, c.stored, c.parent_stream, c.parent_seqs)
        return c
    loaded = [stream._load(v) for v in c.stored]
    return Chunk(c.stream_id, c.seq0, c.time, loaded, c.parent_stream, c.parent_seqs)
