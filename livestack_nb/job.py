"""One cooking of a recipe: the job as its processor sees it, and as its caller does.

:class:`LiveJob` is the worker's side (options, logger, spec, graph, input,
output, invoke, storage, env); :class:`JobHandle` is the caller's side (feed,
end, output streams, wait, result, cancel, logs). Both look at the same state;
keeping them apart keeps a notebook user from emitting into a job by accident
and a processor from ending its own input.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import threading
import traceback as tb
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .errors import DataValidationError, JobCancelled, JobClosedError, JobFailed, LivestackError, WaitTimeout
from .graph import Graph
from .spec import DEFAULT, JobSpec, as_list
from .step import Stepper, Stepping
from .stream import MAX_CHUNK, Activity, Chunk, DataStream, now

if TYPE_CHECKING:
    from .env import LiveEnv
    from .feeding import Feeding
    from .keys import KeyedState
    from .storage import StorageProvider

__all__ = ["JobHandle", "JobStatus", "LiveJob", "LogEntry"]


class JobStatus(str, enum.Enum):
    """Where a job is in its life; statuses are only ever appended."""

    REQUESTED = "requested"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        """Whether this status ends the job."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class LogEntry:
    """One record of a job's logger."""

    time: float
    level: str
    message: str

    def __str__(self) -> str:
        return f"{self.level} {self.message}"


class _Keeper(logging.Handler):
    def __init__(self, entries: deque[LogEntry]) -> None:
        super().__init__(logging.DEBUG)
        self.entries = entries

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:
            msg = str(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            msg += "\n" + "".join(tb.format_exception(*record.exc_info)).rstrip()
        self.entries.append(LogEntry(record.created, record.levelname, msg))


_jobs_logger = logging.getLogger("livestack_nb.jobs")


class _JobLogger(logging.Logger):
    """A job's logger: what its processor logs once the job is cancelled raises
    :class:`JobCancelled` instead (a call into the job, where a cancel reaches it).

    Not registered with logging's manager: a long session starts many jobs and
    registered loggers are never freed. Records still propagate to
    "livestack_nb.jobs" so users' logging configuration sees them.
    """

    def __init__(self, job: LiveJob) -> None:
        super().__init__(f"livestack_nb.jobs.{job.spec.name}.{job.job_id}", logging.DEBUG)
        self.parent = _jobs_logger
        self.addHandler(_Keeper(job._log_entries))
        self._job = weakref.ref(job)  # not a cycle: a forgotten job is freed without the gc

    def handle(self, record: logging.LogRecord) -> None:
        # Only the processor's own records: livestack-nb logs to the job while
        # it cancels it (a failing subscriber, say), and raising there would
        # stop the cancel half way.
        job = self._job()
        if job is not None and not record.pathname.startswith(_PACKAGE_DIR):
            job._check_cancelled()
        super().handle(record)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


_ENDED = object()


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
        self._queued = 0  # values in the queues (the backlog feeders are held on)
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.cancelled = False
        self._activity = activity
        self._before_wait = before_wait
        self.streams: list[DataStream] = []  # the inputs, told when the reader waits (consumer_idle)
        self._blocked = 0  # feeders held by backpressure
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
            self._queued += n
            self._wake()
            if self._queued > MAX_BACKLOG and may_wait_for_room():
                self._blocked += 1
                try:
                    while self._queued > MAX_BACKLOG // 2 and not self.cancelled:
                        self._cond.wait(0.05)
                finally:
                    self._blocked -= 1

    @property
    def backlog(self) -> int:
        """Values queued or not yet read from the cursor's chunk (0: nothing left to read)."""
        c = self.chunk
        return self._queued + (0 if c is None else len(c.values) - self.index - 1)

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
            left = self._queued
            for q in self._queues.values():
                q.clear()
            self._queued = 0
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
            self._queued += rest
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
            self._queued -= len(chunk.values)
            if self._blocked:
                self._cond.notify_all()  # a feeder held by backpressure may go on
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
                    self._queued -= n
                    if self._blocked:
                        self._cond.notify_all()
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


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Done:
    """What ``emit`` returns: already done, and awaitable for async processors."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover


_DONE = _Done()


class TagReader:
    """Reads one input tag (or several, merged) of a job, sync or async.

    A value costs an index step and a yield: the lock is taken once per chunk
    (see :class:`Inbox`).
    """

    def __init__(self, job: LiveJob, tags: tuple[str, ...], merged: bool) -> None:
        for t in tags:
            job.spec._tag("input", t)
        self._job = job
        self._tags = tags
        self._merged = merged

    def read_batch(self, timeout: float | None = None) -> list[Any] | None:
        """Every value that has arrived (a sync processor's batch read), waiting for
        one up to ``timeout`` seconds (then ``[]``); ``None`` once the input ended.

        Merged readers get ``(tag, value)`` pairs. A processor that works on
        batches pays the hand-over once per batch instead of once per value.
        """
        r = self._job._need_inbox().take_all(self._tags, timeout)
        if r is _ENDED:
            return None
        if self._merged:
            return [(tag, v) for tag, c in r for v in c.values]
        return [v for _, c in r for v in c.values]

    def __iter__(self) -> Iterator[Any]:
        job = self._job
        inbox = job._need_inbox()
        tags, merged = self._tags, self._merged
        while True:
            chunk = inbox.next_chunk(tags)
            if chunk is _ENDED:
                return
            values, tag = chunk.values, inbox.tag
            n = len(values)
            i = inbox.index + 1
            while i < n:
                if inbox.cancelled:
                    raise job._cancellation()
                inbox.index = i
                yield (tag, values[i]) if merged else values[i]
                if inbox.chunk is not chunk:
                    break  # another reader moved the cursor
                i = inbox.index + 1

    async def __aiter__(self) -> AsyncIterator[Any]:
        job = self._job
        inbox = job._need_inbox()
        tags, merged = self._tags, self._merged
        while True:
            chunk = await inbox.anext_chunk(tags)
            if chunk is _ENDED:
                return
            values, tag = chunk.values, inbox.tag
            n = len(values)
            i = inbox.index + 1
            while i < n:
                if inbox.cancelled:
                    raise job._cancellation()
                inbox.index = i
                yield (tag, values[i]) if merged else values[i]
                if inbox.chunk is not chunk:
                    break
                i = inbox.index + 1


class Inputs:
    """``job.input``: iterate for the default tag, call for another, ``merge`` for several."""

    def __init__(self, job: LiveJob) -> None:
        self._ref = weakref.ref(job)  # not a cycle: see LiveJob.release

    @property
    def _job(self) -> LiveJob:
        return _alive(self._ref)

    def __call__(self, tag: str = DEFAULT) -> TagReader:
        return TagReader(self._job, (tag,), merged=False)

    def merge(self, *tags: str) -> TagReader:
        """Values of several tags as ``(tag, value)`` in arrival order (all tags if none given)."""
        return TagReader(self._job, tags or tuple(self._job.spec.in_tags), merged=True)

    def __iter__(self) -> Iterator[Any]:
        return iter(self())

    def __aiter__(self) -> AsyncIterator[Any]:
        return self().__aiter__()

    def read_batch(self, timeout: float | None = None) -> list[Any] | None:
        """The default tag's :meth:`TagReader.read_batch`."""
        return self().read_batch(timeout)


class OutputPort:
    """One output tag of a running job; ``emit`` validates and sends a value."""

    __slots__ = ("_check", "_exact", "_job", "_stream", "tag")

    def __init__(self, job: LiveJob, tag: str) -> None:
        self._job = job
        self.tag = tag
        self._check = job.spec._tag("output", tag)
        self._exact = self._check.cls or _NoValue  # values of exactly this class need no check
        self._stream = job._outputs[tag]

    def emit(self, value: Any) -> _Done:
        """Send ``value`` on this tag (``await`` it in async processors, or not)."""
        job = self._job
        if job._cancelled:
            raise job._cancellation()
        if value is None:
            return _DONE
        if type(value) is not self._exact:
            value = self._checked(value)
        stream = self._stream
        if stream._closed:
            raise JobClosedError(f"job {job.job_id}: output {self.tag!r} has ended; it takes no more values")
        if job._emitted_last is not stream:
            job._emitted_last = _switched(job._emitted_last, stream)
        inbox = job._inbox
        chunk = None if inbox is None else inbox.chunk
        if chunk is None:
            stream.append(value)
        else:  # lineage: the value the processor read last
            stream.append_child(value, chunk.stream_id, chunk.seq0 + inbox.index)  # type: ignore[union-attr]
        return _DONE

    def _checked(self, value: Any) -> Any:
        job = self._job
        try:
            return self._check.check(value, spec=job.spec.name, tag=self.tag, side="output")
        except DataValidationError as e:
            job.env._validation_failed(job, e)
            raise

    @property
    def stream(self) -> DataStream:
        return self._stream


def _alive(ref: weakref.ReferenceType[LiveJob]) -> LiveJob:
    job = ref()
    if job is None:
        raise LivestackError("the job of this input or output no longer exists")
    return job


class Outputs:
    """``job.output``: call with a tag for its port; ``emit`` is the default tag's."""

    def __init__(self, job: LiveJob) -> None:
        self._ref = weakref.ref(job)  # not a cycle: see LiveJob.release
        self._ports: dict[str, OutputPort] = {}

    def __call__(self, tag: str = DEFAULT) -> OutputPort:
        port = self._ports.get(tag)
        if port is None:
            port = self._ports[tag] = OutputPort(_alive(self._ref), tag)
        return port

    def emit(self, value: Any) -> _Done:
        """Emit on the default output tag."""
        return self(DEFAULT).emit(value)


class LiveJob:
    """A running job, as its processor sees it.

    Attributes
    ----------
    job_id, spec, options:
        Identity, recipe and validated options model.
    logger:
        A logger whose records are kept with the job (``handle.logs``).
    graph:
        The flow graph this job runs in (empty outside a flow).
    input, output:
        By tag: ``for x in job.input``, ``job.input("dough")``,
        ``job.input.merge(...)``; ``job.output("pizza").emit(x)``.
    storage, env:
        The env's storage provider and the env itself.
    worker_params:
        The parameters of the worker definition running the job (the same
        for all its jobs; distinct from ``options``, which are the job's).
    """

    def __init__(
        self,
        spec: JobSpec,
        env: LiveEnv,
        options: BaseModel,
        *,
        job_id: str,
        graph: Graph | None = None,
        parent_id: str | None = None,
        label: str | None = None,
        input_streams: dict[str, DataStream],
        output_streams: dict[str, DataStream],
        owned_inputs: Iterable[str] = (),
    ) -> None:
        self.spec = spec
        self.env = env
        self.options = options
        self.job_id = job_id
        self.graph = graph or Graph()
        self.parent_id = parent_id
        self.label = label or spec.name
        # The parameters of the worker running the job (its definition's
        # ``worker_params``; Livestack's ``instanceParams``), set when a worker takes it.
        self.worker_params: Any = {}
        self._log_entries: deque[LogEntry] = deque(maxlen=2000)
        self.logger: logging.Logger = _JobLogger(self)
        self._inputs = input_streams
        self._outputs = output_streams
        for out in output_streams.values():
            out.on_subscriber_error = self._subscriber_failed
        # Inputs this job created itself; shared ones belong to an upstream job
        # or a flow and are never ended from here.
        self._owned_inputs = [input_streams[t] for t in owned_inputs]
        self.input = Inputs(self)
        self.output = Outputs(self)
        self._lock = threading.Lock()
        self._status = JobStatus.REQUESTED
        self._statuses: list[tuple[JobStatus, float]] = [(JobStatus.REQUESTED, now())]
        self._done = threading.Event()
        self._callbacks: list[Callable[[LiveJob], None]] = []
        self.error: BaseException | None = None
        self.traceback: str | None = None
        self._cancelled = False
        # The thread running a sync processor or the loop of an async one: a
        # cancel reaches the processor at its next call into the job there.
        self._processor_thread: int | None = None
        self.finished = False  # status.done, as a plain attribute for hot paths
        self._inbox: Inbox | None = None
        # The input fed last and the output emitted to last: values handed over one
        # at a time to another tag push these first, so arrival order across tags holds.
        self._fed_last: DataStream | None = None
        self._emitted_last: DataStream | None = None
        self.activity: Activity | None = None
        self.stepper: Stepper | None = None  # a run started with step=True (livestack_nb.step)
        self.on_cancel: list[Callable[[], None]] = []
        self._state: KeyedState | None = None
        self.failure_note: str | None = None
        self.children: list[str] = []
        # For a spec that runs a child job per value for the nodes of its graph
        # (parallel attempts): each node's latest job, which the graph shows.
        self._node_jobs: dict[str, str] = {}
        # The dead-letter stream (see livestack_nb.dead_letter), set by the env
        # when the job's policy is on_error="dead_letter".
        self.errors: DataStream | None = None
        self.stored = False  # read back from a vault: nothing runs it in this process
        # Set when the job's end could not be made durable; wait() raises it.
        self.record_error: LivestackError | None = None
        # Its statuses are recorded by another process (a job run by a worker
        # process, or handed over to one): this one records none of them.
        self.detached = False

    def restore(self, statuses: Iterable[Any], children: Iterable[str]) -> None:
        """Take the status history recorded in a vault (a job of an earlier process).

        ``statuses`` are :class:`~livestack_nb.vault.StatusRecord` s, oldest
        first. The job runs nowhere here: its status only says what was last
        recorded, and nothing it does is written back.
        """
        self.stored = True
        history = [(JobStatus(r.status), r.time) for r in statuses] or self._statuses
        self._statuses = history
        self._status = history[-1][0]
        self.finished = self._status.done
        self.children = list(children)
        if self._status is JobStatus.FAILED:
            detail = next((r.detail for r in reversed(list(statuses)) if r.detail), None)
            self.traceback = detail
            last = detail.strip().splitlines()[-1] if detail else "no traceback was recorded"
            self.error = LivestackError(last)
            self.failure_note = "as recorded in the vault"
        if self._status.done:
            self._done.set()

    def release(self) -> None:
        """Drop the links only a running job needs, once it has ended and its env forgot it.

        A job, its streams, its processor's runner and its flow's run refer to
        one another while it runs; left so, a forgotten job would only be
        freed by Python's cycle collector, which runs too rarely to keep a
        loop of thousands of runs bounded. After this, what nothing else
        holds is freed at once; a handle still held (a widget showing the job)
        keeps its statuses, logs and output streams.
        """
        if not self._status.done or self._processor_thread not in (None, threading.get_ident()):
            return  # a cancelled processor still runs its own code: it keeps what it uses
        self._callbacks.clear()
        self.on_cancel.clear()
        self.output._ports.clear()
        self._fed_last = self._emitted_last = None
        inbox = self._inbox
        if inbox is not None:  # it refers to the job (before_wait) and to its inputs
            inbox.streams = []
            inbox._before_wait = None
            self._inbox = None
        for out in self._outputs.values():
            if out.on_subscriber_error == self._subscriber_failed:
                out.on_subscriber_error = None

    # -- worker side ---------------------------------------------------------

    @property
    def storage(self) -> StorageProvider:
        """The env's storage provider (large values by reference)."""
        return self.env.storage

    def invoke(
        self, spec: JobSpec, input: Any = None, *, options: Any = None, inputs: Iterable[Any] | None = None
    ) -> Any:
        """Run a child job of ``spec`` on ``input`` (or every value of ``inputs``)
        and return its default output's values; lineage records the child.

        In an ``async`` processor this returns an awaitable of that list.
        """
        if self._cancelled:
            raise self._cancellation()
        values = list(inputs) if inputs is not None else ([] if input is None else [input])
        collected: list[Any] = []
        out_tag = spec.sole_tag("output", "invoke()")

        def collect(child: LiveJob) -> None:  # before it runs: nothing it emits is missed
            child._outputs[out_tag].add_listener(collected.extend)

        child = self.env._start(spec, options, parent_id=self.job_id, before_launch=collect)
        self.children.append(child.job_id)
        self.logger.debug("invoked %s job %s", spec.name, child.job_id)
        handle = JobHandle(child)
        handle.feed_many(values)
        handle.end()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            handle.wait()
            return collected

        async def wait_async() -> list[Any]:
            await handle
            return collected

        return wait_async()

    @property
    def _parent(self) -> tuple[str, int] | None:
        """The datapoint the processor read last, ``(stream id, seq)`` (the lineage of
        what it emits; the input of a dead letter); None before it read any."""
        inbox = self._inbox
        chunk = None if inbox is None else inbox.chunk
        if chunk is None or inbox is None or inbox.index < 0:
            return None
        return (chunk.stream_id, chunk.seq0 + inbox.index)

    def _before_wait(self) -> bool:
        """The processor is about to wait for input: push what it emitted one by one
        and pull what was fed one by one; whether anything was pulled."""
        for out in self._outputs.values():
            if out._buf:
                out.flush()
        pulled = False
        for stream in self._inputs.values():
            if stream._buf:
                stream.flush()
                pulled = True
        return pulled

    def _need_inbox(self) -> Inbox:
        if self._inbox is None:
            raise LivestackError(
                f"job {self.job_id} of spec {self.spec.name!r} is not a processor: its input is read for it"
            )
        return self._inbox

    # -- lifecycle ------------------------------------------------------------

    @property
    def status(self) -> JobStatus:
        return self._status

    @property
    def state(self) -> KeyedState:
        """Per-key state of this job's spec (its node in a flow), kept across jobs
        and, with a durable vault, across restarts: see :mod:`livestack_nb.keys`."""
        if self._state is None:
            from .keys import state_of

            self._state = state_of(self)
        return self._state

    def _set_status(self, status: JobStatus) -> bool:
        with self._lock:
            if self._status.done or self._status is status:
                return False
            self._status = status
            self._statuses.append((status, now()))
            self.finished = status.done
        if status.done and self._state is not None:
            self._state.checkpoint(self.logger)  # recorded before the end is: wait() then finds it
        self.env._status_changed(self, status)
        if status.done:
            self._done.set()
            for cb in list(self._callbacks):
                try:
                    cb(self)
                except Exception:
                    logging.getLogger("livestack_nb").exception("job callback failed")
        return True

    def add_done_callback(self, cb: Callable[[LiveJob], None]) -> None:
        """Call ``cb(job)`` once the job has ended (now, if it has)."""
        with self._lock:
            if not self._status.done:
                self._callbacks.append(cb)
                return
        cb(self)

    def _subscriber_failed(self, stream: DataStream) -> None:
        # A reader's error is not the job's: it goes on, the reader is dropped.
        self.logger.warning(
            "a subscriber of output %r raised; it is unsubscribed and the job goes on",
            stream.tag,
            exc_info=True,
        )

    def mark_running(self) -> None:
        self._set_status(JobStatus.RUNNING)

    def _retaken(self, at: float) -> None:
        """A job run by worker processes was taken over by another worker at ``at``
        (its recorded time): ``statuses`` shows one ``running`` per run, as the vault
        records them, not only the first."""
        with self._lock:
            if self._status is JobStatus.RUNNING:
                self._statuses.append((JobStatus.RUNNING, at))

    def complete(self) -> None:
        """Normal end: outputs end (and inputs: feeding a finished job is an error)."""
        for s in self._owned_inputs:
            s.end()
        for s in self._outputs.values():
            s.end()
        self._set_status(JobStatus.COMPLETED)

    def fail(self, exc: BaseException) -> None:
        """The job failed: keep the traceback, end outputs so nothing waits."""
        if self._status.done or self._cancelled:
            return  # a failure on the way out of a cancel is not the job's end
        self.error = exc
        self.traceback = "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
        self.logger.error("job failed: %s: %s", type(exc).__name__, exc)
        failure = self.failure()
        for s in self._owned_inputs:
            s.end()
        for s in self._outputs.values():
            s.end(failure)
        self._set_status(JobStatus.FAILED)

    def failure(self) -> JobFailed:
        exc = self.error
        where = f" ({self.failure_note})" if self.failure_note else ""
        err = JobFailed(
            f"job {self.job_id} of spec {self.spec.name!r} failed{where}: {type(exc).__name__}: {exc}",
            job_id=self.job_id,
            traceback=self.traceback,
        )
        err.__cause__ = exc
        return err

    def _cancellation(self) -> JobCancelled:
        return JobCancelled(f"job {self.job_id} of spec {self.spec.name!r} was cancelled")

    def _check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if the job was cancelled and this is its processor's thread."""
        if self._cancelled and self._processor_thread == threading.get_ident():
            raise self._cancellation()

    def cancel(self) -> None:
        if self._status.done:
            return
        self._cancelled = True
        if self._inbox is not None:
            self._inbox.cancel()
        for cb in self.on_cancel:
            cb()
        for s in self._owned_inputs:
            s.end()
        for s in self._outputs.values():
            s.end()
        self._set_status(JobStatus.CANCELLED)

    def __repr__(self) -> str:
        return f"<LiveJob {self.job_id} {self.spec.name!r} {self._status.value}>"


class InputFeeder:
    """The caller's side of one input tag: ``feed``, ``feed_many``, ``end``.

    ``feed`` costs a type test and an append to the stream's buffer (see
    :mod:`livestack_nb.stream`); ``feed_many`` pushes its chunks through the
    same stream after what was buffered, so values keep the order they were
    given in, whichever call gave them.
    """

    def __init__(self, job: LiveJob, tag: str) -> None:
        self._job = job
        self.tag = tag
        self._type = job.spec._tag("input", tag)
        self._exact = self._type.cls or _NoValue  # values of exactly this class need no check
        self._spec_name = job.spec.name
        self.stream = job._inputs[tag]
        self._buf = self.stream.edge

    def feed(self, value: Any) -> None:
        """Validate ``value`` against the tag's type and send it to the job.

        Raises :class:`DataValidationError` at once if it does not fit,
        :class:`JobFailed` if the job has failed and :class:`JobClosedError` if
        this input has ended otherwise.
        """
        stream = self.stream
        if stream._closed:
            raise self._closed()
        if type(value) is not self._exact:
            value = self._check(value)
        if self._job._fed_last is not stream:
            self._job._fed_last = _switched(self._job._fed_last, stream)
        if stream._buf_parent is not None:
            stream.append(value)
            return
        buf = self._buf  # stream.append, inlined: the per-value cost is this append
        buf.append(value)
        n = len(buf)
        if n == 1 or n >= MAX_CHUNK:
            stream.appended(n)

    def _check(self, value: Any) -> Any:
        try:
            return self._type.check(value, spec=self._spec_name, tag=self.tag, side="input")
        except DataValidationError as e:
            self._job.env._validation_failed(self._job, e)
            raise

    def feed_many(self, values: Iterable[Any]) -> None:
        """Feed several values (checked first: a bad one stops before anything is sent)."""
        if self.stream._closed:
            raise self._closed()
        try:
            vals = self._type.check_many(as_list(values), spec=self._spec_name, tag=self.tag, side="input")
        except DataValidationError as e:
            self._job.env._validation_failed(self._job, e)
            raise
        if self._job._fed_last is not self.stream:
            self._job._fed_last = _switched(self._job._fed_last, self.stream)
        try:
            for i in range(0, len(vals), MAX_CHUNK):
                self.stream.push(vals[i : i + MAX_CHUNK] if len(vals) > MAX_CHUNK else vals)
        except JobClosedError:
            raise self._closed() from None

    def feed_from(self, values: Iterable[Any], *, end: bool = False, chunk: int = 1000) -> Feeding:
        """Feed ``values`` from a background thread and return at once (see :mod:`livestack_nb.feeding`)."""
        from .feeding import start_feeding

        return start_feeding(
            self.stream, self.feed_many, values, tag=self.tag, end=self.end if end else None, chunk=chunk
        )

    def _closed(self) -> LivestackError:
        """The error of a feed into an input that has ended: :class:`JobFailed` when
        the job failed (said at the first feed after it, not values later)."""
        job = self._job
        if job.status is JobStatus.FAILED:
            failed = job.failure()
            err = JobFailed(
                f"{failed}; its input {self.tag!r} takes no more values",
                job_id=job.job_id,
                traceback=job.traceback,
            )
            err.__cause__ = job.error
            return err
        if job.stored and not job.status.done:
            return JobClosedError(
                f"job {job.job_id} of spec {self._spec_name!r} was recorded {job.status.value} by "
                "another process, and runs there reading its input from that process's memory: it "
                "cannot be fed from here. Feed it where it was started, or run it on a Redis vault "
                "(autostart=False and worker processes), where any process can feed a job by id"
            )
        return JobClosedError(
            f"job {job.job_id} of spec {self._spec_name!r}: input {self.tag!r} has ended "
            f"({job.status.value}); it takes no more values"
        )

    def end(self) -> None:
        """No more values on this tag (what was fed one by one goes first)."""
        self.stream.end()


class JobHandle(Stepping):
    """A job as its caller sees it: returned by ``spec.start()``.

    Examples
    --------
    >>> job = bake.start(options={"spice": 2})      # doctest: +SKIP
    >>> job.feed({"pizza": "margherita"}); job.end()  # doctest: +SKIP
    >>> job.wait(timeout=10); job.result()          # doctest: +SKIP
    """

    def __init__(self, job: LiveJob) -> None:
        self._job = job
        self._feeders: dict[str, InputFeeder] = {}
        self._default: InputFeeder | None = None

    @property
    def job_id(self) -> str:
        return self._job.job_id

    @property
    def spec(self) -> JobSpec:
        return self._job.spec

    @property
    def options(self) -> BaseModel:
        return self._job.options

    @property
    def graph(self) -> Graph:
        return self._job.graph

    @property
    def node_jobs(self) -> dict[str, str]:
        """The id of the job running each node of :attr:`graph`, by node: for a flow
        run its jobs; for a race (``ls.ParallelAttempts``) each attempt's latest job."""
        job = self._job
        ids = {n.id: n.job_id for n in job.graph.nodes if n.job_id is not None}
        ids.update(job._node_jobs)
        return ids

    @property
    def env(self) -> LiveEnv:
        """The env the job runs in (where the jobs of its flow graph are found)."""
        return self._job.env

    @property
    def status(self) -> JobStatus:
        """The latest status."""
        return self._job.status

    @property
    def statuses(self) -> list[tuple[JobStatus, float]]:
        """Every status the job went through, with its time (append-only)."""
        return list(self._job._statuses)

    @property
    def error(self) -> BaseException | None:
        """The exception that failed the job, if it failed."""
        return self._job.error

    @property
    def traceback(self) -> str | None:
        """The formatted traceback of the failure, if it failed."""
        return self._job.traceback

    @property
    def logs(self) -> list[LogEntry]:
        """The records of the job's logger."""
        return list(self._job._log_entries)

    @property
    def done(self) -> bool:
        return self._job.status.done

    def input(self, tag: str = DEFAULT) -> InputFeeder:
        """The input ``tag``, to ``feed`` or ``end``."""
        feeder = self._feeders.get(tag)
        if feeder is None:
            feeder = self._feeders[tag] = InputFeeder(self._job, tag)
        return feeder

    def feed(self, value: Any) -> None:
        """Feed one value to the default input (validated at once).

        The default input is the tag ``"default"``, or the only input there is
        (a flow with one exposed input). As fast per value as ``feed_many``,
        within a small factor: values are gathered into chunks under the hood
        and pushed within a few milliseconds (at once on ``end()``).
        """
        feeder = self._default
        if feeder is None:
            feeder = self._default = self.input(self.spec.sole_tag("input", "feed()"))
        feeder.feed(value)

    def feed_many(self, values: Iterable[Any]) -> None:
        """Feed several values to the default input (as :meth:`feed`)."""
        self.input(self.spec.sole_tag("input", "feed_many()")).feed_many(values)

    def feed_from(self, values: Iterable[Any], *, end: bool = False, chunk: int = 1000) -> Feeding:
        """Feed ``values`` to the default input from a background thread; returns at once.

        The returned :class:`~livestack_nb.feeding.Feeding` shows progress
        (``count``, ``rate``, ``eta``), can be cancelled and ``wait()``-ed
        (raising what stopped it); ``end=True`` ends the input when the
        values are used up. The JobPanel shows it with a cancel button.
        """
        return self.input(DEFAULT).feed_from(values, end=end, chunk=chunk)

    def end(self) -> None:
        """No more input on any tag; the job finishes what it has."""
        for s in self._job._inputs.values():
            s.end()

    def output(self, tag: str | None = None) -> DataStream:
        """The output stream of ``tag``: by default ``"default"``, or the only output there
        is (``"errors"``: the dead letters, see :attr:`errors`)."""
        job = self._job
        if tag is None:
            tag = job.spec.sole_tag("output", "output()")
        if tag not in job.spec.out_tags and job.errors is not None and job._outputs.get(tag) is job.errors:
            return job.errors
        job.spec._tag("output", tag)
        return job._outputs[tag]

    @property
    def errors(self) -> DataStream | None:
        """The job's dead letters (``ls.DeadLetter``: value, error, traceback), or ``None``.

        A job whose spec (or flow) has ``on_error="dead_letter"`` sends each
        value its processor could not process here, and goes on. A flow run's
        stream holds the dead letters of all its jobs.
        """
        return self._job.errors

    def cancel(self) -> None:
        """Stop the job: its input and outputs end, status cancelled, at once.

        A processor still running gets :class:`~livestack_nb.JobCancelled` at
        its next call into the job (reading input, emitting, logging); one busy
        in its own code runs on until then, or until it returns, holding its
        thread (its job's logs say so; see ``worker.stats.busy_after_cancel``).
        Python cannot stop a thread from outside.
        """
        self._job.cancel()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the job ends.

        Raises
        ------
        JobFailed
            The job failed; ``__cause__`` is the original exception.
        LivestackError
            The env's durable vault could not write what the job did.
        WaitTimeout
            ``timeout`` seconds passed first (the job goes on).
        """
        job = self._job
        if job.stored and not job._done.is_set():
            raise LivestackError(
                f"job {self.job_id} of spec {self.spec.name!r} was last recorded {self.status.value} "
                "by another process and does not run in this one; there is nothing to wait for "
                "(if that process was killed, the job will never end)"
            )
        if not job._done.wait(timeout):
            raise WaitTimeout(
                f"job {self.job_id} of spec {self.spec.name!r} still {self.status.value} after {timeout}s"
            )
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._job.status is JobStatus.FAILED:
            raise self._job.failure()
        if self._job.record_error is not None:
            raise self._job.record_error

    def __await__(self) -> Generator[Any, None, None]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def wake(_: LiveJob) -> None:
            loop.call_soon_threadsafe(_resolve, fut)

        self._job.add_done_callback(wake)
        yield from fut.__await__()
        self._raise_if_failed()

    def result(self, timeout: float | None = None, *, last: int | None = None) -> list[Any]:
        """Wait, then return the default output's values (all, or the ``last`` n; see
        :meth:`DataStream.values`)."""
        self.wait(timeout)
        return self.output().values(last)

    def _collect(self, tag: str = DEFAULT) -> list[Any]:
        """A list that receives every value of output ``tag`` from now on."""
        out: list[Any] = []
        self._job._outputs[tag].add_listener(out.extend)
        return out

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def __repr__(self) -> str:
        return f"<JobHandle {self.job_id} {self.spec.name!r} {self.status.value}>"
