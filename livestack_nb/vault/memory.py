"""The default vault: everything in this process's memory, gone with it.

Also the reference implementation of the contract and the test double the
other vaults are compared against. Datapoints are bounded per stream so a
long-running session does not grow without limit.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

from .base import (
    DatapointRecord,
    JobRecord,
    StatusRecord,
    StreamRecord,
    ValidationFailureRecord,
    Vault,
)

__all__ = ["MemoryVault"]


class MemoryVault(Vault):
    """A vault in memory; ``max_datapoints`` bounds what it keeps per stream."""

    durable = False

    def __init__(self, max_datapoints: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, JobRecord] = {}
        self._statuses: dict[str, list[StatusRecord]] = {}
        self._streams: dict[str, list[StreamRecord]] = {}
        self._points: dict[str, deque[DatapointRecord]] = {}
        self._children: dict[str, list[str]] = {}
        self._failures: deque[ValidationFailureRecord] = deque(maxlen=max_datapoints)
        self.max_datapoints = max_datapoints

    def add_job(self, record: JobRecord) -> None:
        with self._lock:
            self._jobs[record.job_id] = record
            self._statuses[record.job_id] = [StatusRecord(record.job_id, record.status, record.created)]

    def add_status(self, record: StatusRecord) -> None:
        with self._lock:
            job = self._jobs.get(record.job_id)
            if job is None:
                raise KeyError(f"unknown job {record.job_id!r}")
            self._statuses[record.job_id].append(record)
            self._jobs[record.job_id] = replace(job, status=record.status)

    def statuses(self, job_id: str) -> list[StatusRecord]:
        with self._lock:
            return list(self._statuses.get(job_id, ()))

    def jobs(self) -> list[JobRecord]:
        with self._lock:
            return list(self._jobs.values())

    def job(self, job_id: str) -> JobRecord | None:
        return self._jobs.get(job_id)

    def forget(self, job_ids: Sequence[str]) -> None:
        """Drop the records of jobs the env forgot: in memory, nothing is kept for ever."""
        with self._lock:
            for job_id in job_ids:
                self._jobs.pop(job_id, None)
                self._statuses.pop(job_id, None)
                for r in self._streams.pop(job_id, ()):
                    self._points.pop(r.stream_id, None)
                self._children.pop(job_id, None)

    def add_stream(self, record: StreamRecord) -> None:
        with self._lock:
            self._streams.setdefault(record.job_id, []).append(record)

    def streams(self, job_id: str) -> list[StreamRecord]:
        with self._lock:
            return list(self._streams.get(job_id, ()))

    def add_datapoints(self, records: Sequence[DatapointRecord]) -> None:
        with self._lock:
            for r in records:
                q = self._points.get(r.stream_id)
                if q is None:
                    q = self._points[r.stream_id] = deque(maxlen=self.max_datapoints)
                q.append(r)

    def datapoints(self, stream_id: str, after: int = -1, limit: int | None = None) -> list[DatapointRecord]:
        with self._lock:
            out = [r for r in self._points.get(stream_id, ()) if r.seq > after]
        return out if limit is None else out[:limit]

    def add_child(self, parent_id: str, child_id: str) -> None:
        with self._lock:
            self._children.setdefault(parent_id, []).append(child_id)

    def children(self, job_id: str) -> list[str]:
        with self._lock:
            return list(self._children.get(job_id, ()))

    def add_validation_failure(self, record: ValidationFailureRecord) -> None:
        with self._lock:
            self._failures.append(record)

    def validation_failures(self, job_id: str | None = None) -> list[ValidationFailureRecord]:
        with self._lock:
            return [r for r in self._failures if job_id is None or r.job_id == job_id]
