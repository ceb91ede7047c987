"""A worker's slots: ``concurrency`` seats, each held by one job from when it
starts running until it ends.

Why a module of its own: a job's recorded status must say when it really had
a place in the kitchen (``requested`` while it waits for one, ``running`` only
once a slot took it), or a timeline of jobs could never show the limit.
Processor jobs get this from how they run (a sync one holds a pool thread for
its whole life, an async one a semaphore). Map and flat-map jobs run chunk by
chunk on whichever thread delivers, holding no thread between chunks; so they
hold a slot here instead: a job launched while every slot is held waits,
its input queued, and is launched when a job holding a slot ends (oldest
waiting first). Like a processor, a map job that never ends keeps its slot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

__all__ = ["Slots"]


class _Job(Protocol):
    _finished: bool  # LiveJob's: its status is done


class Slots:
    """``size`` seats for jobs; :meth:`take` one or wait in line, :meth:`release` on the end.

    Parameters
    ----------
    size:
        How many jobs may hold a slot at once (the worker's ``concurrency``).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._holders: set[object] = set()
        self._waiting: dict[object, Callable[[], None]] = {}  # in arrival order

    def take(self, job: _Job, launch: Callable[[], None]) -> bool:
        """Whether ``job`` holds a slot now; if not, ``launch`` is called when it is
        given one (a job that ended meanwhile gets none)."""
        with self._lock:
            if job._finished:
                return False
            if job in self._holders:
                return True  # handed over by release()
            if len(self._holders) < self.size:
                self._holders.add(job)
                return True
            self._waiting[job] = launch
            return False

    def release(self, job: object) -> None:
        """``job`` ended: free its slot for the oldest waiting job (launched here),
        or drop it from the line if it never held one."""
        with self._lock:
            if job not in self._holders:
                self._waiting.pop(job, None)
                return
            self._holders.discard(job)
            if not self._waiting:
                return
            nxt = next(iter(self._waiting))
            launch = self._waiting.pop(nxt)
            self._holders.add(nxt)  # handed over: no job started meanwhile takes it first
        launch()

    @property
    def held(self) -> int:
        """How many jobs hold a slot."""
        with self._lock:
            return len(self._holders)

    @property
    def waiting(self) -> int:
        """How many jobs wait for one."""
        with self._lock:
            return len(self._waiting)
