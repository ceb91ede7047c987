"""Small helpers shared by the tests (no part of the library is replaced here)."""

from __future__ import annotations

import threading
from typing import Any

import reactivex

from livestack_nb.testing import wait_until


class Recorder:
    """Subscribes to an observable and records everything it sees, in order."""

    def __init__(self, source: reactivex.Observable[Any]) -> None:
        self.values: list[Any] = []
        self.error: Exception | None = None
        self.completed = False
        self._done = threading.Event()
        self.subscription = source.subscribe(
            on_next=self.values.append,
            on_error=self._on_error,
            on_completed=self._on_completed,
        )

    def _on_error(self, error: Exception) -> None:
        self.error = error
        self._done.set()

    def _on_completed(self) -> None:
        self.completed = True
        self._done.set()

    def wait_done(self, timeout: float = 5.0) -> Recorder:
        wait_until(self._done.is_set, timeout=timeout)
        return self
