"""The queue contract: what a vault must do to hand jobs to worker processes.

:mod:`livestack_nb.remote` (the notebook's side) and
:mod:`livestack_nb.queue_worker` (the worker's side) work against this
protocol only, never against a backend's class or its private names, so the
at-least-once logic (leases, takeover, fences, client leases) is one piece of
code whatever carries the messages. A vault that implements it says so with
``queues = True``; :class:`~livestack_nb.vault.redis.RedisVault` is the real
one, and :class:`~livestack_nb.vault.memory_queue.MemoryQueueVault` a
complete in-process implementation that the tests run the same glue against.

Messages are ``(message_id, fields)``: ``fields["job"]`` (a ``str`` or, as a
server hands it back, ``bytes`` key and value) names the job. Everything that
crosses processes (a job's input, its outputs, its statuses, a named stream)
is a stream in the vault; followers are called on one thread of the vault's,
in order, and must not block for long.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .base import BatchRecord, JobRecord, StatusRecord, StreamRecord

__all__ = ["Message", "QueueVault"]

Message = tuple[str, Mapping[Any, Any]]
"""A queue message: its id and its fields (``"job"``: the job id)."""


@runtime_checkable
class QueueVault(Protocol):
    """A vault that can hand jobs to other processes; see the module docstring."""

    queues: bool
    #: Seconds a job's input stays open without the process feeding it being heard from.
    client_lease: float

    # -- records (part of the Vault contract) -------------------------------------------

    def job(self, job_id: str) -> JobRecord | None:
        """One job, or ``None``."""

    def streams(self, job_id: str) -> list[StreamRecord]:
        """The streams a job reads and writes."""

    def add_status(self, record: StatusRecord) -> None:
        """Append a status to a job's history."""

    def batches(
        self, stream_id: str, start: int = 0, stop: int | None = None, value_type: Any = Any
    ) -> Iterator[BatchRecord]:
        """Stored datapoints with ``start <= seq < stop``, as batches in seq order."""

    def flush(self) -> None:
        """Make everything recorded so far visible to every process."""

    # -- streams across processes ---------------------------------------------------------

    def share(self, stream_id: str) -> None:
        """Several processes write ``stream_id``: append what this one records at its end."""

    def end_stream(self, stream_id: str, error: str | None = None) -> None:
        """Mark ``stream_id`` ended, after what was recorded before (followers see it)."""

    def ended(self, stream_id: str) -> bool:
        """Whether ``stream_id`` has ended."""

    def follow_stream(
        self,
        stream_id: str,
        value_type: Any,
        on_batch: Callable[[BatchRecord], None] | None,
        on_end: Callable[[], None] | None,
    ) -> Callable[[], None]:
        """Call ``on_batch`` with every batch of ``stream_id`` from the first (values
        validated by ``value_type``), then ``on_end`` once it ends; returns a stop function."""

    def follow_statuses(self, job_id: str, on_status: Callable[[StatusRecord], None]) -> Callable[[], None]:
        """Call ``on_status`` with every status of ``job_id`` from the first; returns a stop function."""

    # -- jobs on queues -------------------------------------------------------------------

    def mark_remote(self, job_id: str) -> None:
        """Record that ``job_id`` runs on a queue (any process may feed it)."""

    def is_remote(self, job_id: str) -> bool:
        """Whether ``job_id`` was put on a queue."""

    def enqueue(self, spec: str, job_id: str) -> None:
        """Put ``job_id`` on ``spec``'s queue, after everything recorded before."""

    def ensure_group(self, spec: str) -> None:
        """Make ``spec``'s queue ready to be taken from (idempotent)."""

    def reset_group(self, spec: str) -> None:
        """Forget that ``spec``'s queue was made ready (its server lost it): the next
        :meth:`ensure_group` makes it again."""

    def take(self, spec: str, consumer: str, count: int, block: float) -> list[Message]:
        """Up to ``count`` new messages of ``spec``'s queue for ``consumer`` (waits ``block`` s)."""

    def claim_stale(self, spec: str, consumer: str, idle: float, count: int) -> list[Message]:
        """Take over up to ``count`` messages whose consumer has been silent ``idle`` s."""

    def deliveries(self, spec: str, message_id: str) -> int:
        """How often a pending message was delivered; 0 if it is not pending."""

    def touch(self, spec: str, consumer: str, ids: Sequence[str]) -> list[str]:
        """Reset the idle time of ``consumer``'s messages; the ids no longer its own."""

    def ack(self, spec: str, ids: Sequence[str], consumer: str | None = None) -> int:
        """Done with these messages (only those still ``consumer``'s, if given); how many."""

    def reject(
        self, spec: str, message_id: str, fields: Mapping[Any, Any], reason: str, consumer: str
    ) -> None:
        """Report a malformed message (log and record it), then acknowledge it."""

    def heartbeat(self, consumer: str, spec: str, ttl: float) -> None:
        """Worker ``consumer`` of ``spec`` is alive for the next ``ttl`` s."""

    # -- fences: a worker's writes count only while its message is its own -----------------

    def fence(
        self, job_id: str, stream_ids: Sequence[str], spec: str, message_id: str, consumer: str
    ) -> None:
        """Refuse this process's writes of ``job_id``'s statuses and ``stream_ids`` unless
        ``message_id`` is still ``consumer``'s, until :meth:`unfence`."""

    def fresh(self, stream_ids: Sequence[str]) -> None:
        """These streams hold nothing yet (a hint: their first writes need no check)."""

    def unfence(self, job_id: str, stream_ids: Sequence[str]) -> None:
        """Drop a fence (after a flush)."""

    # -- the client's lease on a job whose input it feeds -------------------------------

    def hold_lease(self, job_id: str) -> Callable[[], None]:
        """Keep this process's lease on ``job_id`` alive (``client_lease`` s after its
        last renewal) until the returned function is called."""

    def leases_held(self, job_ids: Sequence[str]) -> list[bool]:
        """Whether some process holds the lease of each of ``job_ids``."""

    # -- the server losing its data -------------------------------------------------------

    def on_lost(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(why)`` when what was recorded is lost; returns a stop function."""

    def check_epoch(self, *, wait: bool = False) -> bool:
        """Whether the server still has what this process recorded (``False``: lost, and
        the :meth:`on_lost` callbacks have been told)."""
