"""One thread per kernel that decides when each live widget may send.

Why a single pump: jobs push values from worker threads and the env's loop
at any rate. If each push sent a comm message, a source at 100,000 events/s
would flood the browser and hit Jupyter's iopub limit. Instead listeners
only record what changed (cheap, on the producing thread) and mark the widget
dirty; this pump wakes at most ``TICK`` times a second and lets each dirty
widget send one message, no more often than its own interval, and never more
than the kernel-wide budget. Whatever arrived meanwhile is folded into that
one message. The thread exits when no widget is left.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

__all__ = ["KERNEL_BUDGET", "PER_WIDGET_RATE", "Pump", "Pumped", "pump"]

#: Messages a second one widget may send (live data).
PER_WIDGET_RATE = 30.0
#: Messages a second all widgets of a kernel may send together (iopub's limit is 1,000).
KERNEL_BUDGET = 200.0
#: How often the static snapshot of a widget may be refreshed, a second.
SNAPSHOT_RATE = 2.0

TICK = 1.0 / 60.0

log = logging.getLogger("livestack_nb")


class Pumped(Protocol):
    """What the pump needs from a widget."""

    def pump_due(self, now: float) -> bool:
        """Whether the widget has something to send and its interval has passed."""

    def pump_flush(self, now: float) -> int:
        """Send what is pending; return how many messages were sent."""


class Pump:
    """Schedules the sends of every registered widget (see the module docstring).

    Parameters
    ----------
    budget:
        Kernel-wide messages a second.
    """

    def __init__(self, budget: float = KERNEL_BUDGET) -> None:
        self.budget = budget
        self._widgets: list[Pumped] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._tokens = budget / 10
        self._refill_at = time.monotonic()
        self.sent = 0

    def add(self, widget: Pumped) -> None:
        """Start scheduling ``widget`` (and the thread, if it is not running)."""
        with self._cond:
            if widget not in self._widgets:
                self._widgets.append(widget)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lsnb-widget-pump", daemon=True)
                self._thread.start()
            self._cond.notify()

    def remove(self, widget: Pumped) -> None:
        """Stop scheduling ``widget``; the thread ends after the last one."""
        with self._cond:
            if widget in self._widgets:
                self._widgets.remove(widget)
            self._cond.notify()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the thread to end (after the last widget was removed)."""
        t = self._thread
        if t is not None:
            t.join(timeout)

    def _take_tokens(self, now: float) -> None:
        # A token bucket: up to a tenth of a second's budget can be spent at once.
        self._tokens = min(self.budget / 10, self._tokens + (now - self._refill_at) * self.budget)
        self._refill_at = now

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._widgets:
                    self._thread = None
                    return
                widgets = list(self._widgets)
            start = time.monotonic()
            self._take_tokens(start)
            # Start with a different widget each tick so a tight budget is shared fairly.
            k = int(start / TICK) % len(widgets)
            for w in widgets[k:] + widgets[:k]:
                if self._tokens < 1:
                    break
                try:
                    if w.pump_due(start):
                        n = w.pump_flush(start)
                        self._tokens -= n
                        self.sent += n
                except Exception:  # a broken widget must not stop the others
                    log.exception("a widget failed to send; it is no longer updated")
                    self.remove(w)
            with self._cond:
                if self._widgets:
                    self._cond.wait(max(0.0, TICK - (time.monotonic() - start)))


pump = Pump()
