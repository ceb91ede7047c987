"""The contract every vault implements, kept small on purpose.

An env talks to its vault only through these methods, so an embedded SQLite
file or a Redis server can replace the in-memory default without the rest of
the library noticing. ``durable`` tells the env whether to write every
datapoint through (a memory vault would only duplicate the streams' own
bounded history).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import LivestackError

__all__ = ["DatapointRecord", "JobRecord", "StatusRecord", "StreamRecord", "Vault", "open_vault"]


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


class Vault(ABC):
    """What an env records; see the module docstring."""

    durable: bool = False

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

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Make everything recorded so far durable (no-op when not durable)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release resources."""


def open_vault(spec: Vault | str | None) -> Vault:
    """Build a vault from an env's ``vault=`` argument."""
    from .memory import MemoryVault

    if spec is None or spec == "memory":
        return MemoryVault()
    if isinstance(spec, Vault):
        return spec
    if isinstance(spec, str) and spec.split(":", 1)[0] in ("sqlite", "redis", "rediss"):
        raise LivestackError(
            f"vault {spec!r}: the {spec.split(':', 1)[0]} vault is not available in this version; "
            "use vault='memory'"
        )
    raise LivestackError(f"unknown vault {spec!r}: use 'memory' or a Vault instance")
