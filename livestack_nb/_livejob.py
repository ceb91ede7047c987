"""The processor's view of a job: :class:`LiveJob`.

Its public face is the seed's parts (options, logger, spec, graph, input and
output, invoke, storage, env) and ``job_id``; what the worker and the env do to
it (running, completing, failing, cancelling) goes through its lifecycle.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback as tb
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ._handle import JobHandle
from ._inbox import Inbox
from ._ports import Inputs, Outputs
from ._status import JobHost, JobStatus, LogEntry, _JobLogger
from .errors import JobCancelled, JobFailed, LivestackError
from .graph import Graph
from .spec import JobSpec
from .stream import Activity, DataStream, now

if TYPE_CHECKING:
    from .env import LiveEnv
    from .keys import KeyedState
    from .storage import StorageProvider


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
        host: JobHost | None = None,
    ) -> None:
        self.spec = spec
        self.env = env
        # What the job reports its statuses and refused values to, and starts
        # its children with: handed down by the env (see JobHost).
        self._host: JobHost = host if host is not None else env.job_host
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

        child = self._host.start_child(spec, options, parent_id=self.job_id, before_launch=collect)
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
        self._host.status_changed(self, status)
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
