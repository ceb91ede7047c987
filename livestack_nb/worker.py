"""The kitchen staff: who runs a spec's jobs, how many at once, and what happens
when a processor raises.

Map and flat-map specs are run *inline*: a chunk of input goes through the
function in one loop, and in a flow the output is handed straight to the next
map spec on the same thread (the fused path: no per-event hop through a queue,
a thread or asyncio). Values fed from outside are drained on the worker's
threads, so the feeding cell returns at once. Processor specs (``job:
LiveJob``) hold a worker thread for their whole life (or run as a task on the
env's loop when ``async``); ``concurrency`` bounds how many run at once.

The pieces, each in its own module: the definition a worker follows
(:mod:`._workerdef`), what a raising processor gets (:mod:`._retry`), the
threads (:mod:`._pool`) and the inline runner of maps and flat-maps
(:mod:`._inline`); this module runs processors and holds them together.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from ._inbox import Inbox
from ._inline import InlineRunner
from ._livejob import LiveJob
from ._pool import Pool
from ._retry import DROP, FAIL, RETRY, RetryPolicy, count_attempt
from ._workerdef import LiveWorkerDef
from .errors import DataValidationError, JobCancelled, LivestackError
from .slots import Slots
from .spec import DEFAULT

if TYPE_CHECKING:
    from .env import LiveEnv

__all__ = ["LiveWorker", "LiveWorkerDef", "WorkerStats"]

# Defined in private modules, named by their public path: what IPython's display
# hooks (registered by module and class name), pickles, reprs and docs see.
for _public in (LiveWorkerDef,):
    _public.__module__ = __name__


log = logging.getLogger("livestack_nb")


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
        self.policy = RetryPolicy(definition, self.stats)
        self._executor = Pool(definition.concurrency, f"livestack-{definition.spec.name}")
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
        job._life.add_done_callback(self._job_done)
        d = self.definition
        job.worker_params = d.worker_params
        if d.form != "processor" and not d.is_async:
            return InlineRunner(self, job).launch
        inbox = Inbox(job.spec.in_tags, job._life.activity, job._before_wait)
        job._life.attach_inbox(inbox)
        inbox.streams = list(job._inputs.values())
        for tag, stream in job._inputs.items():
            stream.listen_chunks(partial(inbox.put, tag), partial(_end_tag, inbox, tag))
        if d.is_async:
            return partial(self._launch_async, job)
        job._life.on_cancel.append(partial(self._cancelled_while_busy, job))
        return partial(self._launch_sync, job)

    def _job_done(self, job: LiveJob) -> None:
        with self._jobs_lock:
            self._jobs.discard(job)
        st = job._life.status.value
        if st == "completed":
            self.stats.jobs_completed += 1
        elif st == "failed":
            self.stats.jobs_failed += 1
        else:
            self.stats.jobs_cancelled += 1
        self.slots.release(job)  # after the count: the job it hands the slot to starts now

    def _started(self, job: LiveJob) -> bool:
        if job._life.status.done:
            return False
        self.stats.jobs_started += 1
        job._life.mark_running()
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
            job._life.running_on(None)
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
        job._life.running_on(threading.get_ident())
        try:
            self.ensure_init()
            while True:
                try:
                    _emit_returned(job, d.processor(job))
                    break
                except (JobCancelled, DataValidationError):
                    raise
                except Exception as e:
                    attempt, last = count_attempt(inbox, attempt, last)
                    if not self._may_retry(job, e, attempt, inbox):
                        raise
                    time.sleep(self.policy.delay(attempt))
        except JobCancelled:
            pass
        except BaseException as e:
            job._life.fail(e)
        else:
            job._life.complete()
        finally:
            inbox.close()
            self._returned(job)

    def _may_retry(self, job: LiveJob, e: Exception, attempt: int, inbox: Inbox) -> bool:
        """Apply the policy to a raising processor: the datapoint it read last is retried
        (put back) or dropped, and it goes on; False: the job fails."""
        datapoint = None
        if inbox.current:
            chunk, i = inbox.chunk, inbox.index
            assert chunk is not None  # (inbox.current says so)
            datapoint = (inbox.tag, chunk.values[i], (chunk.stream_id, chunk.seq0 + i))
        decision = self.policy.decide(job, e, attempt, datapoint)
        if decision == RETRY:
            inbox.requeue_current()
        elif decision == DROP:
            inbox.skip_current()
        return decision != FAIL

    # -- async processors and async maps -------------------------------------

    def _launch_async(self, job: LiveJob) -> None:
        fut = self.env.runtime.submit(self._run_async(job))

        def cancel() -> None:
            fut.cancel()

        job._life.on_cancel.append(cancel)

    async def _run_async(self, job: LiveJob) -> None:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.definition.concurrency)
        async with self._semaphore:
            if not self._started(job):
                return
            inbox = job._inbox
            assert inbox is not None
            job._life.running_on(threading.get_ident())  # the loop's: its logger checks a cancel
            try:
                self.ensure_init()
                if self.definition.form == "processor":
                    await self._async_processor(job, inbox)
                else:
                    await self._async_map(job)
            except (JobCancelled, asyncio.CancelledError):
                pass
            except BaseException as e:
                job._life.fail(e)
            else:
                job._life.complete()
            finally:
                inbox.close()
                job._life.running_on(None)

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
                attempt, last = count_attempt(inbox, attempt, last)
                if not self._may_retry(job, e, attempt, inbox):
                    raise
                await asyncio.sleep(self.policy.delay(attempt))

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
                    decision = self.policy.decide(job, e, attempt, (DEFAULT, value, job._parent))
                    if decision == RETRY:
                        await asyncio.sleep(self.policy.delay(attempt))
                        continue
                    if decision == DROP:
                        results = []
                        break
                    raise
            for r in results:
                emit(r)

    # -- stopping ---------------------------------------------------------------

    def running_jobs(self) -> list[LiveJob]:
        with self._jobs_lock:
            return [j for j in self._jobs if not j._life.status.done]

    def stop(self, timeout: float | None = 10.0, *, cancel: bool = False) -> None:
        """Stop taking jobs, let running ones finish (or cancel them), free the threads.

        Jobs still running after ``timeout`` seconds are cancelled.
        """
        self._accepting = False
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in self.running_jobs():
            if cancel:
                job._life.cancel()
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not job._life.done.wait(left):
                job.logger.warning("cancelled: the worker stopped")
                job._life.cancel()
        self._executor.shutdown()
        threads = self._executor.threads()
        for t in threads:
            left = 5.0 if deadline is None else max(0.1, deadline - time.monotonic())
            t.join(left)
            if t.is_alive():
                log.warning("a processor of spec %r did not return; its thread is left", self.spec.name)

    def __repr__(self) -> str:
        return f"<LiveWorker {self.spec.name!r} running={self.stats.running}>"


def _end_tag(inbox: Inbox, tag: str, error: BaseException | None) -> None:
    inbox.end(tag)


def _emit_returned(job: LiveJob, result: Any) -> None:
    """A processor's return value goes to the default output: each item of a
    generator, or the value itself unless it is ``None``."""
    if inspect.isgenerator(result):
        for value in result:
            job.output.emit(value)
    elif result is not None:
        job.output.emit(result)
