"""The worker's threads: at most ``concurrency`` daemon threads running submitted calls."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ._interrupt import held_interrupts

__all__ = ["Pool"]

log = logging.getLogger("livestack_nb")


class Pool:
    """At most ``size`` daemon threads running submitted calls.

    Daemon threads, unlike ``ThreadPoolExecutor``'s: the interpreter joins
    non-daemon threads *before* ``atexit`` runs, so a processor still waiting
    for input (or stuck in user code) would keep a kernel from ever exiting,
    and the env's own closing (which cancels jobs and flushes the vault) would
    never get to run. A thread is started whenever a call would otherwise wait
    for a busy one (up to ``size``). What a call raises is logged.
    """

    def __init__(self, size: int, prefix: str) -> None:
        self._size = size
        self._prefix = prefix
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._mutex = threading.RLock()  # entered as the lock itself: see _interrupt.py
        self._cond = threading.Condition(self._mutex)
        self._shut = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._mutex:
            if self._queued(fn, args):
                return
        # A thread counted but never started would hold its place for ever (with
        # concurrency=1, every later call would wait for it): it is counted and
        # started with a kernel interrupt held meanwhile.
        with held_interrupts():
            with self._mutex:
                if self._queued(fn, args):
                    return
                self._calls.append((fn, args))
                name = f"{self._prefix}_{len(self._threads)}"
                t = threading.Thread(target=self._serve, name=name, daemon=True)
                self._threads.append(t)
            t.start()

    def _queued(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
        """Queue the call if a thread will take it without a new one (the lock is held)."""
        if self._shut:
            raise RuntimeError(f"{self._prefix}: the worker has stopped")
        if self._idle > len(self._calls) or len(self._threads) >= self._size:
            self._calls.append((fn, args))
            self._cond.notify()
            return True
        return False

    def _serve(self) -> None:
        cond = self._cond
        while True:
            with self._mutex:
                while not self._calls and not self._shut:
                    self._idle += 1
                    try:
                        cond.wait()
                    finally:
                        self._idle -= 1
                if not self._calls:
                    return
                fn, args = self._calls.popleft()
            try:
                fn(*args)
            except BaseException:
                log.exception("%s: a call raised", self._prefix)
            del fn, args

    def shutdown(self) -> None:
        """Drop calls not yet started; threads end once their call returns."""
        with self._mutex:
            self._shut = True
            self._calls.clear()
            self._cond.notify_all()

    def threads(self) -> list[threading.Thread]:
        with self._mutex:
            return list(self._threads)
