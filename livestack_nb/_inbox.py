"""The inbox: the queue between a job's input streams and its processor.

Chunks arrive from whichever thread delivers them; the processor reads them
through a cursor (one value, a batch, or every queued chunk at once), and a
feeder that gets too far ahead waits for room (:data:`MAX_BACKLOG`).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .errors import JobCancelled
from .stream import Activity, Chunk, DataStream

_ENDED = object()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _switched(last: DataStream | None, stream: DataStream) -> DataStream:
    """Values go to ``stream`` now, after ``last``'s: push what ``last`` buffered first."""
    if last is not None and last._buf:
        last.flush()
    return stream


class _NoValue:
    """A class no value is exactly: the tag's type has no fast path."""


MAX_BACKLOG = 65_536
"""How many values a job may have queued before a thread feeding it waits.

Backpressure, not loss: a cell feeding faster than the job processes is held
until half of that backlog is done, so memory stays bounded and nothing is
dropped. Livestack's own threads never wait (see :func:`may_wait_for_room`).
"""


def may_wait_for_room() -> bool:
    """Whether the current thread may be held by backpressure.

    Only callers outside livestack-nb's own threads: a worker thread or the
    env's loop waiting on a queue that a worker must drain could deadlock.
    """
    return not threading.current_thread().name.startswith("livestack")


class Backlog:
    """Values queued for a consumer, and the feeders held until it catches up.

    Backpressure written once, for the inbox of a processor and the queue of an
    inline runner: their owner counts values in (``queued += n``) and out
    (:meth:`taken`) under its own lock, the one of the condition given here,
    and a feeder that has just added calls :meth:`hold` with that lock held.
    """

    __slots__ = ("_cond", "blocked", "queued")

    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond
        self.queued = 0
        self.blocked = 0  # feeders held by backpressure

    def taken(self, n: int) -> None:
        """``n`` values left the queue (the lock is held): a held feeder may go on."""
        self.queued -= n
        if self.blocked:
            self._cond.notify_all()

    def hold(self, stopped: Callable[[], bool]) -> None:
        """Past :data:`MAX_BACKLOG`, hold the calling feeder (the lock is held) until half
        of it is done or ``stopped()``; livestack-nb's own threads are never held."""
        if self.queued <= MAX_BACKLOG or not may_wait_for_room():
            return
        self.blocked += 1
        try:
            while self.queued > MAX_BACKLOG // 2 and not stopped():
                self._cond.wait(0.05)
        finally:
            self.blocked -= 1


class Inbox:
    """The queued input of a processor job: chunks per tag, read in arrival order.

    Why chunks: a reader takes a whole chunk under the lock and then reads its
    values through a cursor (``chunk``, ``index``) with no lock and no hand-off
    per value; a processor's ``emit`` finds its lineage parent there. The
    cursor lives here, not in the reading generator, so a retry reads the
    current value again (``index`` moves back one), a skip goes on after it,
    and a loop broken off and started again goes on where it stopped.

    Sync readers block on a condition; async readers wait on futures woken
    from whichever thread delivers. Before a reader waits it calls
    ``before_wait`` (the job pushes what its processor emitted and pulls what
    was fed one by one), so nothing waits in a buffer while the job is idle.

    In a flow with a cycle (``activity`` given) the inbox keeps the flow's count of
    work in flight honest for its job: a queued value counts until the processor
    has finished with it (the reader that took its chunk, or its batch, reads
    again or waits, or the processor returns); the job counts one from its
    creation until it first reads (it may emit before that); an input tag's end
    counts until the processor has seen it (its next read or wait, or its return),
    so ending a loop-fed input is not taken for quiet before the job has acted on
    it; and nothing put after the processor returned is counted (nobody reads it).
    Values are let go by the reader that took them (its thread, or its task: a
    processor may read two tags in two tasks at once), outside the lock, since a
    quiet flow ends streams from there.
    """

    def __init__(
        self,
        tags: Iterable[str],
        activity: Activity | None = None,
        before_wait: Callable[[], bool] | None = None,
    ) -> None:
        self._mutex = threading.RLock()  # entered as the lock itself: see _interrupt.py
        self._cond = threading.Condition(self._mutex)
        self._queues: dict[str, deque[tuple[int, Chunk]]] = {t: deque() for t in tags}
        self._open = set(self._queues)
        self._next_seq = dict.fromkeys(self._queues, 0)  # per tag: the seq expected next
        self._arrival = 0
        self._room = Backlog(self._cond)  # values in the queues, and the feeders held on them
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.cancelled = False
        self._activity = activity
        self._before_wait = before_wait
        self.streams: list[DataStream] = []  # the inputs, told when the reader waits (consumer_idle)
        # The cursor: the chunk being read, its tag and arrival, the index of the
        # value last read (-1: none yet), and a value skipped by the policy.
        self.chunk: Chunk | None = None
        self.tag = ""
        self._chunk_arrival = 0
        self.index = -1
        self._skipped: tuple[Chunk, int] | None = None
        self._batch_extra = 0  # values of a batch read before the cursor's chunk, still counted
        self.waiting = False  # a reader waits for input (a cancel then unwinds it at once)
        # In a flow with a cycle (``activity``): units of work the processor holds
        # (ends it has seen; one from the start until it first reads, since it may
        # emit before that), values each reader (thread or task) has read and not
        # yet let go, the reader that took the cursor's chunk, and ends not yet seen.
        self._held = 0
        self._items: dict[object, int] = {}
        self._owner: object = None
        self._ends = 0
        self._closed = False
        if activity is not None:
            activity.add(1)
            self._held = 1

    def put(self, tag: str, chunk: Chunk) -> None:
        n = len(chunk.values)
        with self._mutex:
            if self._closed:
                return  # the processor returned: nothing reads this any more
            if chunk.seq0 < self._next_seq[tag]:
                return  # had it already: a delivery stopped by an interrupt, given again
            # (no call between these two: an interrupt cannot split them)
            self._next_seq[tag] = chunk.seq0 + n
            self._queues[tag].append((self._arrival, chunk))
            if self._activity is not None:
                self._activity.add(n)
            self._arrival += 1
            room = self._room
            room.queued += n
            self._wake()
            if room.queued > MAX_BACKLOG:
                room.hold(self._is_cancelled)

    def _is_cancelled(self) -> bool:
        return self.cancelled

    @property
    def backlog(self) -> int:
        """Values queued or not yet read from the cursor's chunk (0: nothing left to read)."""
        c = self.chunk
        return self._room.queued + (0 if c is None else len(c.values) - self.index - 1)

    def end(self, tag: str) -> None:
        with self._mutex:
            if tag in self._open and not self._closed and self._activity is not None:
                self._activity.add(1)  # until the reader has seen it
                self._ends += 1
            self._open.discard(tag)
            self._wake()

    def cancel(self) -> None:
        with self._mutex:
            self.cancelled = True
            self._wake()

    def _idle(self, idle: bool) -> None:
        for stream in self.streams:
            stream.consumer_idle = idle

    def _wake(self) -> None:
        self._cond.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_resolve, fut)

    @property
    def current(self) -> bool:
        """Whether a value was read and not yet skipped (what a retry reads again)."""
        c = self.chunk
        return c is not None and self.index >= 0 and self._skipped != (c, self.index)

    def requeue_current(self) -> None:
        """Read the current value again next (a retry)."""
        if self.current:
            self.index -= 1

    def skip_current(self) -> None:
        """Drop the current value (``on_error="skip"``): reading goes on after it."""
        if self.chunk is not None:
            self._skipped = (self.chunk, self.index)

    def release(self, reader: object = None) -> None:
        """``reader`` (a thread's id or a task) finished with what it read (it reads again
        or waits), or the processor with all of it (``None``: it returned or failed)."""
        act = self._activity
        if act is None:
            return
        with self._mutex:
            n = self._held
            self._held = 0
            if reader is None:
                n += sum(self._items.values())
                self._items.clear()
            else:
                n += self._items.pop(reader, 0)
        if n:
            act.done(n)

    def _holds(self, reader: object) -> bool:
        """Whether ``reader`` should let go of something before it waits (the lock is held)."""
        return self._activity is not None and bool(self._held or self._items.get(reader))

    def _reader(self) -> object:
        """Who reads (in a flow with a cycle): the thread."""
        return None if self._activity is None else threading.get_ident()

    def _seen_ends(self) -> None:
        """The reader sees the ends told so far (the lock is held): held till it reads again."""
        if self._ends:
            self._held += self._ends
            self._ends = 0

    def close(self) -> None:
        """The processor is done: drop what it left unread (counted, in a cycle)."""
        with self._mutex:
            self._closed = True
            left = self._room.queued
            for q in self._queues.values():
                q.clear()
            self._room.queued = 0
            self._release()
            self._cond.notify_all()
            self._seen_ends()
        self.release()
        if left and self._activity is not None:
            self._activity.done(left)

    def _release(self) -> None:
        """Let go of the cursor's chunk (the lock is held); what was not read goes back in front.
        In a cycle what was read stays counted, held by the reader that took it."""
        act = self._activity
        if self._batch_extra:
            if act is not None:
                self._items[self._owner] = self._items.get(self._owner, 0) + self._batch_extra
            self._batch_extra = 0
        c = self.chunk
        if c is None:
            return
        self.chunk = None
        rest = len(c.values) - self.index - 1
        self.index = -1
        self._skipped = None
        if rest > 0:
            tail = Chunk(c.stream_id, c.seq0 + len(c.values) - rest, c.time, c.values[-rest:], None, None)
            self._queues[self.tag].appendleft((self._chunk_arrival, tail))
            self._room.queued += rest
        if act is not None and len(c.values) - rest:
            self._items[self._owner] = self._items.get(self._owner, 0) + len(c.values) - rest

    def _take(self, tags: tuple[str, ...], reader: object = None) -> Any:
        """Point the cursor at the next chunk of ``tags`` (the lock is held): the chunk,
        ``_ENDED`` when every tag has ended, or None when there is none yet."""
        if self.cancelled:
            raise JobCancelled("the job was cancelled: its input is closed")
        self._seen_ends()
        c = self.chunk
        if c is not None:
            if self.index + 1 < len(c.values) and self.tag in tags:
                self._owner = reader
                return c
            self._release()
        best: deque[tuple[int, Chunk]] | None = None
        best_tag = ""
        for t in tags:
            q = self._queues[t]
            if q and (best is None or q[0][0] < best[0][0]):
                best, best_tag = q, t
        if best is not None:
            self._chunk_arrival, chunk = best.popleft()
            self._room.taken(len(chunk.values))
            self.chunk, self.tag, self.index = chunk, best_tag, -1
            self._owner = reader
            return chunk
        if all(t not in self._open for t in tags):
            return _ENDED
        return None

    def take_all(self, tags: tuple[str, ...], timeout: float | None) -> Any:
        """Every chunk queued on ``tags`` as ``(tag, chunk)`` in arrival order (the rest of
        the cursor's chunk first), waiting for one up to ``timeout`` seconds (``[]``
        then); ``_ENDED`` when all ended. The cursor is left on the last value (lineage).
        In a cycle the batch is held by its reader until it reads again (or returns)."""
        reader = self._reader()
        waited = False
        while True:
            self.release(reader)  # outside the lock: a quiet flow may end streams from here
            with self._mutex:
                if self.cancelled:
                    raise JobCancelled("the job was cancelled: its input is closed")
                self._seen_ends()
                self._release()
                taken = sorted(((a, t, c) for t in tags for a, c in self._queues[t]), key=lambda x: x[0])
                if taken:
                    for t in tags:
                        self._queues[t].clear()
                    n = sum(len(c.values) for _, _, c in taken)
                    self._room.taken(n)
                    a, t, last = taken[-1]
                    self._batch_extra = n - len(last.values)  # counted done at the next read
                    self.chunk, self.tag, self._chunk_arrival = last, t, a
                    self.index = len(last.values) - 1
                    self._owner = reader
                    return [(t, c) for _, t, c in taken]
                if all(t not in self._open for t in tags):
                    return _ENDED
                if waited:
                    return []
                if self._holds(reader):
                    continue  # let go of what it read before waiting
            if self._before_wait is not None and self._before_wait():
                continue
            with self._mutex:
                if any(self._queues[t] for t in tags) or all(t not in self._open for t in tags):
                    continue
                if self._holds(reader):
                    continue
                self.waiting = True
                self._idle(True)
                try:
                    self._cond.wait(timeout)
                finally:
                    self.waiting = False
                    self._idle(False)
            waited = timeout is not None

    def next_chunk(self, tags: tuple[str, ...]) -> Any:
        """The chunk to read next from ``tags`` (the cursor points at it), blocking;
        ``_ENDED`` when all have ended."""
        reader = self._reader()
        while True:
            self.release(reader)  # outside the lock: a quiet flow may end streams from here
            with self._mutex:
                r = self._take(tags, reader)
                if r is not None:
                    return r
                if self._holds(reader):
                    continue  # let go of what it read before waiting
            if self._before_wait is not None and self._before_wait():
                continue  # it pulled input: look again before waiting
            with self._mutex:
                r = self._take(tags, reader)
                if r is not None:
                    return r
                if self._holds(reader):
                    continue
                self.waiting = True
                self._idle(True)
                try:
                    self._cond.wait()
                finally:
                    self.waiting = False
                    self._idle(False)

    async def anext_chunk(self, tags: tuple[str, ...]) -> Any:
        loop = asyncio.get_running_loop()
        reader = None if self._activity is None else asyncio.current_task()  # who reads: its task
        while True:
            self.release(reader)
            with self._mutex:
                r = self._take(tags, reader)
                if r is not None:
                    return r
                if self._holds(reader):
                    continue  # let go of what it read before waiting
            if self._before_wait is not None and self._before_wait():
                continue
            with self._mutex:
                r = self._take(tags, reader)
                if r is not None:
                    return r
                if self._holds(reader):
                    continue
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, fut))
            self.waiting = True
            self._idle(True)
            try:
                await fut
            finally:
                self.waiting = False
                self._idle(False)
