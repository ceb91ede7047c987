"""A running job's inputs and outputs, as its processor reads and writes them.

``job.input`` (:class:`Inputs`, a :class:`TagReader` per tag or merge) reads
through the job's inbox; ``job.output`` (:class:`Outputs`, an
:class:`OutputPort` per tag) checks each value against the tag's type and
appends it with its lineage (the value the processor read last).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Generator, Iterator
from typing import TYPE_CHECKING, Any

from ._inbox import _ENDED, _NoValue, _switched
from .errors import DataValidationError, JobClosedError, LivestackError
from .spec import DEFAULT
from .stream import DataStream

if TYPE_CHECKING:
    from ._livejob import LiveJob

    pass


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
            job._life.host.validation_failed(job, e)
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
