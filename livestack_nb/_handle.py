"""The caller's view of a job: :class:`JobHandle`, and :class:`InputFeeder` for one input tag.

A handle feeds and ends a job's inputs, reads its output streams, waits for it
and cancels it; it never emits into the job (that is the processor's side).
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ._inbox import _NoValue, _resolve, _switched
from ._status import JobStatus, LogEntry
from .errors import DataValidationError, JobClosedError, JobFailed, LivestackError, WaitTimeout
from .graph import Graph
from .spec import DEFAULT, JobSpec, as_list
from .step import Stepping
from .stream import MAX_CHUNK, DataStream

if TYPE_CHECKING:
    from ._livejob import LiveJob
    from .env import LiveEnv
    from .feeding import Feeding


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
            self._job._life.host.validation_failed(self._job, e)
            raise

    def feed_many(self, values: Iterable[Any]) -> None:
        """Feed several values (checked first: a bad one stops before anything is sent)."""
        if self.stream._closed:
            raise self._closed()
        try:
            vals = self._type.check_many(as_list(values), spec=self._spec_name, tag=self.tag, side="input")
        except DataValidationError as e:
            self._job._life.host.validation_failed(self._job, e)
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
        if job._life.status is JobStatus.FAILED:
            failed = job._life.failure()
            err = JobFailed(
                f"{failed}; its input {self.tag!r} takes no more values",
                job_id=job.job_id,
                traceback=job._life.traceback,
            )
            err.__cause__ = job._life.error
            return err
        if job._life.stored and not job._life.status.done:
            return JobClosedError(
                f"job {job.job_id} of spec {self._spec_name!r} was recorded {job._life.status.value} by "
                "another process, and runs there reading its input from that process's memory: it "
                "cannot be fed from here. Feed it where it was started, or run it on a Redis vault "
                "(autostart=False and worker processes), where any process can feed a job by id"
            )
        return JobClosedError(
            f"job {job.job_id} of spec {self._spec_name!r}: input {self.tag!r} has ended "
            f"({job._life.status.value}); it takes no more values"
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
        return self._job._life.status

    @property
    def statuses(self) -> list[tuple[JobStatus, float]]:
        """Every status the job went through, with its time (append-only)."""
        return list(self._job._life.statuses)

    @property
    def error(self) -> BaseException | None:
        """The exception that failed the job, if it failed."""
        return self._job._life.error

    @property
    def traceback(self) -> str | None:
        """The formatted traceback of the failure, if it failed."""
        return self._job._life.traceback

    @property
    def logs(self) -> list[LogEntry]:
        """The records of the job's logger."""
        return list(self._job._log_entries)

    @property
    def done(self) -> bool:
        return self._job._life.status.done

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
        if (
            tag not in job.spec.out_tags
            and job._life.errors is not None
            and job._outputs.get(tag) is job._life.errors
        ):
            return job._life.errors
        job.spec._tag("output", tag)
        return job._outputs[tag]

    @property
    def errors(self) -> DataStream | None:
        """The job's dead letters (``ls.DeadLetter``: value, error, traceback), or ``None``.

        A job whose spec (or flow) has ``on_error="dead_letter"`` sends each
        value its processor could not process here, and goes on. A flow run's
        stream holds the dead letters of all its jobs.
        """
        return self._job._life.errors

    def cancel(self) -> None:
        """Stop the job: its input and outputs end, status cancelled, at once.

        A processor still running gets :class:`~livestack_nb.JobCancelled` at
        its next call into the job (reading input, emitting, logging); one busy
        in its own code runs on until then, or until it returns, holding its
        thread (its job's logs say so; see ``worker.stats.busy_after_cancel``).
        Python cannot stop a thread from outside.
        """
        self._job._life.cancel()

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
        if job._life.stored and not job._life.done.is_set():
            raise LivestackError(
                f"job {self.job_id} of spec {self.spec.name!r} was last recorded {self.status.value} "
                "by another process and does not run in this one; there is nothing to wait for "
                "(if that process was killed, the job will never end)"
            )
        if not job._life.done.wait(timeout):
            raise WaitTimeout(
                f"job {self.job_id} of spec {self.spec.name!r} still {self.status.value} after {timeout}s"
            )
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._job._life.status is JobStatus.FAILED:
            raise self._job._life.failure()
        if self._job._life.record_error is not None:
            raise self._job._life.record_error

    def __await__(self) -> Generator[Any, None, None]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def wake(_: LiveJob) -> None:
            loop.call_soon_threadsafe(_resolve, fut)

        self._job._life.add_done_callback(wake)
        yield from fut.__await__()
        self._raise_if_failed()

    def result(self, timeout: float | None = None, *, last: int | None = None) -> list[Any]:
        """Wait, then return the default output's values (all, or the ``last`` n; see
        :meth:`DataStream.values`)."""
        self.wait(timeout)
        return self.output().values(last)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def __repr__(self) -> str:
        return f"<JobHandle {self.job_id} {self.spec.name!r} {self.status.value}>"
