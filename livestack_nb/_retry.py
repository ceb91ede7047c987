"""What a raising processor gets: a retry, its datapoint dropped, or the job's failure.

One policy object per worker, read from its definition (``retries``,
``retry_backoff``, ``on_error``), used by every path that calls user code: a
sync or async processor, an async map, and the inline runner of sync maps and
flat-maps. Each path keeps only its own way of waiting out the backoff (a
sleep, an ``await``) and of putting the datapoint back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import dead_letter

if TYPE_CHECKING:
    from ._inbox import Inbox
    from ._livejob import LiveJob
    from ._workerdef import LiveWorkerDef
    from .worker import WorkerStats

__all__ = ["DROP", "FAIL", "RETRY", "RetryPolicy", "count_attempt"]

RETRY = "retry"
"""Call the processor again on the same datapoint, after :meth:`RetryPolicy.delay`."""
DROP = "drop"
"""The datapoint was sent to the job's errors stream, or skipped: go on with the next."""
FAIL = "fail"
"""The job fails with the error."""


class RetryPolicy:
    """The retry and error policy of one worker, with the counts it keeps in its stats."""

    __slots__ = ("backoff", "on_error", "retries", "stats")

    def __init__(self, definition: LiveWorkerDef, stats: WorkerStats) -> None:
        self.retries = definition.retries
        self.backoff = definition.retry_backoff
        self.on_error = definition.on_error
        self.stats = stats

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1, 2, ...): the backoff doubles."""
        return float(self.backoff * (2 ** (attempt - 1)))

    def decide(
        self,
        job: LiveJob,
        exc: Exception,
        attempt: int,
        datapoint: tuple[str, Any, tuple[str, int] | None] | None,
    ) -> str:
        """What attempt number ``attempt`` raising ``exc`` leads to: :data:`RETRY`,
        :data:`DROP` or :data:`FAIL`.

        ``datapoint`` is ``(tag, value, (stream id, seq))`` of the value that
        failed, or None when the failure is not tied to one (a processor that
        raised before reading, or after its input ended): that can be retried
        but never dropped. Dropping logs and counts it, and sends it to the
        errors stream when the job has one (``on_error="dead_letter"``).
        """
        if attempt <= self.retries:
            self.stats.retries += 1
            job.logger.warning("attempt %d failed (%s: %s); retrying", attempt, type(exc).__name__, exc)
            return RETRY
        if datapoint is None:
            return FAIL
        if job._life.errors is not None:
            tag, value, parent = datapoint
            self.stats.dead_letters += 1
            dead_letter.send(job, tag, value, exc, attempt, parent)
            return DROP
        if self.on_error == "skip":
            self.stats.skipped += 1
            job.logger.error("datapoint skipped after %d attempts: %s: %s", attempt, type(exc).__name__, exc)
            return DROP
        return FAIL


def count_attempt(inbox: Inbox, attempt: int, last: Any) -> tuple[int, Any]:
    """The attempt a processor's failure is, counted per datapoint: a new one starts at 1
    (retries are per datapoint, also after an earlier one was retried, skipped or dead-lettered)."""
    chunk = inbox.chunk
    item = (chunk.stream_id, chunk.seq0 + inbox.index) if chunk is not None and inbox.current else None
    return (attempt + 1 if item == last else 1), item
