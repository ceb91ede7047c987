"""The kitchen staff: who runs a spec's jobs, how many at once, and what happens
when a processor raises.

Map and flat-map specs are run *inline*: a chunk of input goes through the
function in one loop, and in a flow the output is handed straight to the next
map spec on the same thread (the fused path: no per-event hop through a queue,
a thread or asyncio). Values fed from outside are drained on the worker's
threads, so the feeding cell returns at once. Processor specs (``job:
LiveJob``) hold a worker thread for their whole life (or run as a task on the
env's loop when ``async``); ``concurrency`` bounds how many run at once.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice, repeat
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from . import dead_letter
from ._interrupt import held_interrupts
from .dead_letter import ERRORS, check_on_error
from .errors import DataValidationError, JobCancelled, LivestackError
from .job import MAX_BACKLOG, Inbox, LiveJob, may_wait_for_room
from .slots import Slots
from .spec import DEFAULT, JobSpec, describe_processor
from .stream import MAX_CHUNK, Chunk

if TYPE_CHECKING:
    from .env import LiveEnv

__all__ = ["LiveWorker", "LiveWorkerDef", "WorkerStats"]

log = logging.getLogger("livestack_nb")


class LiveWorkerDef:
    """How a spec is cooked: its processor and its worker's policy.

    Made by ``@job_spec`` or ``spec.define_worker(...)``; see there for the
    parameters. A separate worker process can define the worker of a spec
    that a notebook only declares.
    """

    def __init__(
        self,
        spec: JobSpec,
        processor: Callable[..., Any],
        *,
        concurrency: int = 8,
        init: Callable[..., Any] | None = None,
        retries: int = 0,
        retry_backoff: float = 0.05,
        on_error: str = "fail",
        worker_params: Mapping[str, Any] | BaseModel | None = None,
    ) -> None:
        where = f"worker of spec {spec.name!r}"
        if not isinstance(concurrency, int) or concurrency < 1:
            raise LivestackError(f"{where}: concurrency must be an int >= 1, not {concurrency!r}")
        if not isinstance(retries, int) or retries < 0:
            raise LivestackError(f"{where}: retries must be an int >= 0, not {retries!r}")
        if retry_backoff < 0:
            raise LivestackError(f"{where}: retry_backoff must be >= 0, not {retry_backoff!r}")
        check_on_error(on_error, where)
        if on_error == "dead_letter" and ERRORS in spec.out_tags:
            raise LivestackError(
                f"{where}: on_error='dead_letter' sends failing values to the output tag {ERRORS!r}, "
                f"but the spec has an output tag of that name itself; rename it"
            )
        if init is not None and not callable(init):
            raise LivestackError(f"{where}: init must be callable, not {init!r}")
        if worker_params is not None and not isinstance(worker_params, (Mapping, BaseModel)):
            raise LivestackError(
                f"{where}: worker_params must be a dict or a pydantic model, "
                f"not {type(worker_params).__name__}"
            )
        info = describe_processor(processor)
        if info["form"] != "processor" and (len(spec.in_tags) != 1 or DEFAULT not in spec.in_tags):
            raise LivestackError(
                f"{where}: a map or flat-map processor needs a spec with only the 'default' "
                f"input, but it has {sorted(spec.in_tags)}; take 'job: LiveJob' instead"
            )
        self.spec = spec
        self.processor = processor
        self.concurrency = concurrency
        self.init = init
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.on_error = on_error
        self.form: str = info["form"]
        self.is_async: bool = info["is_async"]
        self.takes_options: bool = info["takes_options"]
        self.takes_worker_params: bool = info["takes_worker_params"]
        self.worker_params: Mapping[str, Any] | BaseModel = (
            dict(worker_params) if isinstance(worker_params, Mapping) else worker_params or {}
        )

    def with_params(self, **params: Any) -> LiveWorkerDef:
        """The same definition with ``params`` added to its worker parameters (a worker
        process started with ``--param key=value``)."""
        if isinstance(self.worker_params, BaseModel):
            merged: Mapping[str, Any] | BaseModel = self.worker_params.model_copy(update=params)
        else:
            merged = {**self.worker_params, **params}
        new = copy.copy(self)
        new.worker_params = merged
        return new

    def __repr__(self) -> str:
        kind = ("async " if self.is_async else "") + self.form
        return f"<LiveWorkerDef {self.spec.name!r} {kind} concurrency={self.concurrency}>"


@dataclass
class WorkerStats:
    """What a worker has done so far.

    ``dead_letters`` counts values sent to a job's errors stream
    (``on_error="dead_letter"``); ``busy_after_cancel`` counts processors of cancelled jobs that are still
    running their own code: each holds a thread, which no other job gets until
    it returns (Python cannot stop a thread; see :meth:`JobHandle.cancel`).
    """

    jobs_started: int = 0
    jobs_completed: int = 0
    jobs_failed: int = 0
    jobs_cancelled: int = 0
    retries: int = 0
    skipped: int = 0
    dead_letters: int = 0
    busy_after_cancel: int = 0

    @property
    def running(self) -> int:
        return self.jobs_started - self.jobs_completed - self.jobs_failed - self.jobs_cancelled


class _Failed(Exception):
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class _Skipped(Exception):
    """A datapoint is dropped by ``on_error="skip"``."""


_SKIP = object()
FLAT_FLUSH = 0.05  # seconds a generator's yields may be gathered before they are pushed
SLOW_YIELD = 0.01  # a yield that took this long is pushed at once
SLOW_MAP = 0.02  # a map call that took this long (on average over a slice) is pushed at once


def _follows(a: Chunk, b: Chunk) -> bool:
    """Whether chunk ``b`` continues chunk ``a`` (same stream, next seq, same lineage kind)."""
    return (
        a.stream_id == b.stream_id
        and a.seq0 + len(a.values) == b.seq0
        and a.parent_stream == b.parent_stream
        and (a.parent_seqs is None) == (b.parent_seqs is None)
    )


class LiveWorker:
    """Runs the jobs of one spec in this process; started by the env when needed.

    Attributes
    ----------
    definition:
        The :class:`LiveWorkerDef`.
    state:
        A dict for the ``init`` hook to keep what jobs share (a loaded model).
    stats:
        :class:`WorkerStats`.
    slots:
        The :class:`~livestack_nb.slots.Slots` its map and flat-map jobs hold.
    """

    def __init__(self, definition: LiveWorkerDef, env: LiveEnv) -> None:
        self.definition = definition
        self.spec = definition.spec
        self.env = env
        self.state: dict[str, Any] = {}
        self.stats = WorkerStats()
        self._executor = _Pool(definition.concurrency, f"livestack-{definition.spec.name}")
        self._init_lock = threading.Lock()
        self._init_done = definition.init is None
        self._jobs: set[LiveJob] = set()
        self._jobs_lock = threading.Lock()
        self._busy: dict[LiveJob, float] = {}  # cancelled, processor still running: since when
        self._accepting = True
        self._semaphore: asyncio.Semaphore | None = None
        # Map and flat-map jobs hold one from launch to end (see livestack_nb.slots).
        self.slots = Slots(definition.concurrency)

    # -- setting jobs up ------------------------------------------------------

    def attach(self, job: LiveJob) -> Callable[[], None]:
        """Connect ``job``'s inputs to how this worker runs it; return its launcher.

        Input that arrives before the launch waits, so a flow can wire all its
        jobs before any of them starts.
        """
        if not self._accepting:
            raise LivestackError(f"the worker of spec {self.spec.name!r} is stopped")
        with self._jobs_lock:
            self._jobs.add(job)
        job.add_done_callback(self._job_done)
        d = self.definition
        job.worker_params = d.worker_params
        if d.form != "processor" and not d.is_async:
            return _InlineRunner(self, job).launch
        inbox = job._inbox = Inbox(job.spec.in_tags, job.activity, job._before_wait)
        inbox.streams = list(job._inputs.values())
        for tag, stream in job._inputs.items():
            stream.listen_chunks(partial(inbox.put, tag), partial(_end_tag, inbox, tag))
        if d.is_async:
            return partial(self._launch_async, job)
        job.on_cancel.append(partial(self._cancelled_while_busy, job))
        return partial(self._launch_sync, job)

    def _job_done(self, job: LiveJob) -> None:
        with self._jobs_lock:
            self._jobs.discard(job)
        st = job.status.value
        if st == "completed":
            self.stats.jobs_completed += 1
        elif st == "failed":
            self.stats.jobs_failed += 1
        else:
            self.stats.jobs_cancelled += 1
        self.slots.release(job)  # after the count: the job it hands the slot to starts now

    def _started(self, job: LiveJob) -> bool:
        if job.status.done:
            return False
        self.stats.jobs_started += 1
        job.mark_running()
        return True

    def ensure_init(self) -> None:
        """Run the ``init`` hook once, before this worker's first job."""
        if self._init_done:
            return
        with self._init_lock:
            if self._init_done:
                return
            init = self.definition.init
            assert init is not None
            try:
                takes = len(inspect.signature(init).parameters) > 0
            except (TypeError, ValueError):
                takes = False
            init(self) if takes else init()
            self._init_done = True

    def call(self, job: LiveJob) -> Callable[[Any], Any]:
        """The processor as a one-argument function for ``job`` (options bound)."""
        d = self.definition
        fn = d.processor
        if d.takes_worker_params:
            fn = partial(fn, worker_params=d.worker_params)
        if d.takes_options:
            return partial(fn, options=job.options)
        return fn

    def retry_delay(self, attempt: int) -> float:
        return float(self.definition.retry_backoff * (2 ** (attempt - 1)))

    # -- sync processors ------------------------------------------------------

    def _launch_sync(self, job: LiveJob) -> None:
        with self._jobs_lock:
            held = len(self._busy)
        size = self.definition.concurrency
        if held and self.stats.running + held >= size:
            job.logger.info(
                "waiting for a thread: %d of the worker's %d are held by processors of cancelled "
                "jobs that have not returned",
                held,
                size,
            )
        self._executor.submit(self._run_sync, job)

    def _cancelled_while_busy(self, job: LiveJob) -> None:
        """On cancel: a processor running its own code (not waiting for input) is told at
        its next call into the job; until then it holds its thread. Say so, and count it."""
        inbox = job._inbox
        with self._jobs_lock:
            thread = job._processor_thread
            if thread is None or thread == threading.get_ident() or (inbox is not None and inbox.waiting):
                return  # not running, cancelling itself, or waiting for input: it unwinds at once
            if job in self._busy:
                return  # cancelled twice (the user and env.close at once): counted once
            self._busy[job] = time.monotonic()
            self.stats.busy_after_cancel += 1
            job.logger.warning(
                "cancelled while its processor runs its own code: it gets JobCancelled at its next "
                "input read, emit or log; until then, or until it returns, it keeps its thread "
                "(Python cannot stop a thread)"
            )

    def _returned(self, job: LiveJob) -> None:
        """The processor of ``job`` returned: its thread is free."""
        with self._jobs_lock:
            job._processor_thread = None
            since = self._busy.pop(job, None)
            if since is None:
                return
            self.stats.busy_after_cancel -= 1
            job.logger.info(
                "its processor returned %.1f s after the cancel; its thread is free", time.monotonic() - since
            )

    def _run_sync(self, job: LiveJob) -> None:
        if not self._started(job):
            return
        inbox = job._inbox
        assert inbox is not None
        d = self.definition
        attempt, last = 0, None
        job._processor_thread = threading.get_ident()
        try:
            self.ensure_init()
            while True:
                try:
                    _emit_returned(job, d.processor(job))
                    break
                except (JobCancelled, DataValidationError):
                    raise
                except Exception as e:
                    attempt, last = _count_attempt(inbox, attempt, last)
                    if not self._may_retry(job, e, attempt, inbox):
                        raise
                    time.sleep(self.retry_delay(attempt))
        except JobCancelled:
            pass
        except BaseException as e:
            job.fail(e)
        else:
            job.complete()
        finally:
            inbox.close()
            self._returned(job)

    def _may_retry(self, job: LiveJob, e: Exception, attempt: int, inbox: Inbox) -> bool:
        """Decide what a raising processor gets: a retry of the datapoint, a skip, or failure."""
        d = self.definition
        if attempt <= d.retries:
            self.stats.retries += 1
            job.logger.warning("attempt %d failed (%s: %s); retrying", attempt, type(e).__name__, e)
            inbox.requeue_current()
            return True
        if job.errors is not None and inbox.current:
            chunk, i = inbox.chunk, inbox.index
            assert chunk is not None  # (inbox.current says so)
            self.stats.dead_letters += 1
            dead_letter.send(job, inbox.tag, chunk.values[i], e, attempt, (chunk.stream_id, chunk.seq0 + i))
            inbox.skip_current()
            return True
        if d.on_error == "skip" and inbox.current:
            self.stats.skipped += 1
            job.logger.error("datapoint skipped after %d attempts: %s: %s", attempt, type(e).__name__, e)
            inbox.skip_current()
            return True
        return False

    # -- async processors and async maps -------------------------------------

    def _launch_async(self, job: LiveJob) -> None:
        fut = self.env.runtime.submit(self._run_async(job))

        def cancel() -> None:
            fut.cancel()

        job.on_cancel.append(cancel)

    async def _run_async(self, job: LiveJob) -> None:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.definition.concurrency)
        async with self._semaphore:
            if not self._started(job):
                return
            inbox = job._inbox
            assert inbox is not None
            job._processor_thread = threading.get_ident()  # the loop's: its logger checks a cancel
            try:
                self.ensure_init()
                if self.definition.form == "processor":
                    await self._async_processor(job, inbox)
                else:
                    await self._async_map(job)
            except (JobCancelled, asyncio.CancelledError):
                pass
            except BaseException as e:
                job.fail(e)
            else:
                job.complete()
            finally:
                inbox.close()
                job._processor_thread = None

    async def _async_processor(self, job: LiveJob, inbox: Inbox) -> None:
        fn = self.definition.processor
        attempt, last = 0, None
        while True:
            try:
                result = fn(job)
                if inspect.isasyncgen(result):
                    async for value in result:
                        job.output.emit(value)
                else:
                    _emit_returned(job, await result if inspect.isawaitable(result) else result)
                return
            except (JobCancelled, DataValidationError):
                raise
            except Exception as e:
                attempt, last = _count_attempt(inbox, attempt, last)
                if not self._may_retry(job, e, attempt, inbox):
                    raise
                await asyncio.sleep(self.retry_delay(attempt))

    async def _async_map(self, job: LiveJob) -> None:
        fn = self.call(job)
        flat = self.definition.form == "flatmap"
        emit = job.output.emit
        async for value in job.input:
            attempt = 0
            while True:
                try:
                    if flat:
                        results = [r async for r in fn(value)]
                    else:
                        results = [await fn(value)]
                    break
                except Exception as e:
                    attempt += 1
                    if attempt <= self.definition.retries:
                        self.stats.retries += 1
                        job.logger.warning(
                            "attempt %d failed (%s: %s); retrying", attempt, type(e).__name__, e
                        )
                        await asyncio.sleep(self.retry_delay(attempt))
                        continue
                    if job.errors is not None:
                        self.stats.dead_letters += 1
                        dead_letter.send(job, DEFAULT, value, e, attempt, job._parent)
                        results = []
                        break
                    if self.definition.on_error == "skip":
                        self.stats.skipped += 1
                        job.logger.error("datapoint skipped: %s: %s", type(e).__name__, e)
                        results = []
                        break
                    raise
            for r in results:
                emit(r)

    # -- stopping ---------------------------------------------------------------

    def running_jobs(self) -> list[LiveJob]:
        with self._jobs_lock:
            return [j for j in self._jobs if not j.status.done]

    def stop(self, timeout: float | None = 10.0, *, cancel: bool = False) -> None:
        """Stop taking jobs, let running ones finish (or cancel them), free the threads.

        Jobs still running after ``timeout`` seconds are cancelled.
        """
        self._accepting = False
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in self.running_jobs():
            if cancel:
                job.cancel()
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not job._done.wait(left):
                job.logger.warning("cancelled: the worker stopped")
                job.cancel()
        self._executor.shutdown()
        threads = self._executor.threads()
        for t in threads:
            left = 5.0 if deadline is None else max(0.1, deadline - time.monotonic())
            t.join(left)
            if t.is_alive():
                log.warning("a processor of spec %r did not return; its thread is left", self.spec.name)

    def __repr__(self) -> str:
        return f"<LiveWorker {self.spec.name!r} running={self.stats.running}>"


class _Pool:
    """At most ``size`` daemon threads running submitted calls.

    Daemon threads, unlike ``ThreadPoolExecutor``'s: the interpreter joins
    non-daemon threads *before* ``atexit`` runs, so a processor still waiting
    for input (or stuck in user code) would keep a kernel from ever exiting,
    and the env's own closing (which cancels jobs and flushes the vault) would
    never get to run. A thread is started whenever a call would otherwise wait
    for a busy one (up to ``size``). What a call raises is logged.
    """

    def __init__(self, size: int, prefix: str) -> None:
        self._size = size
        self._prefix = prefix
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._mutex = threading.RLock()  # entered as the lock itself: see _interrupt.py
        self._cond = threading.Condition(self._mutex)
        self._shut = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._mutex:
            if self._queued(fn, args):
                return
        # A thread counted but never started would hold its place for ever (with
        # concurrency=1, every later call would wait for it): it is counted and
        # started with a kernel interrupt held meanwhile.
        with held_interrupts():
            with self._mutex:
                if self._queued(fn, args):
                    return
                self._calls.append((fn, args))
                name = f"{self._prefix}_{len(self._threads)}"
                t = threading.Thread(target=self._serve, name=name, daemon=True)
                self._threads.append(t)
            t.start()

    def _queued(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
        """Queue the call if a thread will take it without a new one (the lock is held)."""
        if self._shut:
            raise RuntimeError(f"{self._prefix}: the worker has stopped")
        if self._idle > len(self._calls) or len(self._threads) >= self._size:
            self._calls.append((fn, args))
            self._cond.notify()
            return True
        return False

    def _serve(self) -> None:
        cond = self._cond
        while True:
            with self._mutex:
                while not self._calls and not self._shut:
                    self._idle += 1
                    try:
                        cond.wait()
                    finally:
                        self._idle -= 1
                if not self._calls:
                    return
                fn, args = self._calls.popleft()
            try:
                fn(*args)
            except BaseException:
                log.exception("%s: a call raised", self._prefix)
            del fn, args

    def shutdown(self) -> None:
        """Drop calls not yet started; threads end once their call returns."""
        with self._mutex:
            self._shut = True
            self._calls.clear()
            self._cond.notify_all()

    def threads(self) -> list[threading.Thread]:
        with self._mutex:
            return list(self._threads)


def _end_tag(inbox: Inbox, tag: str, error: BaseException | None) -> None:
    inbox.end(tag)


class _InlineRunner:
    """Runs a sync map or flat-map job chunk by chunk, in order, on whichever
    thread delivers (see the module docstring)."""

    def __init__(self, worker: LiveWorker, job: LiveJob) -> None:
        self.worker = worker
        self.job = job
        self.pending: deque[Any] = deque()
        self.queued = 0  # values in ``pending``
        self._next_seq = 0  # the seq of the input expected next
        self.blocked = 0  # feeders held by backpressure
        self._mutex = threading.Lock()  # entered as the lock itself: see _interrupt.py
        self.lock = threading.Condition(self._mutex)
        self.draining = True  # nothing runs until launch()
        self.activity = job.activity
        d = worker.definition
        self.flat = d.form == "flatmap"
        self.fn = worker.call(job)
        self.out_type = job.spec.out_tags[DEFAULT]
        self.out = job._outputs[DEFAULT]
        stream = self.source = job._inputs[DEFAULT]
        inline = stream.fused
        stream.listen_chunks(
            partial(self.submit, inline=inline),
            lambda _err: self.submit(_END, inline=inline),
        )
        job.on_cancel.append(self.discard)

    def discard(self) -> None:
        """Drop what is queued (the job was cancelled)."""
        with self._mutex:
            items = list(self.pending)
            self.pending.clear()
            self.queued = 0
            self.lock.notify_all()
        if self.activity is not None:
            n = sum(1 if c is _END else len(c.values) for c in items)
            if n:
                self.activity.done(n)

    def launch(self) -> None:
        """Start running once a slot holds the job (called again when one frees, if none is free).

        Not while the env closes: a waiting job given the slot of one just cancelled is
        about to be cancelled too, and was never running."""
        worker = self.worker
        if worker.env.closed or not worker.slots.take(self.job, self.launch) or not worker._started(self.job):
            return
        with self._mutex:
            if not self.pending:
                self.draining = False
                self.source.consumer_idle = True
                return
        self.worker._executor.submit(self.drain)

    def submit(self, item: Any, *, inline: bool) -> None:
        if self.job.finished or self.job._cancelled:
            return  # cancelled or failed: what still arrives is not processed
        with self._mutex:
            if item is not _END:
                if item.seq0 < self._next_seq:
                    return  # had it already: a delivery stopped by an interrupt, given again
                # (no call between these two: an interrupt cannot split them)
                self._next_seq = item.seq0 + len(item.values)
                self.pending.append(item)
                self.queued += len(item.values)
                if self.activity is not None:
                    self.activity.add(len(item.values))
            else:
                self.pending.append(item)
                if self.activity is not None:
                    self.activity.add(1)  # the end too, until the job has ended
            start = not self.draining
            if start and inline:
                self.draining = True
            if start:
                self.source.consumer_idle = False
        if start:
            if inline:
                self.drain()
            else:
                self._start_drain()
        if not inline and self.queued > MAX_BACKLOG and may_wait_for_room():
            self._wait_for_room()

    def _start_drain(self) -> None:
        """Claim the drain and hand it to a worker thread as one, a kernel interrupt held
        meanwhile: claimed and never handed over, nothing would drain this job again.
        (An item queued before the claim waits for the next drain; nothing is held.)"""
        with held_interrupts():
            with self._mutex:
                if self.draining:
                    return
                self.draining = True
            self.worker._executor.submit(self.drain)

    def _wait_for_room(self) -> None:
        """Backpressure: hold a feeder that got ahead until half the backlog is done."""
        job = self.job
        with self._mutex:
            self.blocked += 1
            try:
                while self.queued > MAX_BACKLOG // 2 and not (job.finished or job._cancelled):
                    self.lock.wait(0.05)
            finally:
                self.blocked -= 1

    def _next(self) -> Any:
        """The next item to process, consecutive chunks merged (up to
        ``MAX_CHUNK`` values); None when idle.

        Run dry, the drain pulls what was fed one by one into the input
        stream's buffer (the consumer is idle: no reason to wait for the
        flusher's deadline), so a loop of ``feed`` calls is processed in
        chunks of whatever it fed meanwhile.
        """
        pending = self.pending
        source = self.source
        while True:
            with self._mutex:
                if pending:
                    merged = self._pop()
                    break
                if not source._buf:
                    self.draining = False
                    source.consumer_idle = True
                    return None
            source.flush()  # delivered to submit(), which queues it: this drain runs
        if len(merged) == 1:
            return merged[0]
        first = merged[0]
        values = [v for c in merged for v in c.values]
        parents = None if first.parent_seqs is None else [p for c in merged for p in c.parent_seqs]
        return Chunk(first.stream_id, first.seq0, first.time, values, first.parent_stream, parents)

    def _pop(self) -> list[Any]:
        """The first queued item, or consecutive chunks to merge (the lock is held)."""
        pending = self.pending
        item = pending.popleft()
        if item is not _END:
            self._taken(len(item.values))
        if item is _END or not pending or pending[0] is _END:
            return [item]
        merged = [item]
        size = len(item.values)
        while (
            pending
            and pending[0] is not _END
            and size + len(pending[0].values) <= MAX_CHUNK
            and _follows(merged[-1], pending[0])
        ):
            merged.append(pending.popleft())
            size += len(merged[-1].values)
            self._taken(len(merged[-1].values))
        return merged

    def _taken(self, n: int) -> None:
        """``n`` values left the queue (the lock is held); wake a held feeder."""
        self.queued -= n
        if self.blocked:
            self.lock.notify_all()

    def drain(self) -> None:
        job = self.job
        act = self.activity
        try:
            self.worker.ensure_init()
        except BaseException as e:  # a KeyboardInterrupt raised by the hook too: the job fails, not the drain
            job.fail(e)
        while True:
            item = self._next()
            if item is None:
                return
            if item is _END:
                try:
                    if not job.status.done:
                        job.complete()
                finally:
                    if act is not None:
                        act.done(1)
                continue
            try:
                if not job.status.done:
                    self.process(item)
            except BaseException as e:
                job.fail(e)
            finally:
                if act is not None:
                    act.done(len(item.values))

    def process(self, chunk: Chunk) -> None:
        """Run the function over a chunk and push what it returns.

        The loop body is kept to a call and an append (this is the per-event
        cost of a fused flow). The chunk is walked in slices of 1, 2, 4, ...
        values with the clock read between them: results are pushed once
        ``FLAT_FLUSH`` seconds have passed, and at once after a slice that took
        ``SLOW_MAP`` or more per value (the slices then start again from one), so
        a slow function's outputs are seen as they are computed, not when the
        whole chunk is done. A fast one pays a clock read per slice.
        """
        if self.flat:
            self._process_flat(chunk)
            return
        values, seq0, sid = chunk.values, chunk.seq0, chunk.stream_id
        n = len(values)
        it = iter(values)  # the slices are taken from it: no copy
        out: list[Any] = []
        first = 0  # index in values of out[0]
        lo, size = 0, 1
        clock = time.monotonic
        last = clock()
        while lo < n:
            hi = min(n, lo + size)
            began = clock()
            failure = self._map_into(it, chunk, lo, hi, out)
            if failure is not None:
                self._push(*self._kept(out, seq0 + first), sid)
                self.job.fail(failure)
                return
            now = clock()
            # Slow per value, not per slice: a slice also waits for the GIL and the
            # machine, which must not break a fast map's chunks into small ones.
            slow = now - began >= SLOW_MAP * (hi - lo)
            if slow or now - last >= FLAT_FLUSH:
                self._push(*self._kept(out, seq0 + first), sid)
                out, first, last = [], hi, now
            size = 1 if slow else size * 2
            lo = hi
        self._push(*self._kept(out, seq0 + first), sid)

    def _map_into(
        self, it: Iterator[Any], chunk: Chunk, lo: int, hi: int, out: list[Any]
    ) -> BaseException | None:
        """Append the function's result for the next ``hi - lo`` values of ``it``
        (``chunk.values[lo:hi]``) to ``out``; a raising value leaves the fast loop for
        :meth:`recover`. The failure that ends the job, if any."""
        fn = self.fn
        values = chunk.values
        append = out.append
        off = len(out) - lo  # out[i + off] is the result of values[i]
        start = lo
        while start < hi:
            try:
                for v in islice(it, hi - start):
                    append(fn(v))
                return None
            except Exception as e:
                i = len(out) - off  # the value that raised (the iterator is past it)
                try:
                    append(self.recover(values[i], e, (chunk.stream_id, chunk.seq0 + i)))
                except _Failed as f:
                    return f.exc
                start = i + 1
        return None

    def _push(self, out: list[Any], parents: Sequence[int], stream_id: str) -> None:
        if out:
            job = self.job
            checked = self.out_type.check_many(out, spec=job.spec.name, tag=DEFAULT, side="output")
            self.out.push(checked, stream_id, parents)

    def _process_flat(self, chunk: Chunk) -> None:
        """Run a generator per input value and push what it yields.

        Yields are gathered into one push, but readers should see a generator
        that takes its time live, not when it ends: what was gathered is pushed
        every ``FLAT_FLUSH`` seconds or ``MAX_CHUNK`` values, and at once after
        a yield that took ``SLOW_YIELD`` or more (a sensor sleeping between
        readings).

        A failing generator is retried per policy; values of it already pushed
        are skipped on the retry (by position), so none is emitted twice.
        """
        values, seq0, sid = chunk.values, chunk.seq0, chunk.stream_id
        out: list[Any] = []
        parents: list[int] = []
        clock = time.monotonic
        last = clock()
        for i, v in enumerate(values):
            seq = seq0 + i
            sent = 0  # values of this input already pushed
            attempt = 0
            while True:
                mark = len(out)
                produced = 0
                prev = clock()
                try:
                    for r in self.fn(v):
                        produced += 1
                        if produced <= sent:
                            continue  # pushed before a retry: not again
                        out.append(r)
                        parents.append(seq)
                        now = clock()
                        if now - last >= FLAT_FLUSH or now - prev >= SLOW_YIELD or len(out) >= MAX_CHUNK:
                            self._push(out, parents, sid)
                            sent, out, parents, mark, last = produced, [], [], 0, now
                        prev = now
                    break
                except Exception as e:
                    del out[mark:], parents[mark:]
                    attempt += 1
                    try:
                        self._retry_or_raise(e, attempt, v, (sid, seq))
                    except _Skipped:
                        break
                    except _Failed as f:
                        self._push(out, parents, sid)
                        self.job.fail(f.exc)
                        return
        self._push(out, parents, sid)

    def _retry_or_raise(self, exc: Exception, attempt: int, value: Any, parent: tuple[str, int]) -> None:
        """Return (after the backoff) to retry; raise ``_Skipped`` (skipped, or sent to the
        errors stream) or ``_Failed`` per the policy."""
        worker, job = self.worker, self.job
        d = worker.definition
        if attempt <= d.retries:
            worker.stats.retries += 1
            job.logger.warning("attempt %d failed (%s: %s); retrying", attempt, type(exc).__name__, exc)
            time.sleep(worker.retry_delay(attempt))
            if job.status.done:
                raise _Failed(exc)
            return
        if job.errors is not None:
            worker.stats.dead_letters += 1
            dead_letter.send(job, DEFAULT, value, exc, attempt, parent)
            raise _Skipped
        if d.on_error == "skip":
            worker.stats.skipped += 1
            job.logger.error("datapoint skipped: %s: %s", type(exc).__name__, exc)
            raise _Skipped
        raise _Failed(exc)

    def _kept(self, results: list[Any], seq0: int) -> tuple[list[Any], Sequence[int]]:
        """What to emit and, for each, the seq of the input it came from."""
        # identity tests in C: `None in results` would call each value's __eq__
        if not any(map(operator.is_, results, repeat(None))) and not any(
            map(operator.is_, results, repeat(_SKIP))
        ):
            return results, range(seq0, seq0 + len(results))
        kept = [i for i, r in enumerate(results) if r is not None and r is not _SKIP]
        return [results[i] for i in kept], [seq0 + i for i in kept]

    def recover(self, value: Any, exc: Exception, parent: tuple[str, int]) -> Any:
        """Retry ``value`` per policy; return its result, ``_SKIP``, or raise ``_Failed``."""
        attempt = 0
        while True:
            attempt += 1
            try:
                self._retry_or_raise(exc, attempt, value, parent)
            except _Skipped:
                return _SKIP
            try:
                return self.fn(value)
            except Exception as e:
                exc = e


def _count_attempt(inbox: Inbox, attempt: int, last: Any) -> tuple[int, Any]:
    """The attempt a processor's failure is, counted per datapoint: a new one starts at 1
    (retries are per datapoint, also after an earlier one was retried, skipped or dead-lettered)."""
    chunk = inbox.chunk
    item = (chunk.stream_id, chunk.seq0 + inbox.index) if chunk is not None and inbox.current else None
    return (attempt + 1 if item == last else 1), item


def _emit_returned(job: LiveJob, result: Any) -> None:
    """A processor's return value goes to the default output: each item of a
    generator, or the value itself unless it is ``None``."""
    if inspect.isgenerator(result):
        for value in result:
            job.output.emit(value)
    elif result is not None:
        job.output.emit(result)
