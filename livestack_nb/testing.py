"""Helpers for testing code that uses livestack-nb (shipped, like RxPY's).

Live systems finish things on other threads; tests should wait for a
condition with a bound, never sleep and hope. These helpers do that, collect
what an observable emits, and give each test a fresh env that is closed
afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import reactivex

from .env import LiveEnv
from .errors import WaitTimeout
from .stream import set_clock

__all__ = ["VirtualClock", "collect", "fresh_env", "livestack_threads", "virtual_clock", "wait_until"]

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 5.0,
    interval: float = 0.005,
    message: str | None = None,
) -> T:
    """Return ``predicate()``'s first truthy value, polling for at most ``timeout`` s.

    Raises
    ------
    WaitTimeout
        The condition did not hold in time (``message`` says which).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", "condition")
            raise WaitTimeout(f"{what} did not hold within {timeout}s")
        time.sleep(interval)


def collect(source: reactivex.Observable[Any], timeout: float = 5.0) -> list[Any]:
    """Subscribe, wait for completion, and return every value (errors re-raised)."""
    values: list[Any] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def on_error(e: Exception) -> None:
        errors.append(e)
        done.set()

    sub = source.subscribe(values.append, on_error, done.set)
    try:
        if not done.wait(timeout):
            raise WaitTimeout(
                f"the observable did not complete within {timeout}s ({len(values)} values so far)"
            )
    finally:
        sub.dispose()
    if errors:
        raise errors[0]
    return values


@contextmanager
def fresh_env(**kwargs: Any) -> Iterator[LiveEnv]:
    """A new env selected for the block, closed after it."""
    env = LiveEnv(**kwargs)
    try:
        with env:
            yield env
    finally:
        env.close()


def livestack_threads() -> list[threading.Thread]:
    """The live threads livestack-nb started (workers and loops)."""
    return [t for t in threading.enumerate() if t.name.startswith("livestack")]


class VirtualClock:
    """A clock that only moves when told to; see :func:`virtual_clock`."""

    def __init__(self, start: float = 0.0) -> None:
        self.time = float(start)

    def __call__(self) -> float:
        return self.time

    def advance(self, seconds: float) -> float:
        """Move the clock forward and return the new time."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self.time += seconds
        return self.time


@contextmanager
def virtual_clock(start: float = 0.0) -> Iterator[VirtualClock]:
    """Stamp datapoints and statuses with a virtual time inside the block.

    Makes timestamps, rates and anything derived from them deterministic::

        with virtual_clock(start=0) as clock:
            job.feed(1)          # stamped 0.0
            clock.advance(2.5)
            job.feed(2)          # stamped 2.5
    """
    clock = VirtualClock(start)
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)
