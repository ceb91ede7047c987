"""The contract every vault implements, kept small on purpose.

An env talks to its vault only through these methods, so an embedded SQLite
file or a Redis server can replace the in-memory default without the rest of
the library noticing. ``durable`` tells the env whether to write every
datapoint through (a memory vault would only duplicate the streams' own
bounded history).

Datapoints travel in batches (:class:`BatchRecord`): a stream pushes chunks of
values, and a durable vault that stored one row per value could not keep up
with a fused flow. :meth:`Vault.recorder` and :meth:`Vault.batches` have
defaults built on the per-datapoint methods, so a new backend only needs the
abstract methods to be correct, and overrides the batch ones to be fast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..storage import StorageRef

__all__ = [
    "BatchRecord",
    "ChunkLike",
    "DatapointRecord",
    "JobRecord",
    "Recorder",
    "StatusRecord",
    "StreamRecord",
    "ValidationFailureRecord",
    "Vault",
]


@dataclass(frozen=True)
class JobRecord:
    """A job as the vault knows it."""

    job_id: str
    spec: str
    status: str
    parent_id: str | None = None
    options: dict[str, Any] | None = None
    created: float = 0.0


@dataclass(frozen=True)
class StatusRecord:
    """One entry of a job's append-only status history."""

    job_id: str
    status: str
    time: float
    detail: str | None = None


@dataclass(frozen=True)
class StreamRecord:
    """Which job reads or writes a stream, on which tag."""

    stream_id: str
    job_id: str
    direction: str  # "in" or "out"
    tag: str


@dataclass(frozen=True)
class DatapointRecord:
    """A stored datapoint (the value already in a storable form)."""

    stream_id: str
    seq: int
    time: float
    value: Any
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchRecord:
    """Consecutive datapoints of one stream that share a timestamp.

    ``values`` are decoded (validated by the stream's type when the reader
    gave one); the values at the indices in ``offloaded`` are
    :class:`~livestack_nb.StorageRef` s of values kept by the storage provider.
    ``parent_seqs`` (with ``parent_stream``) is the lineage: the seq of the
    datapoint each value came from.
    """

    stream_id: str
    seq0: int
    time: float
    values: list[Any]
    parent_stream: str | None = None
    parent_seqs: Sequence[int] | None = None
    offloaded: tuple[int, ...] = ()


@dataclass(frozen=True)
class ValidationFailureRecord:
    """A value refused at a tag (what ``DataValidationError`` said, and where)."""

    job_id: str
    spec: str
    tag: str
    field: str | None
    message: str
    time: float


class ChunkLike(Protocol):
    """What a stream hands its recorder: a batch of values pushed together.

    ``stored`` holds the values as kept in memory: where ``offloaded`` is true,
    some are placeholders whose ``ref`` attribute is a ``StorageRef``.
    """

    seq0: int
    time: float
    stored: list[Any]
    offloaded: bool
    parent_stream: str | None
    parent_seqs: Sequence[int] | None


def points_of(
    stream_id: str, batches: Iterable[BatchRecord], after: int, limit: int | None
) -> list[DatapointRecord]:
    """The datapoints with ``seq > after`` in ``batches`` (in seq order), at most ``limit``:
    the per-datapoint view of a vault that stores batches."""
    out: list[DatapointRecord] = []
    for b in batches:
        parents = b.parent_seqs
        for i, v in enumerate(b.values):
            seq = b.seq0 + i
            if seq <= after:
                continue
            lineage = () if parents is None else (f"{b.parent_stream}:{parents[i]}",)
            out.append(DatapointRecord(stream_id, seq, b.time, v, lineage))
            if limit is not None and len(out) >= limit:
                return out
    return out


Recorder = Callable[[ChunkLike], bool]
"""Called by a stream, under its lock, with each chunk it accepts. Must be
quick and must not block; returns ``True`` when the vault is behind and the
producer should call :meth:`Vault.wait_for_room` (outside its lock)."""


class Vault(ABC):
    """What an env records; see the module docstring."""

    durable: bool = False
    queues: bool = False  # can hand jobs to worker processes (see livestack_nb.remote)

    @abstractmethod
    def add_job(self, record: JobRecord) -> None:
        """Record a new job (status ``requested``)."""

    @abstractmethod
    def add_status(self, record: StatusRecord) -> None:
        """Append a status to a job's history."""

    @abstractmethod
    def statuses(self, job_id: str) -> list[StatusRecord]:
        """A job's status history, oldest first."""

    @abstractmethod
    def jobs(self) -> list[JobRecord]:
        """Every job, oldest first, with its latest status."""

    @abstractmethod
    def job(self, job_id: str) -> JobRecord | None:
        """One job, or ``None``."""

    @abstractmethod
    def add_stream(self, record: StreamRecord) -> None:
        """Record that a job reads or writes a stream."""

    @abstractmethod
    def streams(self, job_id: str) -> list[StreamRecord]:
        """The streams a job reads and writes."""

    @abstractmethod
    def add_datapoints(self, records: Sequence[DatapointRecord]) -> None:
        """Append datapoints (one stream's, in seq order)."""

    @abstractmethod
    def datapoints(self, stream_id: str, after: int = -1, limit: int | None = None) -> list[DatapointRecord]:
        """A stream's datapoints with ``seq > after``, in order."""

    @abstractmethod
    def add_child(self, parent_id: str, child_id: str) -> None:
        """Record that ``parent_id`` started ``child_id`` (invoke, flow)."""

    @abstractmethod
    def children(self, job_id: str) -> list[str]:
        """The jobs ``job_id`` started."""

    @abstractmethod
    def add_validation_failure(self, record: ValidationFailureRecord) -> None:
        """Record a value refused at a tag."""

    @abstractmethod
    def validation_failures(self, job_id: str | None = None) -> list[ValidationFailureRecord]:
        """Refused values, oldest first (of one job, or all)."""

    # -- batches: defaults on the per-datapoint methods; durable backends override

    def recorder(self, stream_id: str, tag: str, value_type: Any) -> Recorder | None:
        """The callable a new stream gives its chunks to, or ``None`` to record nothing.

        A vault that is not durable records no datapoints (the streams keep
        their own bounded history), so the hot path pays nothing for it.
        """
        if not self.durable:
            return None

        def record(chunk: ChunkLike) -> bool:
            t, ps, seqs = chunk.time, chunk.parent_stream, chunk.parent_seqs
            self.add_datapoints(
                [
                    DatapointRecord(
                        stream_id,
                        chunk.seq0 + i,
                        t,
                        getattr(v, "ref", v) if chunk.offloaded else v,
                        () if ps is None or seqs is None else (f"{ps}:{seqs[i]}",),
                    )
                    for i, v in enumerate(chunk.stored)
                ]
            )
            return False

        return record

    def claim_job_id(self, job_id: str) -> bool:
        """Take ``job_id`` for a new job; ``False`` if a job has it already.

        The default looks the id up; a vault shared by processes at once
        overrides it to take the id atomically (two processes starting the
        same id: one of them is refused).
        """
        return self.job(job_id) is None

    def wait_for_room(self) -> None:  # noqa: B027 - optional hook
        """Block until the vault has caught up enough to take more (see :data:`Recorder`)."""

    def count(self, stream_id: str) -> int:
        """How many datapoints of ``stream_id`` are stored (its next seq)."""
        points = self.datapoints(stream_id)
        return points[-1].seq + 1 if points else 0

    def batches(
        self, stream_id: str, start: int = 0, stop: int | None = None, value_type: Any = Any
    ) -> Iterator[BatchRecord]:
        """Stored datapoints with ``start <= seq < stop``, as batches in seq order.

        A batch may begin before ``start``; readers skip the extra values.
        """
        for p in self.datapoints(stream_id, after=start - 1):
            if stop is not None and p.seq >= stop:
                return
            parent = p.parents[0].rsplit(":", 1) if p.parents else None
            ref = isinstance(p.value, StorageRef)
            yield BatchRecord(
                stream_id,
                p.seq,
                p.time,
                [p.value],
                parent[0] if parent else None,
                [int(parent[1])] if parent else None,
                (0,) if ref else (),
            )

    def forget(self, job_ids: Sequence[str]) -> None:  # noqa: B027 - optional hook
        """The env forgot these finished jobs (see ``LiveEnv(keep_jobs=...)``).

        A durable vault keeps them (that is what it is for: ``env.job(id)``
        reads them back); a vault in memory drops their records so a long
        session stays bounded.
        """

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Make everything recorded so far durable (no-op when not durable)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release resources."""
