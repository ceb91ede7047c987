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
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import reactivex
from reactivex import abc as rx_abc
from reactivex.disposable import Disposable

from ._interrupt import held_interrupts
from .errors import JobClosedError
from .reading import StreamReader, aiterate, iterate, warn_missing, warn_truncated
from .spec import TagType
from .storage import StorageProvider, StorageRef

if TYPE_CHECKING:
    import pandas as pd

    from .env import LiveEnv
    from .lineage import Stop

__all__ = ["Activity", "DataStream", "Datapoint", "Flusher", "StreamStats", "now", "set_clock"]

log = logging.getLogger("livestack_nb")

DEFAULT_HISTORY = 10_000

MAX_CHUNK = 4096
"""Most values in a chunk livestack-nb makes (``feed_many``'s slices, a drain
merging what queued up, a flat-map's gathered yields).

Why a bound: a fused flow walks a chunk once per spec, and the next spec reads
the values the previous one made. A few thousand of them stay in a core's
cache in between; a whole backlog (65,536 values, 2 MB of ints) does not, and
is then read from memory in the order the allocator scattered it, an order
that gets worse the longer a process runs: the cost per event grew by half
over a 10 M-event run (``bench/scale.py``). Larger chunks save nothing
measurable: what a chunk costs is paid once per 4,096 values.
"""

FLUSH_AFTER = 0.005
"""Seconds a value appended one at a time may wait in a stream's buffer before
the env's :class:`Flusher` pushes it (well under what a reader notices)."""

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


@dataclass(frozen=True, slots=True)
class Datapoint:
    """One value in a stream, with where it came from.

    Attributes
    ----------
    id:
        ``"<stream_id>:<seq>"``, unique in the env.
    seq:
        Position in the stream, from 0.
    timestamp:
        Seconds since the epoch when it was emitted.
    parents:
        Ids of the datapoints it was derived from (lineage); empty for fed input.
    """

    id: str
    stream_id: str
    seq: int
    timestamp: float
    value: Any
    parents: tuple[str, ...] = ()

    def lineage(self, env: LiveEnv | None = None) -> list[Stop]:
        """Its journey: this datapoint, then each parent, back to the value fed from
        outside, each a :class:`~livestack_nb.lineage.Stop` (stream, job and node, value).

        Resolved in ``env`` (default: the current env), from memory or a durable vault.
        """
        from .env import current_env
        from .lineage import lineage

        return lineage(env or current_env(), self)


@dataclass(frozen=True, slots=True)
class StreamStats:
    """Counters of a stream: total ``count``, recent ``rate`` (events/s), ``last_time``."""

    count: int
    rate: float
    last_time: float | None


class _Offloaded:
    """History slot for a value that lives in the storage provider."""

    __slots__ = ("ref",)

    def __init__(self, ref: StorageRef) -> None:
        self.ref = ref


class Chunk:
    """A batch of values pushed together; see the module docstring."""

    __slots__ = ("offloaded", "parent_seqs", "parent_stream", "seq0", "stored", "stream_id", "time", "values")

    def __init__(
        self,
        stream_id: str,
        seq0: int,
        time_: float,
        values: list[Any],
        parent_stream: str | None,
        parent_seqs: Sequence[int] | None,
        stored: list[Any] | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.seq0 = seq0
        self.time = time_
        self.values = values
        self.parent_stream = parent_stream
        self.parent_seqs = parent_seqs
        self.stored = values if stored is None else stored
        self.offloaded = stored is not None

    def tail(self, skip: int) -> Chunk:
        """The same chunk without its first ``skip`` values (for trimming)."""
        c = Chunk(
            self.stream_id,
            self.seq0 + skip,
            self.time,
            self.stored[skip:],
            self.parent_stream,
            None if self.parent_seqs is None else self.parent_seqs[skip:],
        )
        c.offloaded = self.offloaded
        return c

    def parents_of(self, i: int) -> tuple[str, ...]:
        if self.parent_stream is None or self.parent_seqs is None:
            return ()
        return (f"{self.parent_stream}:{self.parent_seqs[i]}",)


class Activity:
    """Counts work in flight inside a flow with a cycle, to see when it is quiet.

    Every push into a flow stream, every value queued for a job, every end on its
    way and every job not yet reading its input adds; each finishes only after
    what it caused downstream was added, so the count is zero only when nothing
    is left to do anywhere in the flow: every job idle, waiting for input. A flow
    nested in a flow with a cycle shares its parent's count (so the parent sees
    the child's work), and each run with a cycle listens for the quiet moments.
    """

    __slots__ = ("_count", "_lock", "listeners")

    def __init__(self, on_quiet: Callable[[], None] | None = None) -> None:
        self._count = 0
        self._lock = threading.Lock()
        self.listeners: list[Callable[[], None]] = [] if on_quiet is None else [on_quiet]

    def add(self, n: int) -> None:
        with self._lock:
            self._count += n

    def done(self, n: int) -> None:
        with self._lock:
            self._count -= n
            quiet = self._count == 0
        if quiet:
            for on_quiet in list(self.listeners):
                on_quiet()

    @property
    def quiet(self) -> bool:
        return self._count == 0


class _Listener:
    __slots__ = ("disposed", "on_chunk", "on_end", "start_seq")

    def __init__(
        self,
        on_chunk: Callable[[Chunk], None],
        on_end: Callable[[BaseException | None], None] | None,
    ) -> None:
        self.on_chunk = on_chunk
        self.on_end = on_end
        self.start_seq = 0
        self.disposed = False


class _End:
    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _Join:
    __slots__ = ("listener", "mark", "replay")

    def __init__(self, listener: _Listener, mark: int, replay: bool) -> None:
        self.listener = listener
        self.mark = mark
        self.replay = replay


class Flusher:
    """Pushes what streams buffered at most ``FLUSH_AFTER`` seconds after it came.

    One per env, with a thread (``livestack-flush-<env>``) started on first
    use and joined by :meth:`close`. A stream hands itself over when its
    buffer gets its first value (:meth:`due`); the thread waits
    ``FLUSH_AFTER``, then flushes every stream handed over meanwhile. It never
    waits for room (it is one of livestack-nb's own threads), so a slow job
    cannot hold the trickle of another.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._due: deque[weakref.ReferenceType[DataStream]] = deque()
        # The thread's wake-up: a lock held while there is nothing to do, released
        # by ``due`` (a plain lock, not an Event: an Event's ``set`` enters a
        # Condition in Python code, where a kernel interrupt can leave it locked).
        self._gate = threading.Lock()
        self._gate.acquire()
        self._armed = False
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()

    def due(self, stream: DataStream) -> None:
        """``stream`` has buffered values: flush it soon."""
        if self._closed:
            stream.flush()
            return
        self._due.append(weakref.ref(stream))  # weakly: a stream nothing else holds has no reader
        if not self._armed:
            self._open_gate()
            self._armed = True
        if self._thread is None:
            self._start()

    def _open_gate(self) -> None:
        try:  # noqa: SIM105 (a plain try: contextlib.suppress exits in Python code, interruptible)
            self._gate.release()
        except RuntimeError:
            pass  # open already

    def _start(self) -> None:
        # Held: a thread counted here but never started would flush nothing.
        with held_interrupts(), self._lock:
            if self._thread is not None or self._closed:
                return
            t = threading.Thread(target=self._run, name=f"livestack-flush-{self.name}", daemon=True)
            t.start()
            self._thread = t

    def _run(self) -> None:
        due = self._due
        while True:
            self._gate.acquire()
            if self._closed:
                break
            time.sleep(FLUSH_AFTER)
            self._armed = False
            self._flush(len(due))
        self._flush(len(due))

    def flush_now(self) -> None:
        """Push what every stream handed over has buffered, now, on this thread (``env.flush()``).

        The streams stay handed over: the thread may be flushing one of them
        meanwhile, and a stream is flushed under its own lock, so once this
        returns every value appended before the call has been pushed.
        """
        for ref in list(self._due):
            stream = ref()
            if stream is not None:
                stream.flush()  # (an ended stream's end took its buffer: nothing to push)

    def _flush(self, n: int) -> None:
        due = self._due
        for _ in range(n):
            try:
                stream = due.popleft()()
            except IndexError:
                return
            if stream is None:
                continue
            try:
                stream.flush()
            except JobClosedError:
                pass  # ended meanwhile (its end took the buffer, or a cancel dropped it)
            except Exception:
                log.exception("flushing stream %r failed", stream.stream_id)

    def close(self) -> None:
        """Flush what is due and stop the thread (later buffers flush at once)."""
        with self._lock:
            self._closed = True
            t = self._thread
        self._open_gate()
        if t is not None and t is not threading.current_thread():
            t.join(5.0)


class DataStream(reactivex.Observable[Any]):
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

    def _deliver(self) -> None:
        """Deliver what is pending, in order, then let go of the claim (the caller made it,
        and lets go of it itself if this raises)."""
        pending = self._pending
        lock = self._state_lock
        while True:
            with lock:
                if not pending:
                    self._delivering = 0
                    return
                item = pending[0]
                if isinstance(item, Chunk):
                    if self._telling is None:  # (else: what an interrupted delivery left)
                        self._telling = list(reversed(self._listeners))
                elif isinstance(item, _Join):
                    pending.popleft()
                elif not self._end_delivered:
                    self._error = item.error
                    self._ending = list(self._listeners)
                    self._end_delivered = True
                    self._listeners = ()
            if type(item) is Chunk:
                self._tell_chunk(item)
            elif type(item) is _End:
                self._tell_end(item.error)
            else:
                assert isinstance(item, _Join)
                self._join(item)

    def _tell_end(self, error: BaseException | None) -> None:
        """Tell each listener of the end, dropping it once told, then drop the end itself:
        an end stopped half way (a KeyboardInterrupt) is finished by the next delivery."""
        ending = self._ending
        while True:
            with self._state_lock:
                if not ending:
                    self._pending.popleft()  # the end, told to all
                    break
                listener = ending[-1]
            self._end_listener(listener, error)
            with self._state_lock:
                if ending and ending[-1] is listener:
                    ending.pop()
        act = self._activity
        if act is not None:
            act.done(1)

    def _tell_chunk(self, chunk: Chunk) -> None:
        """Deliver the queued ``chunk`` to each listener, dropping it from the list once
        told, then drop the chunk: a delivery stopped half way (a KeyboardInterrupt)
        is finished by the next one, so values whose ``feed`` returned are not lost."""
        telling = self._telling
        assert telling is not None
        seq0 = chunk.seq0
        while telling:
            listener = telling[-1]
            if seq0 >= listener.start_seq and not listener.disposed:
                try:
                    listener.on_chunk(chunk)
                except Exception:
                    self._listener_failed(listener)
            telling.pop()
        with self._state_lock:
            # In this order, with no call between: an interrupt cannot leave the
            # next chunk with an empty list of listeners still to be told.
            self._telling = None
            self._pending.popleft()
        act = self._activity
        if act is not None:
            act.done(len(chunk.values))

    def _deliver_chunk(self, chunk: Chunk, listeners: tuple[_Listener, ...]) -> None:
        seq0 = chunk.seq0
        for listener in listeners:
            if seq0 >= listener.start_seq and not listener.disposed:
                try:
                    listener.on_chunk(chunk)
                except Exception:
                    self._listener_failed(listener)
        act = self._activity
        if act is not None:
            act.done(len(chunk.values))

    def _end_listener(self, listener: _Listener, error: BaseException | None) -> None:
        if listener.on_end is None or listener.disposed:
            return
        try:
            listener.on_end(error)
        except Exception:
            self._listener_failed(listener)

    def _listener_failed(self, listener: _Listener) -> None:
        self._remove(listener)
        self.subscriber_errors += 1
        log.exception("a subscriber of stream %r raised; it is unsubscribed", self.stream_id)
        report = self.on_subscriber_error
        if report is not None:
            try:
                report(self)
            except Exception:
                log.exception("reporting a subscriber's error failed")

    # -- consuming ---------------------------------------------------------

    def _add(self, listener: _Listener, *, replay: bool) -> Disposable:
        self.flush()  # what was appended before the subscription is not new to it
        me = _ident()
        claimed = False
        try:
            with self._state_lock:
                self._pending.append(_Join(listener, self._count, replay))
                if not self._delivering:
                    claimed = True
                    self._delivering = me
            if claimed:
                self._deliver()
        except BaseException:
            if claimed:
                self._let_go(me)
            raise
        return Disposable(lambda: self._remove(listener))

    def _join(self, join: _Join) -> None:
        listener = join.listener
        if join.replay:
            memory = self._history_chunks(join.mark)
            chunks: Iterable[Chunk] = memory
            if self._archive is not None:
                # What memory no longer holds comes from the vault: everything
                # before the first seq still in memory, so nothing twice.
                first = memory[0].seq0 if memory else join.mark
                if first > 0:
                    chunks = chain(self._archived(first), memory)
            for chunk in chunks:
                if listener.disposed:
                    return
                try:
                    listener.on_chunk(chunk)
                except Exception:
                    self._listener_failed(listener)
                    return
        listener.start_seq = join.mark
        with self._state_lock:
            ended = self._end_delivered
            if not ended and not listener.disposed:
                self._listeners = (*self._listeners, listener)
        if ended:
            self._end_listener(listener, self._error)

    def _remove(self, listener: _Listener) -> None:
        listener.disposed = True
        with self._state_lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

    def add_listener(
        self,
        on_values: Callable[[list[Any]], None],
        on_end: Callable[[BaseException | None], None] | None = None,
        *,
        replay: bool = False,
    ) -> Disposable:
        """Receive every new batch of values as a list (cheaper than per-value).

        For consumers that render or aggregate (widgets). Called on the
        producing thread; keep it quick. Returns a disposable.
        """
        return self._add(_Listener(lambda c: on_values(self._resolved(c)), on_end), replay=replay)

    def listen_chunks(
        self,
        on_chunk: Callable[[Chunk], None],
        on_end: Callable[[BaseException | None], None] | None = None,
    ) -> Disposable:
        """Receive every new :class:`Chunk` (values with ids and lineage); for jobs."""
        return self._add(_Listener(on_chunk, on_end), replay=False)

    def _subscribe_core(
        self,
        observer: rx_abc.ObserverBase[Any],
        scheduler: rx_abc.SchedulerBase | None = None,
    ) -> rx_abc.DisposableBase:
        return self._add(_observer_listener(observer, self._resolved), replay=False)

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
                out.append(_readable(c, self))
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
            warn_truncated(self, first, reader)
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
                warn_missing(self, expected, c.seq0)
            yield c if c.seq0 >= start else c.tail(start - c.seq0)
            expected = end
        if expected < stop:
            warn_missing(self, expected, stop)

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
        me = _ident()
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
        return iterate(self)

    def __aiter__(self) -> AsyncIterator[Any]:
        """``async for v in stream``: as :meth:`__iter__`, waiting without blocking the loop."""
        return aiterate(self)

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
            made = StreamReader(self)
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
        now = _clock()
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

    def __repr__(self) -> str:
        state = "ended" if self._closed else "live"
        return f"<DataStream {self.stream_id!r} {self.type.name} {state}, {self._count} values>"


def _held_if_buffered(buf: list[Any]) -> contextlib.AbstractContextManager[Any]:
    """Interrupts held while buffered values are taken into a chunk: values whose
    ``feed`` returned must not be lost to a kernel interrupt landing half way."""
    if buf:
        return held_interrupts()
    return contextlib.nullcontext()


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


def _observer_listener(
    observer: rx_abc.ObserverBase[Any], resolve: Callable[[Chunk], list[Any]]
) -> _Listener:
    on_next = observer.on_next

    def on_chunk(chunk: Chunk) -> None:
        for v in resolve(chunk):
            on_next(v)

    def on_end(error: BaseException | None) -> None:
        if error is None:
            observer.on_completed()
        else:
            observer.on_error(error if isinstance(error, Exception) else Exception(repr(error)))

    return _Listener(on_chunk, on_end)
