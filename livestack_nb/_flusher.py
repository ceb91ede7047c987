"""The flusher: one thread per env pushing what streams buffered, at most ``FLUSH_AFTER`` later."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING

from ._interrupt import held_interrupts
from ._limits import FLUSH_AFTER
from .errors import JobClosedError

if TYPE_CHECKING:
    from .stream import DataStream

__all__ = ["Flusher"]

log = logging.getLogger("livestack_nb")


class Flusher:
    """Pushes what streams buffered at most ``FLUSH_AFTER`` seconds after it came.

    One per env, with a thread (``livestack-flush-<env>``) started on first
    use and joined by :meth:`close`. A stream hands itself over when its
    buffer gets its first value (:meth:`due`); the thread waits
    ``FLUSH_AFTER``, then flushes every stream handed over meanwhile. It never
    waits for room (it is one of livestack-nb's own threads), so a slow job
    cannot hold the trickle of another.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._due: deque[weakref.ReferenceType[DataStream]] = deque()
        # The thread's wake-up: a lock held while there is nothing to do, released
        # by ``due`` (a plain lock, not an Event: an Event's ``set`` enters a
        # Condition in Python code, where a kernel interrupt can leave it locked).
        self._gate = threading.Lock()
        self._gate.acquire()
        self._armed = False
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()

    def due(self, stream: DataStream) -> None:
        """``stream`` has buffered values: flush it soon."""
        if self._closed:
            stream.flush()
            return
        self._due.append(weakref.ref(stream))  # weakly: a stream nothing else holds has no reader
        if not self._armed:
            self._open_gate()
            self._armed = True
        if self._thread is None:
            self._start()

    def _open_gate(self) -> None:
        try:  # noqa: SIM105 (a plain try: contextlib.suppress exits in Python code, interruptible)
            self._gate.release()
        except RuntimeError:
            pass  # open already

    def _start(self) -> None:
        # Held: a thread counted here but never started would flush nothing.
        with held_interrupts(), self._lock:
            if self._thread is not None or self._closed:
                return
            t = threading.Thread(target=self._run, name=f"livestack-flush-{self.name}", daemon=True)
            t.start()
            self._thread = t

    def _run(self) -> None:
        due = self._due
        while True:
            self._gate.acquire()
            if self._closed:
                break
            time.sleep(FLUSH_AFTER)
            self._armed = False
            self._flush(len(due))
        self._flush(len(due))

    def flush_now(self) -> None:
        """Push what every stream handed over has buffered, now, on this thread (``env.flush()``).

        The streams stay handed over: the thread may be flushing one of them
        meanwhile, and a stream is flushed under its own lock, so once this
        returns every value appended before the call has been pushed.
        """
        for ref in list(self._due):
            stream = ref()
            if stream is not None:
                stream.flush()  # (an ended stream's end took its buffer: nothing to push)

    def _flush(self, n: int) -> None:
        due = self._due
        for _ in range(n):
            try:
                stream = due.popleft()()
            except IndexError:
                return
            if stream is None:
                continue
            try:
                stream.flush()
            except JobClosedError:
                pass  # ended meanwhile (its end took the buffer, or a cancel dropped it)
            except Exception:
                log.exception("flushing stream %r failed", stream.stream_id)

    def close(self) -> None:
        """Flush what is due and stop the thread (later buffers flush at once)."""
        with self._lock:
            self._closed = True
            t = self._thread
        self._open_gate()
        if t is not None and t is not threading.current_thread():
            t.join(5.0)
