"""Reading a stream as it comes, in plain Python: ``for``, ``async for``, ``next_value``.

Why a reader of its own rather than a subscription: a notebook user reads a
job's outputs with a loop (Livestack's ``for await (const x of job.output)``),
and a loop pulls, while a stream pushes on whichever thread produced. A
:class:`StreamReader` joins the two: it reads the history a stream still has
(from its first datapoint, from the vault when the vault is durable) page by
page, and queues what arrives live meanwhile; the loop takes from there.

Waiting never holds a lock the producer needs: the producer only appends to a
deque and releases a plain lock used as a wake-up flag (``release`` never
blocks), so a reader that stops waiting (a timeout, a ``KeyboardInterrupt``)
leaves nothing half done behind, and a lock acquire is interruptible by a
signal, so a blocked ``for`` loop stops at once on an interrupt.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from .errors import StreamEnded, WaitTimeout

if TYPE_CHECKING:
    from reactivex.disposable import Disposable

    from .stream import Chunk, DataStream

__all__ = ["StreamReader", "TruncatedHistoryWarning", "warn_missing", "warn_truncated"]


class TruncatedHistoryWarning(UserWarning):
    """A read of a stream could not be whole: memory no longer holds its oldest values.

    Only with a vault that is not durable (the memory vault): a durable one
    gives the whole stream back. Keep more with ``LiveEnv(history=...)``, use a
    durable vault, or ask for what memory holds with ``values(last=n)``.
    """


def warn_truncated(stream: DataStream, first: int, what: str) -> None:
    """Say that a read of ``stream`` starts at seq ``first``, not at 0."""
    warnings.warn(
        f"stream {stream.stream_id!r}: {what} starts at datapoint {first} of {len(stream)}: the "
        f"{first} before it are no longer held in memory (history={stream.history}). Keep more with "
        "LiveEnv(history=...), use a durable vault (vault='sqlite:///file.db'), or read what memory "
        "holds with values(last=n)",
        TruncatedHistoryWarning,
        stacklevel=_user_level(),
    )


def warn_missing(stream: DataStream, start: int, stop: int) -> None:
    """Say that datapoints ``[start, stop)`` of ``stream`` are neither in memory nor in its vault."""
    warnings.warn(
        f"stream {stream.stream_id!r}: datapoints {start}..{stop - 1} of {len(stream)} are no longer "
        "stored in the vault (a Redis vault keeps about `maxlen` entries per stream) nor held in "
        f"memory (history={stream.history}); the read goes on without them",
        TruncatedHistoryWarning,
        stacklevel=_user_level(),
    )


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_level() -> int:
    """The ``stacklevel`` of the first frame outside livestack-nb (where the read was written)."""
    frame = sys._getframe(2)
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class StreamReader:
    """One pass over a stream: its history, then its live values, until it ends.

    Made by ``iter(stream)``, ``aiter(stream)`` and ``stream.next_value()``;
    see :meth:`DataStream.__iter__`. Values are taken a batch at a time
    (:meth:`take`), so a loop pays little per value.
    """

    def __init__(self, stream: DataStream) -> None:
        self.stream = stream
        self._live: deque[Chunk] = deque()
        self._end: tuple[BaseException | None] | None = None
        # Held = nothing new; released by the producer when something arrives.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._waiters_lock = threading.Lock()
        self._batch: list[Any] = []
        self._i = 0
        self._turn = threading.Lock()  # next_value from several threads
        self._closed = False
        mark, self._subscription = stream.follow_chunks(self._on_chunk, self._on_end)
        self._history: Iterator[Chunk] | None = stream.chunks_before(mark, reader="iteration")

    # -- the producer's side (any thread) ------------------------------------

    def _on_chunk(self, chunk: Chunk) -> None:
        self._live.append(chunk)
        self._notify()

    def _on_end(self, error: BaseException | None) -> None:
        self._end = (error,)
        self._notify()

    def _notify(self) -> None:
        try:  # noqa: SIM105 - per chunk: a plain try costs less than contextlib.suppress
            self._wake.release()
        except RuntimeError:  # already released: a wake-up is pending
            pass
        if self._waiters:
            with self._waiters_lock:
                waiters, self._waiters = self._waiters, []
            for loop, fut in waiters:
                loop.call_soon_threadsafe(_resolve, fut)

    # -- the reader's side ---------------------------------------------------

    def _poll(self) -> list[Any] | None:
        """The next batch of values, ``[]`` if none yet, ``None`` once the stream ended
        (raising the error it ended with, if any)."""
        if self._i < len(self._batch):
            out = self._batch[self._i :] if self._i else self._batch
            self._batch, self._i = [], 0
            return out
        if self._history is not None:
            for chunk in self._history:
                if chunk.values:
                    return chunk.values
            self._history = None
        end = self._end  # read before the queue: the end comes after the last chunk
        live = self._live
        if live:
            return live.popleft().values
        if end is not None:
            self.close()
            if end[0] is not None:
                raise end[0]
            return None
        if self._closed:
            return None
        return []

    def take(self, timeout: float | None = None) -> list[Any] | None:
        """Block until values come; return them (a non-empty list), or ``None`` at the end.

        Raises
        ------
        WaitTimeout
            ``timeout`` seconds passed with nothing new.
        BaseException
            The error the stream ended with (``ls.JobFailed`` for a failed job's outputs).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            got = self._poll()
            if got is None or got:
                return got
            if deadline is None:
                self._wake.acquire()  # interruptible: a KeyboardInterrupt stops it here
            else:
                left = deadline - time.monotonic()
                if left <= 0 or not self._wake.acquire(timeout=left):
                    got = self._poll()
                    if got is None or got:
                        return got
                    raise WaitTimeout(
                        f"stream {self.stream.stream_id!r}: no new value within {timeout}s "
                        f"({len(self.stream)} emitted so far, the stream is still open)"
                    )

    async def atake(self, timeout: float | None = None) -> list[Any] | None:
        """:meth:`take` for coroutines: waits without blocking the event loop."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            got = self._poll()
            if got is None or got:
                return got
            fut: asyncio.Future[None] = loop.create_future()
            with self._waiters_lock:
                self._waiters.append((loop, fut))
            got = self._poll()  # anything that came before the waiter was in place
            if got is None or got:
                return got
            if deadline is None:
                await fut
                continue
            try:
                await asyncio.wait_for(fut, max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                got = self._poll()
                if got is None or got:
                    return got
                raise WaitTimeout(
                    f"stream {self.stream.stream_id!r}: no new value within {timeout}s "
                    f"({len(self.stream)} emitted so far, the stream is still open)"
                ) from None

    def next_value(self, timeout: float | None) -> Any:
        """One value; the rest of its batch is kept for the next call. Threads asking at
        once take turns (each value goes to one of them)."""
        with self._turn:
            got = self.take(timeout)
            return self._one(got)

    async def anext_value(self, timeout: float | None) -> Any:
        got = await self.atake(timeout)
        return self._one(got)

    def _one(self, got: list[Any] | None) -> Any:
        if got is None:
            raise StreamEnded(
                f"stream {self.stream.stream_id!r} has ended: all {len(self.stream)} of its values "
                "were returned"
            )
        if len(got) > 1:
            self._batch, self._i = got, 1
        return got[0]

    def close(self) -> None:
        """Stop following the stream (a loop left early does this when it is collected)."""
        if not self._closed:
            self._closed = True
            self._history = None
            sub: Disposable = self._subscription
            sub.dispose()


def iterate(stream: DataStream) -> Iterator[Any]:
    """``for v in stream``: every value from the first one held, until the stream ends."""
    reader = StreamReader(stream)
    take = reader.take
    try:
        while True:
            got = take(None)
            if got is None:
                return
            yield from got
    finally:
        reader.close()


async def aiterate(stream: DataStream) -> AsyncIterator[Any]:
    """``async for v in stream``; see :func:`iterate`."""
    reader = StreamReader(stream)
    try:
        while True:
            got = await reader.atake(None)
            if got is None:
                return
            for v in got:
                yield v
    finally:
        reader.close()
