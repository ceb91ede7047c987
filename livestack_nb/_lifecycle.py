"""A job's lifecycle: its statuses, its end, its cancel, and what its runner attaches.

Why apart from :class:`~livestack_nb.LiveJob`: the processor holds the LiveJob
and must not be able to end its own job or rewire what runs it. The code that
runs jobs (the worker, the env, a flow's run for its own job, the remote glue)
reaches this as ``job._life``; the caller reads it through its JobHandle.

It refers to its job weakly (the job holds it), so a job nothing else holds is
freed at once, without the cycle collector.
"""

from __future__ import annotations

import logging
import threading
import traceback as tb
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._status import JobHost, JobStatus
from .errors import JobFailed, LivestackError
from .stream import Activity, DataStream, now

if TYPE_CHECKING:
    from ._inbox import Inbox
    from ._livejob import LiveJob
    from .step import Stepper

__all__ = ["JobLife"]


class JobLife:
    """The lifecycle of one job (see the module docstring).

    Attributes
    ----------
    status, statuses:
        The latest status, and every one with its time.
    error, traceback, failure_note:
        How it failed, and where (``"in a worker process"``).
    label, children:
        Its node's label in a flow, and the jobs it started.
    errors:
        The dead-letter stream, when its policy is ``on_error="dead_letter"``.
    activity:
        The work count of the flow with a cycle it runs in, if any.
    on_cancel:
        What its runner does on a cancel (drop queued input, cancel a task).
    owned_inputs:
        The input streams this job created itself (ended with it); shared ones
        belong to an upstream job or a flow.
    stepper:
        The stepper of a run started with ``step=True`` (see :mod:`livestack_nb.step`).
    stored, detached:
        Read back from a vault (nothing runs it here); run by another process
        (this one records none of its statuses).
    record_error:
        Set when the job's end could not be made durable; ``wait()`` raises it.
    """

    def __init__(
        self,
        job: LiveJob,
        host: JobHost,
        owned_inputs: list[DataStream],
        *,
        label: str,
    ) -> None:
        self._job = weakref.ref(job)
        # What the job reports its statuses and refused values to, and starts
        # its children with: handed down by the env (see JobHost).
        self.host = host
        self.owned_inputs = owned_inputs
        self.label = label
        self.lock = threading.Lock()
        self.status = JobStatus.REQUESTED
        self.statuses: list[tuple[JobStatus, float]] = [(JobStatus.REQUESTED, now())]
        self.done = threading.Event()
        self._callbacks: list[Callable[[LiveJob], None]] = []
        self.error: BaseException | None = None
        self.traceback: str | None = None
        self.failure_note: str | None = None
        self.children: list[str] = []
        self.errors: DataStream | None = None
        self.activity: Activity | None = None
        self.on_cancel: list[Callable[[], None]] = []
        self.stored = False
        self.record_error: LivestackError | None = None
        self.detached = False
        self.stepper: Stepper | None = None  # a run started with step=True (livestack_nb.step)

    @property
    def job(self) -> LiveJob:
        job = self._job()
        if job is None:  # the job holds its lifecycle: only a stray reference outlives it
            raise LivestackError("the job of this lifecycle no longer exists")
        return job

    # -- what the runner attaches -------------------------------------------------

    def attach_inbox(self, inbox: Inbox) -> None:
        """The queue a processor reads its input from (set by the worker)."""
        self.job._inbox = inbox

    def running_on(self, thread: int | None) -> None:
        """The thread (or loop) running the processor now, None once it returned: a cancel
        reaches the processor at its next call into the job there."""
        self.job._processor_thread = thread

    # -- statuses -------------------------------------------------------------------

    def set_status(self, status: JobStatus) -> bool:
        if not self._record(status):
            return False
        self._tell(status)
        return True

    def _record(self, status: JobStatus) -> bool:
        """The status, readable at once; :meth:`_tell` then reports it (see :meth:`fail`)."""
        job = self.job
        with self.lock:
            if self.status.done or self.status is status:
                return False
            self.status = status
            self.statuses.append((status, now()))
            job._finished = status.done
        return True

    def _tell(self, status: JobStatus) -> None:
        job = self.job
        if status.done and job._state is not None:
            job._state.checkpoint(job.logger)  # recorded before the end is: wait() then finds it
        self.host.status_changed(job, status)
        if status.done:
            self.done.set()
            for cb in list(self._callbacks):
                try:
                    cb(job)
                except Exception:
                    logging.getLogger("livestack_nb").exception("job callback failed")

    def add_done_callback(self, cb: Callable[[LiveJob], None]) -> None:
        """Call ``cb(job)`` once the job has ended (now, if it has)."""
        with self.lock:
            if not self.status.done:
                self._callbacks.append(cb)
                return
        cb(self.job)

    def mark_running(self) -> None:
        self.set_status(JobStatus.RUNNING)

    def retaken(self, at: float) -> None:
        """A job run by worker processes was taken over by another worker at ``at``
        (its recorded time): ``statuses`` shows one ``running`` per run, as the vault
        records them, not only the first."""
        with self.lock:
            if self.status is JobStatus.RUNNING:
                self.statuses.append((JobStatus.RUNNING, at))

    def complete(self) -> None:
        """Normal end: outputs end (and inputs: feeding a finished job is an error)."""
        job = self.job
        for s in self.owned_inputs:
            s.end()
        for s in job._outputs.values():
            s.end()
        self.set_status(JobStatus.COMPLETED)

    def fail(self, exc: BaseException) -> None:
        """The job failed: keep the traceback, end outputs so nothing waits."""
        job = self.job
        if self.status.done or job._cancelled:
            return  # a failure on the way out of a cancel is not the job's end
        self.error = exc
        self.traceback = "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
        job.logger.error("job failed: %s: %s", type(exc).__name__, exc)
        failure = self.failure()
        # Failed before its outputs end: what their end sets off (a flow failing, a
        # cell's wait returning, a graph drawn then) reads this job as failed already.
        if not self._record(JobStatus.FAILED):
            return
        for s in self.owned_inputs:
            s.end()
        for s in job._outputs.values():
            s.end(failure)
        self._tell(JobStatus.FAILED)

    def failure(self) -> JobFailed:
        """The error ``wait()`` raises for a failed job (the original is its cause)."""
        job = self.job
        exc = self.error
        where = f" ({self.failure_note})" if self.failure_note else ""
        err = JobFailed(
            f"job {job.job_id} of spec {job.spec.name!r} failed{where}: {type(exc).__name__}: {exc}",
            job_id=job.job_id,
            traceback=self.traceback,
        )
        err.__cause__ = exc
        return err

    def cancel(self) -> None:
        if self.status.done:
            return
        job = self.job
        job._cancelled = True
        if job._inbox is not None:
            job._inbox.cancel()
        for cb in self.on_cancel:
            cb()
        for s in self.owned_inputs:
            s.end()
        for s in job._outputs.values():
            s.end()
        self.set_status(JobStatus.CANCELLED)

    # -- a job of an earlier process, and a forgotten one -------------------------

    def restore(self, statuses: Iterable[Any], children: Iterable[str]) -> None:
        """Take the status history recorded in a vault (a job of an earlier process).

        ``statuses`` are :class:`~livestack_nb.vault.StatusRecord` s, oldest
        first. The job runs nowhere here: its status only says what was last
        recorded, and nothing it does is written back.
        """
        self.stored = True
        history = [(JobStatus(r.status), r.time) for r in statuses] or self.statuses
        self.statuses = history
        self.status = history[-1][0]
        self.job._finished = self.status.done
        self.children = list(children)
        if self.status is JobStatus.FAILED:
            detail = next((r.detail for r in reversed(list(statuses)) if r.detail), None)
            self.traceback = detail
            last = detail.strip().splitlines()[-1] if detail else "no traceback was recorded"
            self.error = LivestackError(last)
            self.failure_note = "as recorded in the vault"
        if self.status.done:
            self.done.set()

    def release(self) -> None:
        """Drop the links only a running job needs, once it has ended and its env forgot it.

        A job, its streams, its processor's runner and its flow's run refer to
        one another while it runs; left so, a forgotten job would only be
        freed by Python's cycle collector, which runs too rarely to keep a
        loop of thousands of runs bounded. After this, what nothing else
        holds is freed at once; a handle still held (a widget showing the job)
        keeps its statuses, logs and output streams.
        """
        job = self.job
        if not self.status.done or job._processor_thread not in (None, threading.get_ident()):
            return  # a cancelled processor still runs its own code: it keeps what it uses
        self._callbacks.clear()
        self.on_cancel.clear()
        job.output._ports.clear()
        job._fed_last = job._emitted_last = None
        inbox = job._inbox
        if inbox is not None:  # it refers to the job (before_wait) and to its inputs
            inbox.streams = []
            inbox._before_wait = None
            job._inbox = None
        for out in job._outputs.values():
            if out.on_subscriber_error == job._subscriber_failed:
                out.on_subscriber_error = None
