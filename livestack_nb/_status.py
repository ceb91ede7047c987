"""A job's status and its log: the types every side of a job reads.

:class:`JobStatus` is the lifecycle (requested, running, then one of the three
ends); :class:`LogEntry` is one record of a job's logger, kept with the job so
its panel and ``handle.logs`` show it; :class:`JobHost` is what the env hands
each job to report to.
"""

from __future__ import annotations

import enum
import logging
import os
import traceback as tb
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .errors import DataValidationError
from .spec import JobSpec

if TYPE_CHECKING:
    from ._livejob import LiveJob
    from .spec import JobSpec

    pass


class JobStatus(str, enum.Enum):
    """Where a job is in its life; statuses are only ever appended."""

    REQUESTED = "requested"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        """Whether this status ends the job."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

    def __str__(self) -> str:
        return self.value


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class JobHost(Protocol):
    """What a job reports to, and asks of, the env that runs it.

    The env hands each job one (``LiveEnv.job_host``), so a job never calls up
    into the env's own code: a status change is recorded in the vault, a value
    refused by a tag's type is recorded as a validation failure, and a child
    job (``job.invoke``) is started, all through this object.
    """

    def status_changed(self, job: LiveJob, status: JobStatus) -> None: ...

    def validation_failed(self, job: LiveJob, error: DataValidationError) -> None: ...

    def start_child(
        self,
        spec: JobSpec,
        options: Any,
        *,
        parent_id: str,
        before_launch: Callable[[LiveJob], None],
    ) -> LiveJob: ...


@dataclass(frozen=True)
class LogEntry:
    """One record of a job's logger."""

    time: float
    level: str
    message: str

    def __str__(self) -> str:
        return f"{self.level} {self.message}"


class _Keeper(logging.Handler):
    def __init__(self, entries: deque[LogEntry]) -> None:
        super().__init__(logging.DEBUG)
        self.entries = entries

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:
            msg = str(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            msg += "\n" + "".join(tb.format_exception(*record.exc_info)).rstrip()
        self.entries.append(LogEntry(record.created, record.levelname, msg))


_jobs_logger = logging.getLogger("livestack_nb.jobs")


class _JobLogger(logging.Logger):
    """A job's logger: what its processor logs once the job is cancelled raises
    :class:`JobCancelled` instead (a call into the job, where a cancel reaches it).

    Not registered with logging's manager: a long session starts many jobs and
    registered loggers are never freed. Records still propagate to
    "livestack_nb.jobs" so users' logging configuration sees them.
    """

    def __init__(self, job: LiveJob) -> None:
        super().__init__(f"livestack_nb.jobs.{job.spec.name}.{job.job_id}", logging.DEBUG)
        self.parent = _jobs_logger
        self.addHandler(_Keeper(job._log_entries))
        self._job = weakref.ref(job)  # not a cycle: a forgotten job is freed without the gc

    def handle(self, record: logging.LogRecord) -> None:
        # Only the processor's own records: livestack-nb logs to the job while
        # it cancels it (a failing subscriber, say), and raising there would
        # stop the cancel half way.
        job = self._job()
        if job is not None and not record.pathname.startswith(_PACKAGE_DIR):
            job._check_cancelled()
        super().handle(record)
