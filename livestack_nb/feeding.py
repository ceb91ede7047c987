"""Feeding a job from an iterable on a background thread, with progress.

``feed_many(generator)`` holds the cell until the generator is used up, and
200,000 ``feed`` calls hold it for seconds; ``job.feed_from(iterable)``
returns at once. A thread reads the iterable and hands it on in chunks
through the input's public ``feed_many`` (so validation, batching and
backpressure are exactly those of a cell's feed), and a :class:`Feeding`
handle says how far it got (count, rate, ETA when the length is known), can
be cancelled, and keeps the error that stopped it. The JobPanel shows the
feedings of its job (see :func:`feedings_of`).
"""

from __future__ import annotations

import itertools
import operator
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from .errors import LivestackError, WaitTimeout

__all__ = ["Feeding", "feedings_of", "start_feeding"]

#: Most values handed on in one ``feed_many``.
CHUNK = 1000
#: Longest a value read from the iterable waits before it is handed on (seconds).
LINGER = 0.05

_ids = itertools.count(1)
# The feedings of each input stream, for the widgets that show them; weak, so a
# forgotten job's stream is freed with its feedings.
_by_stream: weakref.WeakKeyDictionary[Any, list[Feeding]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def feedings_of(stream: Any) -> list[Feeding]:
    """The feedings started on an input ``stream``, oldest first."""
    with _lock:
        return list(_by_stream.get(stream, ()))


class Feeding:
    """A background feed of one input tag: progress, cancel, wait, error.

    Attributes
    ----------
    count:
        Values fed so far.
    total:
        How many the iterable holds, when it says (``len()`` or a length
        hint), else ``None``.
    error:
        What stopped the feed (a value that does not fit its tag, the input
        ended, the iterable raised), or ``None``.
    """

    def __init__(self, feed_many: Callable[[list[Any]], None], values: Iterable[Any], *, tag: str,
                 end: Callable[[], None] | None, chunk: int) -> None:  # fmt: skip
        self.id = next(_ids)
        self.tag = tag
        self.count = 0
        hint = operator.length_hint(values, -1)
        self.total: int | None = hint if hint >= 0 else None
        self.error: BaseException | None = None
        self.cancelled = False
        self.started = time.monotonic()
        self.finished: float | None = None
        self._feed_many = feed_many
        self._values = values
        self._end = end
        self._chunk = chunk
        self._stop = threading.Event()
        self._done = threading.Event()
        self._cond = threading.Condition()
        self._buf: list[Any] = []
        self._read_done = False
        self._read_error: BaseException | None = None
        # a list, tuple or range is never slow to give its next value: no reader thread
        self._sized = isinstance(values, (list, tuple, range))
        name = f"livestack-feed-{tag}-{self.id}"
        self._reader = threading.Thread(target=self._read, name=f"{name}-read", daemon=True)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- the threads --------------------------------------------------------------
    # A reader takes values from the iterable into a buffer; the feeder hands the
    # buffer on in chunks, as soon as a chunk is full or LINGER after it woke, so a
    # lone value from a slow source is not held back waiting for company, and a fast
    # source is fed in whole chunks. The buffer is bounded: a feed held up by its
    # vault holds the reader too.

    def _read(self) -> None:
        cond, limit = self._cond, 4 * self._chunk
        try:
            for v in self._values:
                with cond:
                    while len(self._buf) >= limit and not self._stop.is_set():
                        cond.wait(0.1)
                    if self._stop.is_set():
                        break
                    self._buf.append(v)
                    if len(self._buf) == self._chunk:
                        cond.notify_all()
        except BaseException as e:  # the iterable raised: kept, after what it gave is fed
            self._read_error = e
        finally:
            with cond:
                self._read_done = True
                cond.notify_all()

    def _run_sized(self) -> None:
        """Chunks cut directly from a list, tuple or range (never slow to give a value)."""
        it = iter(self._values)
        while not self._stop.is_set():
            chunk = list(itertools.islice(it, self._chunk))
            if not chunk:
                break
            self._feed_many(chunk)
            self.count += len(chunk)

    def _run(self) -> None:
        cond, n = self._cond, self._chunk
        try:
            if self._sized:
                self._run_sized()
            while not self._sized and not self._stop.is_set():
                with cond:
                    cond.wait_for(
                        lambda: len(self._buf) >= n or self._read_done or self._stop.is_set(), LINGER
                    )
                    if self._stop.is_set():
                        break
                    chunk = self._buf[:n]
                    del self._buf[:n]
                    last = self._read_done and not self._buf
                    cond.notify_all()
                if chunk:
                    self._feed_many(chunk)
                    self.count += len(chunk)
                if last:
                    break
            if self._read_error is not None:
                raise self._read_error
            if self._end is not None and not self._stop.is_set():
                self._end()
        except BaseException as e:  # kept on the handle: wait() raises it
            self.error = e
            self._stop.set()
        finally:
            self.finished = time.monotonic()
            with cond:
                self._buf = []
                cond.notify_all()
            self._done.set()

    # -- progress -------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether the feed stopped (used up, cancelled or failed)."""
        return self._done.is_set()

    @property
    def state(self) -> str:
        """``feeding``, ``done``, ``cancelled`` or ``failed``."""
        if not self._done.is_set():
            return "feeding"
        if self.error is not None:
            return "failed"
        return "cancelled" if self.cancelled else "done"

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Values per second since the start."""
        return self.count / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, when the total is known."""
        if self.total is None or self.done:
            return None if self.total is None else 0.0
        rate = self.rate
        return (self.total - self.count) / rate if rate > 0 else None

    def progress(self) -> dict[str, Any]:
        """What the JobPanel shows: tag, state, count, total, rate, ETA, error."""
        return {
            "id": self.id,
            "tag": self.tag,
            "state": self.state,
            "count": self.count,
            "total": self.total,
            "rate": round(self.rate, 1),
            "eta": None if self.eta is None else round(self.eta, 1),
            "error": "" if self.error is None else f"{type(self.error).__name__}: {self.error}",
        }

    # -- control ---------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop after the chunk being fed (values already fed stay fed; the input is not ended)."""
        if not self._done.is_set():
            self.cancelled = True
        self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the feed stops; raise what stopped it, if anything did.

        Raises
        ------
        WaitTimeout
            ``timeout`` seconds passed first (the feed goes on).
        """
        if not self._done.wait(timeout):
            raise WaitTimeout(
                f"feeding input {self.tag!r}: {self.count} values fed, still going after {timeout}s"
            )
        if self.error is not None:
            raise self.error

    def __repr__(self) -> str:
        of = f"/{self.total}" if self.total is not None else ""
        return f"<Feeding {self.tag!r} {self.state} {self.count}{of}>"


def start_feeding(
    stream: Any,
    feed_many: Callable[[list[Any]], None],
    values: Iterable[Any],
    *,
    tag: str,
    end: Callable[[], None] | None = None,
    chunk: int = CHUNK,
) -> Feeding:
    """Start a :class:`Feeding` of ``values`` through ``feed_many`` (registered under ``stream``)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise LivestackError(
            f"feed_from() on input {tag!r} takes an iterable of values, not {type(values).__name__}"
            + (" (feed a single string with feed())" if isinstance(values, (str, bytes)) else "")
        )
    if not isinstance(chunk, int) or chunk < 1:
        raise LivestackError(f"feed_from() on input {tag!r}: chunk must be a positive int, not {chunk!r}")
    f = Feeding(feed_many, values, tag=tag, end=end, chunk=chunk)
    with _lock:
        _by_stream.setdefault(stream, []).append(f)
    f._thread.start()
    if not f._sized:
        f._reader.start()
    return f
