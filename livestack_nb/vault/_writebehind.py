"""Write-behind: what the durable vaults share between the hot path and the engine.

A fused flow pushes far more values a second than one write per value could
keep up with, in SQLite or in Redis. So a stream hands each chunk it accepts
to :meth:`WriteBehindVault.recorder`'s callable, which only appends it to an
in-memory queue, and one background thread per vault takes whatever has
queued and gives it to the vault's :meth:`~WriteBehindVault._write` as one
batch: when ``batch_values`` values are waiting, or ``interval`` seconds
after the last batch, whichever comes first.

Three guarantees hold whatever the engine:

- **Order**: a batch is the queue's items in the order they were put, and
  batches are written one after the other by one thread.
- **Durability on flush**: :meth:`~WriteBehindVault.flush` returns only once
  everything put before it has been written (or raises the error that kept it
  from being written). The env flushes when a job ends, on ``env.flush()`` and
  on ``env.close()``.
- **Bounded memory (backpressure)**: a producer that gets ``max_backlog``
  values ahead of the writer is told so by its recorder and then held in
  :meth:`~WriteBehindVault.wait_for_room` until the writer is back under half
  of that; the gap between the two marks keeps a producer from being stopped
  on every chunk once it has caught up.

What a vault supplies is how a batch is written (a transaction, a pipeline)
and what a failed write means for the next one: see :meth:`~WriteBehindVault._write`.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from ..errors import LivestackError
from ..storage import StorageRef
from ._json import Codec
from .base import (
    ChunkLike,
    DatapointRecord,
    JobRecord,
    Recorder,
    StatusRecord,
    StreamRecord,
    ValidationFailureRecord,
    Vault,
    points_of,
)

__all__ = ["Child", "WriteBehindVault"]


class Child(NamedTuple):
    """Queued by :meth:`WriteBehindVault.add_child`.

    Records a vault queues are never plain tuples: a plain tuple on the queue
    is always a ``(codec, chunk)`` pair, so a writer tells datapoints (the
    bulk of a batch) from everything else with one ``type(item) is tuple``.
    """

    parent_id: str
    child_id: str


class _Flush:
    """A marker a flush waits on: set once everything put before it is written."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


def _take_all(queue: deque[Any]) -> list[Any]:
    """Everything in ``queue`` now (producers may append meanwhile: it is thread-safe)."""
    out = []
    while queue:
        out.append(queue.popleft())
    return out


class WriteBehindVault(Vault):
    """A durable vault whose writes go through a queue and one writer thread.

    See the module docstring. A subclass sets up its engine, then calls
    ``super().__init__`` (which starts the writer), and implements
    :attr:`_label`, :meth:`_write` and :meth:`_release`.
    """

    durable = True
    records_at_once = False
    """Wake the writer for every record (job, status, ...) rather than only
    for a full batch: for a vault other processes watch, where a status that
    waits for the interval is a status they see late."""

    def __init__(self, *, name: str, interval: float, batch_values: int, max_backlog: int) -> None:
        self.interval = interval
        self.batch_values = batch_values
        self.max_backlog = max_backlog
        self._queue: deque[Any] = deque()  # records and (codec, chunk) pairs, in the order put
        self._markers: deque[_Flush] = deque()
        # The backlog is `_queued - _written`. Producers only ever add to the
        # first and the writer only sets the second (to what `_queued` was
        # when it took its batch), so the two never undo each other's update.
        self._queued = 0
        self._written = 0
        self._kicked = False
        # Entered as their locks, not through the Conditions: see livestack_nb/_interrupt.py.
        self._cond_lock, self._room_lock = threading.RLock(), threading.RLock()
        self._cond = threading.Condition(self._cond_lock)  # wakes the writer
        self._room = threading.Condition(self._room_lock)  # wakes producers held in wait_for_room
        self._stopping = False
        self._closed = False
        self._crash: BaseException | None = None  # what stopped the writer thread, if anything did
        self._writer = threading.Thread(target=self._run, name=name, daemon=True)
        self._writer.start()

    # -- what a vault supplies ------------------------------------------------------

    @property
    @abstractmethod
    def _label(self) -> str:
        """How messages name this vault, e.g. ``sqlite vault '/path/to.db'``."""

    @abstractmethod
    def _write(self, batch: list[Any]) -> BaseException | None:
        """Write ``batch`` (records and ``(codec, chunk)`` pairs, in order); on the writer thread.

        Returns the error the flushes waiting on this batch raise (``None``
        when it was written). It is also called with an empty batch when only
        flushes are waiting, so a vault that refuses to write after a failure
        can keep reporting it. An exception it raises stops the writer: every
        later flush raises it.
        """

    @abstractmethod
    def _release(self) -> None:
        """Close the engine; called by :meth:`close` once the writer has stopped."""

    def _fail(self, what: str, e: BaseException | None = None) -> LivestackError:
        why = f": {e}" if e is not None else ""
        return LivestackError(f"{self._label}: {what}{why}")

    # -- the producer's side --------------------------------------------------------

    def _put(self, item: Any) -> None:
        """Queue a record (anything but datapoints, which go through :meth:`recorder`)."""
        if self._closed:
            raise self._fail("is closed; it records nothing more")
        self._queue.append(item)
        if (self.records_at_once or self._queued - self._written >= self.batch_values) and not self._kicked:
            self._kick()

    def _kick(self) -> None:
        """Wake the writer now rather than at the end of its interval."""
        self._kicked = True
        with self._cond_lock:
            self._cond.notify()

    def recorder(self, stream_id: str, tag: str, value_type: Any) -> Recorder:
        return self._recorder(Codec(stream_id, value_type))

    def _recorder(self, codec: Codec) -> Recorder:
        append = self._queue.append
        batch, high = self.batch_values, self.max_backlog

        def record(chunk: ChunkLike) -> bool:
            # Runs for every chunk of every stream: kept to a few attribute lookups.
            if self._closed:
                raise self._fail("is closed; it records nothing more")
            append((codec, chunk))
            queued = self._queued = self._queued + len(chunk.stored)
            backlog = queued - self._written
            if backlog >= batch and not self._kicked:
                self._kick()
            return backlog > high

        return record

    def wait_for_room(self) -> None:
        if threading.current_thread() is self._writer:
            return  # called back from a write (a lost job's end): waiting here waits on itself
        with self._room_lock:
            while (
                self._queued - self._written > self.max_backlog // 2
                and self._writer.is_alive()
                and not self._stopping
            ):
                self._room.wait(0.1)

    def flush(self) -> None:
        """Return once everything recorded before the call is written.

        Raises
        ------
        LivestackError
            Writing failed (the error says why), or the writer has stopped.
        """
        if self._closed:
            return
        if threading.current_thread() is self._writer:
            # A write's own callbacks end jobs (the server lost them, say), and ending a
            # job flushes: the writer cannot wait for itself. What those callbacks queued
            # is written right after the batch in hand.
            return
        marker = _Flush()
        self._markers.append(marker)
        self._kick()
        while not marker.done.wait(0.5):
            if not self._writer.is_alive() and not marker.done.is_set():
                raise self._fail("its writer has stopped", self._crash)
        if marker.error is not None:
            raise self._fail("writing failed", marker.error)

    def close(self) -> None:
        """Write what is queued, stop the writer thread, then release the engine.

        The writer is joined after a flush, so all it has left is what other
        threads put while the flush ran; no thread of the vault outlives this.

        Raises
        ------
        LivestackError
            The final flush failed (the vault is closed all the same).
        """
        if self._closed:
            return
        error: LivestackError | None = None
        try:
            self.flush()
        except LivestackError as e:
            error = e
        self._closed = True
        with self._cond_lock:
            self._stopping = True
            self._cond.notify()
        self._writer.join()
        self._release()
        if error is not None:
            raise error

    # -- the contract's writes: each only queues ------------------------------------

    def add_job(self, record: JobRecord) -> None:
        self._put(record)

    def add_status(self, record: StatusRecord) -> None:
        self._put(record)

    def add_stream(self, record: StreamRecord) -> None:
        self._put(record)

    def add_child(self, parent_id: str, child_id: str) -> None:
        self._put(Child(parent_id, child_id))

    def add_validation_failure(self, record: ValidationFailureRecord) -> None:
        self._put(record)

    def datapoints(self, stream_id: str, after: int = -1, limit: int | None = None) -> list[DatapointRecord]:
        """Cut from :meth:`batches`: a durable vault stores batches, and each backend
        overrides ``batches`` (the base one reads through ``datapoints``)."""
        return points_of(stream_id, self.batches(stream_id, after + 1), after, limit)

    def add_datapoints(self, records: Sequence[DatapointRecord]) -> None:
        by_stream: dict[str, list[DatapointRecord]] = {}
        for r in records:
            by_stream.setdefault(r.stream_id, []).append(r)
        for sid, recs in by_stream.items():
            record = self._recorder(Codec(sid, Any))
            for chunk in _chunks(recs):
                record(chunk)

    # -- the writer thread ----------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cond_lock:
                    if not self._stopping and not self._kicked:
                        self._cond.wait(self.interval)
                    self._kicked = False
                    stopping = self._stopping
                # Markers first, then the queue: whatever was put before a
                # marker is in the queue by the time the marker is taken, so
                # it is in this batch and the marker's error is its error.
                markers = _take_all(self._markers)
                batch = _take_all(self._queue)
                queued = self._queued  # what `batch` holds, but for a put racing with this line
                error = self._write(batch) if batch or markers else None
                self._written = queued  # every round, so such a race is settled by the next
                with self._room_lock:
                    self._room.notify_all()
                for m in markers:
                    m.error = error
                    m.done.set()
                if stopping and not self._queue and not self._markers:
                    return
        except BaseException as e:
            self._crash = e
            raise
        finally:
            with self._room_lock:
                self._room.notify_all()


def _parent_stream(record: DatapointRecord) -> str | None:
    return record.parents[0].rsplit(":", 1)[0] if record.parents else None


def _chunks(records: list[DatapointRecord]) -> Iterator[_Points]:
    """One stream's records as chunks: runs of consecutive seqs with one time and one parent stream."""
    start = 0
    for i in range(1, len(records) + 1):
        if (
            i == len(records)
            or records[i].seq != records[i - 1].seq + 1
            or records[i].time != records[start].time
            or _parent_stream(records[i]) != _parent_stream(records[start])
        ):
            yield _Points(records[start:i])
            start = i


class _Points:
    """DatapointRecords of one stream, seen as a chunk (see ``ChunkLike``)."""

    __slots__ = ("offloaded", "parent_seqs", "parent_stream", "seq0", "stored", "time")

    def __init__(self, records: Sequence[DatapointRecord]) -> None:
        first = records[0]
        self.seq0 = first.seq
        self.time = first.time
        # a StorageRef is its own placeholder: `ref_of` reads either
        self.stored = [r.value for r in records]
        self.offloaded = any(isinstance(r.value, StorageRef) for r in records)
        self.parent_stream = _parent_stream(first)
        self.parent_seqs: Sequence[int] | None = (
            [int(r.parents[0].rsplit(":", 1)[1]) for r in records] if first.parents else None
        )
