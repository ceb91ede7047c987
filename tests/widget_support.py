"""A fake comm for widget tests: records every message a widget would send to the browser."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import comm
from comm.base_comm import BaseComm

import livestack_nb as ls

HOSTILE = "<img src=x onerror=alert(1)>"  # shown as text everywhere, never as an element


def parse_and_explode() -> tuple[ls.JobSpec, ls.JobSpec]:
    """Two specs for a flow that fails: ``parse`` passes values on, ``explode``
    raises with the hostile string in its message."""

    @ls.job_spec
    def parse(x: int) -> int:
        return x

    @ls.job_spec
    def explode(x: int) -> int:
        raise ValueError(f"bad {HOSTILE}")

    return parse, explode


class RecordingComm(BaseComm):  # type: ignore[misc]
    """Keeps (time, msg_type, data) of every message instead of sending it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[tuple[float, str, Any]] = []
        self._lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def publish_msg(
        self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
    ) -> None:
        with self._lock:
            self.sent.append((time.monotonic(), msg_type, data))

    def custom(self) -> list[dict[str, Any]]:
        """The custom (live data) messages, in order."""
        with self._lock:
            return [
                d["content"]
                for _, kind, d in self.sent
                if kind == "comm_msg" and d and d.get("method") == "custom"
            ]

    def hello(self) -> None:
        """What the front end sends when a view opens: asks for a reset."""
        self.front({"type": "hello"})

    def front(self, content: dict[str, Any]) -> None:
        """A custom message from the front end (a button, a click)."""
        self.handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


@contextmanager
def recording_comms() -> Iterator[list[RecordingComm]]:
    """Every widget made inside gets a :class:`RecordingComm` (listed in creation order)."""
    made: list[RecordingComm] = []
    original = comm.create_comm

    def create(*args: Any, **kwargs: Any) -> RecordingComm:
        c = RecordingComm(*args, **kwargs)
        made.append(c)
        return c

    comm.create_comm = create
    try:
        yield made
    finally:
        comm.create_comm = original
