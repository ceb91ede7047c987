"""Holding a kernel interrupt while livestack-nb makes shared state.

A kernel interrupt is a SIGINT: Python raises ``KeyboardInterrupt`` in the main
thread wherever that thread is. Landing in the middle of setting a job up, it
would leave state half made: a job recorded but never launched ("requested"
for ever), or a worker thread counted but never started, so that every later
job of the spec waits for it. ``try``/``finally`` cannot close such windows
(the exception can land on the first line of the handler), so the few
sections that make shared state hold the signal instead and deliver it once
the state is whole.

Only livestack-nb's own code runs held, and it does not block: no user code
(options are validated before), no wait but for a thread to start.

Elsewhere on paths the main thread runs (feeding, ending, cancelling a job),
a lock is entered as itself, ``with lock:``, never through a
``threading.Condition`` made on it: a Condition's ``__enter__`` is Python code,
and an interrupt landing as it returns leaves the lock taken by a ``with``
block that never began, so nothing ever releases it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Held", "held_interrupts"]


class Held:
    """Whether an interrupt arrived while held (the section may then undo what it made)."""

    __slots__ = ("interrupted",)

    def __init__(self) -> None:
        self.interrupted = False

    def hold(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True


@contextmanager
def held_interrupts() -> Iterator[Held]:
    """Hold SIGINT inside the block; deliver it, to the handler there was, as the block ends.

    Off the main thread this does nothing: signals are only handled there.
    Nested blocks hand a held signal on to the outer one.
    """
    held = Held()
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # a handler set outside Python: it could not be put back
        yield held
        return
    try:
        signal.signal(signal.SIGINT, held.hold)
    except ValueError:  # not the main interpreter: no handler of its own either
        yield held
        return
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)
        if held.interrupted:
            # Raised now, by the handler the caller had (KeyboardInterrupt in a kernel).
            signal.raise_signal(signal.SIGINT)
