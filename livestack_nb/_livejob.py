"""The processor's view of a job: :class:`LiveJob`.

Its public face is the seed's parts (options, logger, spec, graph, input and
output, invoke, storage, env) and ``job_id``; what the worker and the env do to
it (running, completing, failing, cancelling) goes through its lifecycle.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ._handle import JobHandle
from ._inbox import Inbox
from ._lifecycle import JobLife
from ._ports import Inputs, Outputs
from ._status import JobHost, JobStatus, LogEntry, _JobLogger
from .errors import JobCancelled, LivestackError
from .graph import Graph
from .spec import JobSpec
from .stream import DataStream

if TYPE_CHECKING:
    from .env import LiveEnv
    from .keys import KeyedState
    from .storage import StorageProvider


class LiveJob:
    """A running job, as its processor sees it: the seed's parts and ``job_id``.

    What runs the job (its status, its end, its cancel) is not part of it: the
    worker and the env reach that as its private lifecycle, the caller through
    its :class:`~livestack_nb.JobHandle`.

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
    invoke:
        Run a child job and get its outputs (lineage records it).
    storage, env:
        The env's storage provider and the env itself.
    state:
        Per-key state of the job's spec, kept across jobs (see :mod:`livestack_nb.keys`).
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
        self.options = options
        self.job_id = job_id
        self.graph = graph or Graph()
        self.parent_id = parent_id  # the job that started this one (lineage), if any
        # The parameters of the worker running the job (its definition's
        # ``worker_params``; Livestack's ``instanceParams``), set when a worker takes it.
        self.worker_params: Any = {}
        self._log_entries: deque[LogEntry] = deque(maxlen=2000)
        self.logger: logging.Logger = _JobLogger(self)
        self._inputs = input_streams
        self._outputs = output_streams
        for out in output_streams.values():
            out.on_subscriber_error = self._subscriber_failed
        self.input = Inputs(self)
        self.output = Outputs(self)
        # What runs the job sees of it (statuses, its end, its cancel): never the processor.
        self._life = JobLife(
            self,
            host if host is not None else env.job_host,
            [input_streams[t] for t in owned_inputs],
            label=label or spec.name,
        )
        # Read on every emit, read and log call: plain attributes, written by the lifecycle.
        self._cancelled = False
        self._finished = False  # status.done
        # The thread running a sync processor or the loop of an async one: a
        # cancel reaches the processor at its next call into the job there.
        self._processor_thread: int | None = None
        self._inbox: Inbox | None = None
        # The input fed last and the output emitted to last: values handed over one
        # at a time to another tag push these first, so arrival order across tags holds.
        self._fed_last: DataStream | None = None
        self._emitted_last: DataStream | None = None
        self._state: KeyedState | None = None
        # For a spec that runs a child job per value for the nodes of its graph
        # (parallel attempts): each node's latest job, which the graph shows.
        self._node_jobs: dict[str, str] = {}

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

        child = self._life.host.start_child(spec, options, parent_id=self.job_id, before_launch=collect)
        self._life.children.append(child.job_id)
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

    @property
    def status(self) -> JobStatus:
        """The job's status, to read (a processor that loops on its own may stop once
        its job is done); only what runs the job changes it."""
        return self._life.status

    @property
    def state(self) -> KeyedState:
        """Per-key state of this job's spec (its node in a flow), kept across jobs
        and, with a durable vault, across restarts: see :mod:`livestack_nb.keys`."""
        if self._state is None:
            from .keys import state_of

            self._state = state_of(self)
        return self._state

    def _subscriber_failed(self, stream: DataStream) -> None:
        # A reader's error is not the job's: it goes on, the reader is dropped.
        self.logger.warning(
            "a subscriber of output %r raised; it is unsubscribed and the job goes on",
            stream.tag,
            exc_info=True,
        )

    def _cancellation(self) -> JobCancelled:
        return JobCancelled(f"job {self.job_id} of spec {self.spec.name!r} was cancelled")

    def _check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if the job was cancelled and this is its processor's thread."""
        if self._cancelled and self._processor_thread == threading.get_ident():
            raise self._cancellation()

    def cancel(self) -> None:
        """Cancel this job from its own processor (the one lifecycle call a processor
        may make: it stops taking input, and what waits for the job sees it cancelled)."""
        self._life.cancel()

    def __repr__(self) -> str:
        return f"<LiveJob {self.job_id} {self.spec.name!r} {self._life.status.value}>"
