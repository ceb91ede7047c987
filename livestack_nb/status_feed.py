"""Every status change of an env's jobs, pushed to whoever listens (the widgets).

A job's statuses are an append-only history, so a view of them need not look
again and again: it subscribes here once and is told each change as it
happens (from the thread that made it: keep listeners quick, a flag set and
a wake-up). ``env.status_feed`` is the env's feed; a job mirrored from
another process (run by a queue worker) is told here too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["StatusChange", "StatusFeed"]

log = logging.getLogger("livestack_nb")


class StatusChange(NamedTuple):
    """One job reached one status (``JobStatus.value``)."""

    job_id: str
    spec: str
    parent_id: str | None
    status: str


class StatusFeed:
    """Listeners of status changes; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: tuple[Callable[[StatusChange], None], ...] = ()

    def listen(self, listener: Callable[[StatusChange], None]) -> Callable[[], None]:
        """Call ``listener(change)`` on every status change from now on; returns a
        function that stops it (calling it twice is harmless)."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def stop() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return stop

    def publish(self, change: StatusChange) -> None:
        """Tell every listener (one that raises is logged, and the others are told)."""
        for listener in self._listeners:  # a snapshot: the tuple is replaced, never changed
            try:
                listener(change)
            except Exception:
                log.exception("a status listener failed")

    def __len__(self) -> int:
        return len(self._listeners)
