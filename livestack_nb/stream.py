"""DataStream: the typed, recorded, observable pipe between jobs.

A stream is a ``reactivex.Observable`` so every RxPY operator works on it, and
it also keeps what went through it: a bounded in-memory history, ids,
timestamps and lineage for every datapoint, and rate statistics.

Why batches: values travel in chunks (a list plus one timestamp and a first
sequence number). Ids, timestamps and parent links are derived from the chunk
on demand, so a fused flow pays a few list operations per event, not an object
per event. Delivery is serialised per stream: whichever thread pushes first
delivers, in order, and a push that arrives meanwhile (from another thread, or
re-entrantly from a listener, as in a cycle) is queued for it. No lock is held
while user code runs.

Why an edge buffer: the calls a user writes first hand over one value at a
time (``job.feed(x)`` in a loop, ``emit`` in a processor). Each such value is
appended to the stream's buffer (a list append under the GIL, no lock) and the
buffer becomes a chunk, through the same :meth:`DataStream.push` as a batch,
when it holds ``MAX_CHUNK`` values, when a batch or the end follows it, when
the stream is read, when its consumer runs dry and pulls it, and at the
latest ``FLUSH_AFTER`` seconds after its first value (a :class:`Flusher`
thread): a slow trickle is seen live, a fast loop pays for a chunk per few
thousand values.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ._chunk import Activity as Activity
from ._chunk import Chunk as Chunk
from ._chunk import Datapoint as Datapoint
from ._chunk import StreamStats as StreamStats
from ._chunk import _Offloaded
from ._delivery import _End, _Join, _Listener
from ._flusher import Flusher as Flusher
from ._interrupt import held_interrupts
from ._limits import DEFAULT_HISTORY as DEFAULT_HISTORY
from ._limits import FLUSH_AFTER
from ._limits import MAX_CHUNK as MAX_CHUNK
from ._reads import Reads, _head, _readable
from ._types import TagType
from .errors import JobClosedError
from .reading import StreamReader
from .storage import StorageProvider

__all__ = ["Activity", "DataStream", "Datapoint", "Flusher", "StreamStats", "now", "set_clock"]

# Defined in private modules, named by their public path: what IPython's display
# hooks (registered by module and class name), pickles, reprs and docs see.
for _public in (
    Activity,
    Chunk,
    Datapoint,
    Flusher,
    StreamStats,
):
    _public.__module__ = __name__


log = logging.getLogger("livestack_nb")

_clock: Callable[[], float] = time.time
_ident = threading.get_ident


def now() -> float:
    """The time stamped on datapoints and statuses (``testing.virtual_clock`` replaces it)."""
    return _clock()


def set_clock(clock: Callable[[], float]) -> Callable[[], float]:
    """Stamp with ``clock`` from now on; returns the clock it replaces (``testing.virtual_clock``)."""
    global _clock
    previous, _clock = _clock, clock
    return previous


class DataStream(Reads):
    """A live, typed stream of values that remembers its recent history.

    Subscribing gets values from now on; :meth:`replay` gives the history
    first, then goes live: the whole history when the env's vault is durable
    (what memory no longer holds is read back from the vault), else what is
    still in memory. Values are delivered on the thread that
    produced them (a worker thread or the env's loop), like any hot RxPY source.
    In plain Python, ``for v in stream`` / ``async for`` read it as it comes
    and ``next_value()`` takes one value at a time (see :meth:`__iter__`).

    Parameters
    ----------
    stream_id:
        Unique id of the stream in its env.
    tag:
        The tag this stream carries for its job.
    value_type:
        The type of the values (a :class:`~livestack_nb.spec.TagType` or a type).
    history:
        How many datapoints to keep in memory (``len()`` still counts all).
    storage, large_value_threshold:
        ``bytes``/``str`` values longer than the threshold are kept in
        ``storage`` by content hash; readers get them back transparently.
    """

    def __init__(
        self,
        stream_id: str,
        tag: str = "default",
        value_type: TagType | Any = Any,
        *,
        history: int = DEFAULT_HISTORY,
        storage: StorageProvider | None = None,
        large_value_threshold: int | None = None,
        fused: bool = False,
        activity: Activity | None = None,
        flusher: Flusher | None = None,
    ) -> None:
        super().__init__()
        if history < 1:
            raise ValueError(f"history must be at least 1, not {history}")
        self.stream_id = stream_id
        self.tag = tag
        self.type = value_type if isinstance(value_type, TagType) else TagType(value_type)
        self.history = history
        self.fused = fused
        self._storage = storage
        self._threshold = large_value_threshold
        self._offload = (
            storage is not None
            and large_value_threshold is not None
            and (self.type.is_any or self.type.cls in (bytes, bytearray, str))
        )
        self._activity = activity
        # The edge buffer (see the module docstring): values appended one at a
        # time, or ``(value, parent seq)`` pairs when ``_buf_parent`` names the
        # stream they came from. Without a flusher (a stream made outside an env,
        # or one in a flow with a cycle, whose quiet check counts every value
        # pushed) each value is pushed at once.
        self._buf: list[Any] = []
        self._buf_parent: str | None = None
        self._flusher = None if activity is not None else flusher
        # Set by the job that consumes this stream while it waits for input: a value
        # appended then is pushed at once (no batch to gather for a consumer at rest).
        self.consumer_idle = False
        self._state_lock = threading.Lock()
        self._chunks: deque[Chunk] = deque()
        self._held = 0
        self._count = 0
        self._pending: deque[Chunk | _End | _Join] = deque()
        # The thread delivering (its ident), 0 if none: one at a time, in order. A
        # claim is let go by whoever made it, also when a KeyboardInterrupt stops
        # its delivery; what that left pending goes with the next delivery.
        self._delivering = 0
        self._listeners: tuple[_Listener, ...] = ()
        self._closed = False
        self._end_delivered = False
        self._ending: list[_Listener] = []  # listeners still to be told of the end
        self._telling: list[_Listener] | None = None  # still to be given pending[0]
        self._error: BaseException | None = None
        self._last_time: float | None = None
        self._samples: deque[tuple[float, int]] = deque(maxlen=64)
        self._last_sample = 0.0
        # Set by the env when its vault is durable (see ``record_to``).
        self._recorder: Callable[[Chunk], bool] | None = None
        self._wait_for_room: Callable[[], None] | None = None
        self._archive: Callable[[int, int], Iterable[Any]] | None = None
        self._sync_archive: Callable[[], None] | None = None
        self._cursor: StreamReader | None = None  # next_value's place in the stream
        # Called (inside the ``except``) when a subscriber raises; a job sets it
        # on its outputs so the failure shows in the job's logs.
        self.on_subscriber_error: Callable[[DataStream], None] | None = None
        self.subscriber_errors = 0

    @property
    def value_type(self) -> Any:
        """The declared type of the values."""
        return self.type.tp

    # -- producing ---------------------------------------------------------

    def append(self, value: Any) -> None:
        """Add one already-validated value, pushed with the next chunk (see the module
        docstring); the per-value call behind ``job.feed``."""
        if self._buf_parent is not None:
            self._switch_buffer(None)
        buf = self._buf
        buf.append(value)
        n = len(buf)
        if n == 1 or n >= MAX_CHUNK:
            self.appended(n)

    def append_child(self, value: Any, parent_stream: str, parent_seq: int) -> None:
        """Like :meth:`append`, for a value derived from datapoint ``parent_seq`` of
        ``parent_stream`` (a processor's ``emit``). One thread appends to a stream
        at a time (its job's processor)."""
        if self._buf_parent is not parent_stream:
            self._switch_buffer(parent_stream)
        buf = self._buf
        buf.append((value, parent_seq))
        n = len(buf)
        if n == 1 or n >= MAX_CHUNK:
            self.appended(n)

    @property
    def edge(self) -> list[Any]:
        """The buffer itself, for a caller that appends parentless values to it directly
        (the list is never replaced) and then calls :meth:`appended` with its length
        when that is 1 or ``MAX_CHUNK`` or more, as :meth:`append` does."""
        return self._buf

    def appended(self, n: int) -> None:
        """The buffer got its first value (flush it soon; now if the consumer waits for
        input and this is a trickle, nothing pushed for ``FLUSH_AFTER``) or is full
        (flush it now). Not at once for a fast loop, whose consumer runs dry between
        values: handing values over one at a time is what the buffer saves."""
        if n >= MAX_CHUNK:
            self.flush()
            return
        if self.consumer_idle:
            last = self._last_time
            if last is None or _clock() - last >= FLUSH_AFTER:
                self.flush()
                return
        flusher = self._flusher
        if flusher is None:
            self.flush()
        else:
            flusher.due(self)

    def _switch_buffer(self, parent_stream: str | None) -> None:
        """Values with another parent stream (or none) follow: push the buffer first."""
        if self._buf:
            self.flush()
        self._buf_parent = parent_stream

    def flush(self) -> None:
        """Push what was appended one value at a time and is not pushed yet."""
        if self._buf:
            self.push([])

    def push_each_at_once(self) -> None:
        """Push each value appended from now on at once, what is buffered first: a stream
        given to a run with a cycle (an outer flow's, written by the run's jobs), whose
        quiet check must see every value on its way, as it does on the run's own streams."""
        self._flusher = None
        if self._buf:
            self.flush()

    @property
    def buffered(self) -> int:
        """How many appended values wait in the buffer (not yet pushed)."""
        return len(self._buf)

    def push(
        self,
        values: list[Any],
        parent_stream: str | None = None,
        parent_seqs: Sequence[int] | None = None,
    ) -> int:
        """Append already-validated ``values`` and deliver them; return the first seq.

        What was appended one at a time before goes first. This is the
        producer's side, used by jobs and flows; user code feeds a job
        (``job.feed``) or emits from one (``job.output().emit``) instead.
        """
        n = len(values)
        if not n and not self._buf:
            return self._count
        now = _clock()
        stored = self._offload_values(values) if n and self._offload else None
        me = _ident()
        claimed = False
        behind = False
        try:
            with _held_if_buffered(self._buf), self._state_lock:
                if self._closed:
                    if not n:
                        return self._count  # ended meanwhile: the end took the buffer
                    raise JobClosedError(f"stream {self.stream_id!r} has ended; it takes no more values")
                first = self._take_buffer(now)
                if first is not None:
                    behind = self._admit(first)
                seq0 = self._count
                chunk = None
                if n:
                    chunk = Chunk(self.stream_id, seq0, now, values, parent_stream, parent_seqs, stored)
                    behind = self._admit(chunk) or behind
                if self._delivering:  # another thread delivers it
                    if first is not None:
                        self._pending.append(first)
                    if chunk is not None:
                        self._pending.append(chunk)
                else:
                    claimed = True
                    self._delivering = me
                    listeners = self._listeners
                    # Queued first when what an interrupted delivery left must go
                    # before it, or when the wait for the vault could be
                    # interrupted: a chunk kept must be delivered too.
                    direct = chunk is not None and first is None and not self._pending and not behind
                    if not direct:
                        if first is not None:
                            self._pending.append(first)
                        if chunk is not None:
                            self._pending.append(chunk)
            if behind:
                self._fall_back()
            if not claimed:
                return seq0
            # Nobody was delivering: hand this chunk over directly, then flush
            # whatever other threads queued meanwhile.
            if direct:
                assert chunk is not None  # for mypy: direct says so
                self._deliver_chunk(chunk, listeners)
            self._deliver()
        except BaseException:
            if claimed:
                self._let_go(me)
            raise
        return seq0

    def _take_buffer(self, now: float) -> Chunk | None:
        """The buffered values as a chunk (the state lock is held, interrupts too)."""
        buf = self._buf
        k = len(buf)
        if not k:
            return None
        # Slice and delete the first k, with no call in between: a value appended
        # meanwhile by another thread stays for the next chunk.
        taken = buf[:k]
        del buf[:k]
        parent = self._buf_parent
        parents: list[int] | None = None
        if parent is not None:
            parents = [p for _, p in taken]
            taken = [v for v, _ in taken]
        stored = self._offload_values(taken) if self._offload else None
        return Chunk(self.stream_id, self._count, now, taken, parent, parents, stored)

    def _admit(self, chunk: Chunk) -> bool:
        """Count, keep and record ``chunk`` (the state lock is held); whether the vault is behind."""
        n = len(chunk.stored)
        now = chunk.time
        seq0 = self._count
        self._count = seq0 + n
        self._keep(chunk, n)
        self._last_time = now
        if now - self._last_sample >= 0.1:
            self._last_sample = now
            # The count *before* this batch: a single burst then shows a rate.
            self._samples.append((now, seq0))
        act = self._activity
        if act is not None:
            act.add(n)
        rec = self._recorder
        return rec is not None and rec(chunk)

    def _let_go(self, me: int) -> None:
        """Give up a claim to deliver (if still held by this thread): a delivery was stopped."""
        with self._state_lock:
            if self._delivering == me:
                self._delivering = 0

    def _fall_back(self) -> None:
        """The vault is far behind: wait (outside the lock) until it has room."""
        assert self._wait_for_room is not None
        self._wait_for_room()

    def record_to(
        self,
        recorder: Callable[[Chunk], bool] | None,
        wait_for_room: Callable[[], None],
        archive: Callable[[int, int], Iterable[Any]],
        sync: Callable[[], None] | None = None,
    ) -> None:
        """Write every chunk through to a durable vault and replay from it.

        ``recorder`` is called with each accepted chunk, under the stream's
        lock (so a vault sees a stream's chunks in seq order); when it returns
        ``True`` the producer calls ``wait_for_room`` after letting go of the
        lock. ``archive(start, stop)`` gives the stored batches (see
        :class:`~livestack_nb.vault.BatchRecord`) with seqs in ``[start,
        stop)``: :meth:`replay` reads what the in-memory history no longer
        holds from there. ``sync`` (when given) makes what was recorded so
        far readable from the archive; whole reads call it before reading
        what memory no longer holds (a write-behind vault may lag behind).
        """
        self._recorder = recorder
        self._wait_for_room = wait_for_room
        self._archive = archive
        self._sync_archive = sync

    def restore(self, count: int, batches: Iterable[Any]) -> None:
        """Become an ended stream of ``count`` values read back from a vault.

        ``batches`` are the stored batches of the last ``history`` values;
        older ones are read from the archive by :meth:`replay`.
        """
        self.resume(count, batches)
        with self._state_lock:
            self._closed = True
            self._end_delivered = True

    def resume(self, count: int, batches: Iterable[Any]) -> None:
        """Go on after ``count`` values stored earlier (a named stream opened again):
        the next value pushed gets seq ``count``. ``batches`` as for :meth:`restore`."""
        with self._state_lock:
            for chunk in self._from_batches(batches, max(0, count - self.history), count):
                self._chunks.append(chunk)
                self._held += len(chunk.stored)
                self._last_time = chunk.time
            self._count = count

    def _from_batches(self, batches: Iterable[Any], start: int, stop: int) -> Iterator[Chunk]:
        """Chunks (as kept in memory) from stored batches, cut to ``[start, stop)``."""
        sid = self.stream_id
        for b in batches:
            stored = b.values
            if b.offloaded:
                stored = list(stored)
                for i in b.offloaded:
                    stored[i] = _Offloaded(stored[i])
            if b.seq0 >= stop:  # a stored row may hold batches past the range asked for
                return
            c = Chunk(sid, b.seq0, b.time, stored, b.parent_stream, b.parent_seqs)
            c.offloaded = bool(b.offloaded)
            if c.seq0 < start:
                c = c.tail(start - c.seq0)
            if c.seq0 + len(c.stored) > stop:
                c = _head(c, stop - c.seq0)
            if c.stored:
                yield c

    def _archived(self, stop: int) -> Iterator[Chunk]:
        """What a durable vault holds before seq ``stop``, readable, in order."""
        assert self._archive is not None
        for c in self._from_batches(self._archive(0, stop), 0, stop):
            yield _readable(c, self)

    def end(self, error: BaseException | None = None) -> None:
        """No more values: listeners get ``on_end`` (``on_error`` if ``error``). Idempotent
        (and ending again delivers what an interrupted delivery left, the end too)."""
        item = _End(error)
        me = _ident()
        claimed = False
        behind = False
        try:
            with _held_if_buffered(self._buf), self._state_lock:
                pending = self._pending
                if not self._closed:
                    first = self._take_buffer(_clock())
                    if first is not None:
                        behind = self._admit(first)
                        pending.append(first)
                self._closed = True
                if not (self._end_delivered or any(type(p) is _End for p in pending)):
                    pending.append(item)
                    if self._activity is not None:
                        self._activity.add(1)  # an end on its way is work in flight
                if not self._delivering and pending:
                    claimed = True
                    self._delivering = me
            if behind:
                self._fall_back()
            if claimed:
                self._deliver()
        except BaseException:
            if claimed:
                self._let_go(me)
            raise

    @property
    def archived(self) -> bool:
        """Whether what memory no longer holds is read back from a vault (a durable one)."""
        return self._archive is not None

    @property
    def ended(self) -> bool:
        """Whether the stream has ended (no more values will come)."""
        return self._closed

    @property
    def error(self) -> BaseException | None:
        """The error the stream ended with, if any."""
        return self._error

    def _keep(self, chunk: Chunk, n: int) -> None:
        chunks = self._chunks
        chunks.append(chunk)
        held = self._held + n
        bound = self.history
        # Drop whole chunks while what stays still covers the bound; readers
        # skip the few extra values at the front (see _history_chunks).
        while held - len(chunks[0].stored) >= bound:
            held -= len(chunks.popleft().stored)
        first = chunks[0]
        if len(first.stored) > 4 * bound:
            skip = held - bound
            chunks[0] = first.tail(skip)
            held -= skip
        self._held = held

    def _offload_values(self, values: list[Any]) -> list[Any] | None:
        threshold = self._threshold
        assert self._storage is not None and threshold is not None
        stored: list[Any] | None = None
        for i, v in enumerate(values):
            if type(v) in (bytes, bytearray, str) and len(v) > threshold:
                if stored is None:
                    stored = list(values)
                stored[i] = _Offloaded(self._storage.put(v))
        return stored

    @staticmethod
    def _now() -> float:
        return _clock()  # read at each call: testing.virtual_clock replaces it

    def __repr__(self) -> str:
        state = "ended" if self._closed else "live"
        return f"<DataStream {self.stream_id!r} {self.type.name} {state}, {self._count} values>"


def _held_if_buffered(buf: list[Any]) -> contextlib.AbstractContextManager[Any]:
    """Interrupts held while buffered values are taken into a chunk: values whose
    ``feed`` returned must not be lost to a kernel interrupt landing half way."""
    if buf:
        return held_interrupts()
    return contextlib.nullcontext()
