"""The window engines: which values fall in which window, and when a window closes.

Pure Python and free of jobs and threads, so each kind can be checked against
pandas on the same data. An engine takes batches of ``(key, value)`` (and a
time per value for time windows), appends closed windows to ``out`` as dicts
``{"key", "start", "end", **aggregates}`` and values that came too late to
``late``; ``close_all()`` is the end of input. Results never depend on how the
values were batched: the watermark advances value by value.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import numbers
from collections import deque
from collections.abc import Callable, Sequence
from itertools import count as counter
from typing import Any

from .agg import Agg
from .errors import LivestackError

__all__ = ["CountWindows", "Engine", "SessionWindows", "TimeWindows", "aggregate", "projection"]

SPILL = 65_536
"""A time or session window folds its held values into its aggregates' accumulators
once it holds this many, so its memory stays bounded (see :mod:`livestack_nb.agg`)."""


def aggregate(
    aggs: Sequence[tuple[str, Agg]], items: list[Any], accs: list[Any] | None = None, projected: bool = False
) -> dict[str, Any]:
    """The aggregates of a window's items (with what earlier spills folded in ``accs``).

    ``projected``: the items already are the one column every aggregate reads.
    """
    if accs is None:
        if projected:
            return {name: a.over(items) for name, a in aggs}
        return {name: a.over(a.column(items)) for name, a in aggs}
    for (_, a), acc in zip(aggs, accs, strict=True):
        acc.add_many(items if projected else a.column(items))
    return {name: acc.result() for (name, _), acc in zip(aggs, accs, strict=True)}


def projection(aggs: Sequence[tuple[str, Agg]]) -> Agg | None:
    """The aggregate whose column every aggregate can read, if there is one: then a
    window keeps only that column of each value (less to hold, nothing to extract
    again per window). ``count`` reads any column."""
    others = [a for _, a in aggs if a.kind != "count"]
    fields = {a.field if isinstance(a.field, str) or a.field is None else id(a.field) for a in others}
    if len(fields) != 1 or not isinstance(next(iter(fields)), str):
        return None
    return others[0]


class Engine:
    """What every window kind shares: the aggregates, the outputs, the counts."""

    def __init__(self, aggs: Sequence[tuple[str, Agg]]) -> None:
        self.aggs = list(aggs)
        self.out: list[dict[str, Any]] = []
        self.late: list[Any] = []
        self.windows = 0  # closed so far
        self.projected = False  # set by whoever pushes: the values already are one column

    def emit(self, key: Any, start: Any, end: Any, items: list[Any], accs: list[Any] | None = None) -> None:
        row = {"key": key, "start": start, "end": end}
        row.update(aggregate(self.aggs, items, accs, self.projected))
        self.out.append(row)
        self.windows += 1

    def _column(self, a: Agg, items: list[Any]) -> list[Any]:
        return items if self.projected else a.column(items)

    def push(
        self,
        keys: Sequence[Any],
        items: Sequence[Any],
        times: Sequence[float] | None,
        originals: Sequence[Any] | None = None,
    ) -> None:
        """Take a batch: each item's key, the item (what the aggregates read), its time;
        ``originals`` are what a late item is reported as (default: the items)."""
        raise NotImplementedError

    def advance(self, now: float) -> None:
        """Processing time moved on to ``now`` with no value: close what is due."""

    def deadline(self) -> float | None:
        """When the next window closes by the clock alone (processing time), if any."""
        return None

    def close_all(self) -> None:
        raise NotImplementedError

    @property
    def open_windows(self) -> int:
        raise NotImplementedError


# -- count windows ------------------------------------------------------------------


class CountWindows(Engine):
    """Per key, windows of ``size`` consecutive values starting every ``slide`` values.

    Window starts are multiples of ``slide`` counted from each key's first
    value (position 0); the window ``[s, s + size)`` closes with its last value,
    so a sliding window emits every ``slide`` values the last ``size`` (fewer
    at the start). ``start``/``end`` are the positions of its first value and
    one past its last. The end of input closes every window holding values.
    """

    def __init__(self, aggs: Sequence[tuple[str, Agg]], size: int, slide: int) -> None:
        super().__init__(aggs)
        self.size = size
        self.slide = slide
        self.tumbling = slide == size
        self.bufs: dict[Any, list[Any]] = {}  # tumbling: the open window's values
        self.first: dict[Any, int] = {}  # tumbling: position of its first value
        self.recent: dict[Any, deque[Any]] = {}  # sliding: the last ``size`` values
        self.seen: dict[Any, int] = {}  # sliding: how many values of the key

    def push(
        self,
        keys: Sequence[Any],
        items: Sequence[Any],
        times: Sequence[float] | None = None,
        originals: Sequence[Any] | None = None,
    ) -> None:
        size = self.size
        if self.tumbling:
            bufs = self.bufs
            for k, v in zip(keys, items, strict=True):
                b = bufs.get(k)
                if b is None:
                    b = bufs[k] = []
                    self.first.setdefault(k, 0)
                b.append(v)
                if len(b) == size:
                    s = self.first[k]
                    self.emit(k, s, s + size, b)
                    bufs[k] = []
                    self.first[k] = s + size
            return
        slide, recent, seen = self.slide, self.recent, self.seen
        for k, v in zip(keys, items, strict=True):
            d = recent.get(k)
            if d is None:
                d = recent[k] = deque(maxlen=size)
                seen[k] = 0
            d.append(v)
            n = seen[k] = seen[k] + 1
            if (n - size) % slide == 0:
                self.emit(k, n - len(d), n, list(d))

    def close_all(self) -> None:
        if self.tumbling:
            for k, b in self.bufs.items():
                if b:
                    s = self.first[k]
                    self.emit(k, s, s + len(b), b)
            self.bufs.clear()
            return
        size, slide = self.size, self.slide
        for k, d in self.recent.items():
            n = self.seen[k]
            held = list(d)
            lo = n - len(held)  # position of held[0]
            s = (n - size) // slide * slide + slide  # the first window still open
            while s < n:
                start = max(s, 0)
                self.emit(k, start, n, held[start - lo :])
                s += slide
        self.recent.clear()

    @property
    def open_windows(self) -> int:
        if self.tumbling:
            return sum(1 for b in self.bufs.values() if b)
        return len(self.recent) * -(-self.size // self.slide)


# -- time windows ---------------------------------------------------------------------


class _Window:
    __slots__ = ("accs", "items")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.accs: list[Any] | None = None


class _ByTime(Engine):
    """Time windows and sessions: a watermark, and a heap of close times ordered first.

    A subclass keeps ``heap`` (entries whose first item is a close time) and
    ``watermark``, and closes what is due in ``_close``; the clock and the end of
    input drive both kinds the same way.
    """

    heap: list[Any]
    watermark: float

    def _close(self, w: float) -> None:
        raise NotImplementedError

    def advance(self, now: float) -> None:
        if now > self.watermark:
            self.watermark = now
        self._close(self.watermark)

    def deadline(self) -> float | None:
        return self.heap[0][0] if self.heap else None

    def close_all(self) -> None:
        self._close(math.inf)


class TimeWindows(_ByTime):
    """Windows ``[s, s + size)`` with ``s`` a multiple of ``slide`` (aligned to 0).

    ``lateness`` is how far behind the newest time seen a value may be: the
    watermark is that newest time minus ``lateness``, and a window closes once
    the watermark reaches its end. A value whose every window had closed is
    late: it goes to ``late`` (and is counted), never into a window. With
    processing time the caller passes the clock as each value's time (no
    value is ever late) and calls :meth:`advance` when the clock moves on.
    """

    def __init__(
        self, aggs: Sequence[tuple[str, Agg]], size: float, slide: float, lateness: float = 0.0
    ) -> None:
        super().__init__(aggs)
        self.size = size
        self.slide = slide
        self.lateness = lateness
        self.tumbling = slide == size
        self.wins: dict[tuple[Any, float], _Window] = {}
        self.heap: list[tuple[float, int, Any, float]] = []
        self.order = counter()
        self.watermark = -math.inf
        self.spill = SPILL

    def _starts(self, t: float) -> list[float]:
        """The starts of the windows holding time ``t``, newest first.

        Counted in whole slides, with a time a rounding error (a few units in
        the last place) short of a boundary taken as on it: ``0.3 / 0.1`` is
        ``2.9999999999999996``, and 0.3 s belongs to the window from 0.3 s, as
        in pandas' whole nanoseconds.
        """
        slide = self.slide
        x = t / slide
        j = round(x)
        tol = 16 * math.ulp(max(abs(x), 1.0))
        if abs(x - j) > tol:
            j = math.floor(x)
        if self.tumbling:
            return [j * slide]
        out = []
        reach = self.size / slide - tol
        i = j
        while x - i < reach:
            out.append(i * slide)
            i -= 1
        return out

    def push(
        self,
        keys: Sequence[Any],
        items: Sequence[Any],
        times: Sequence[float] | None,
        originals: Sequence[Any] | None = None,
    ) -> None:
        assert times is not None
        src = items if originals is None else originals
        wins, size, lateness = self.wins, self.size, self.lateness
        w = self.watermark
        for i, (k, v, t) in enumerate(zip(keys, items, times, strict=True)):
            missed = False
            for s in self._starts(t):
                e = s + size
                if e <= w:
                    missed = True
                    continue
                win = wins.get((k, s))
                if win is None:
                    win = wins[(k, s)] = _Window()
                    heapq.heappush(self.heap, (e, next(self.order), k, s))
                win.items.append(v)
                if len(win.items) >= self.spill:
                    self._spill(win)
            if missed:
                self.late.append(src[i])
            if t - lateness > w:
                w = t - lateness
        self.watermark = w
        self._close(w)

    def _spill(self, win: _Window) -> None:
        if win.accs is None:
            win.accs = [a.accumulator() for _, a in self.aggs]
        for (_, a), acc in zip(self.aggs, win.accs, strict=True):
            acc.add_many(self._column(a, win.items))
        win.items = []

    def _close(self, w: float) -> None:
        heap, wins = self.heap, self.wins
        while heap and heap[0][0] <= w:
            e, _, k, s = heapq.heappop(heap)
            win = wins.pop((k, s))
            self.emit(k, s, e, win.items, win.accs)

    @property
    def open_windows(self) -> int:
        return len(self.wins)


# -- session windows --------------------------------------------------------------------


class _Session:
    __slots__ = ("accs", "arrivals", "items", "last", "order", "start")

    def __init__(self, t: float, order: int) -> None:
        self.start = t
        self.last = t
        self.items: list[Any] = []
        self.arrivals: list[int] = []
        self.accs: list[Any] | None = None
        self.order = order


class SessionWindows(_ByTime):
    """Per key, values no further than ``gap`` apart form one session.

    A session closes once the watermark (newest time minus ``lateness``) is
    past its last value plus ``gap``: no value that is not late can join it
    then. A value older than the watermark that joins no open session is
    late. ``start``/``end`` are the times of the session's first and last
    value; two sessions bridged by an out-of-order value merge (values in
    arrival order). With ``gap`` counted in values, time is each value's
    position in the stream (all keys together).
    """

    def __init__(self, aggs: Sequence[tuple[str, Agg]], gap: float, lateness: float = 0.0) -> None:
        super().__init__(aggs)
        self.gap = gap
        self.lateness = lateness
        self.open: dict[Any, list[_Session]] = {}
        self.heap: list[tuple[float, int, Any]] = []  # (close time, order, key); stale entries skipped
        self.order = counter()
        self.arrival = counter()
        self.watermark = -math.inf

    def push(
        self,
        keys: Sequence[Any],
        items: Sequence[Any],
        times: Sequence[float] | None,
        originals: Sequence[Any] | None = None,
    ) -> None:
        assert times is not None
        src = items if originals is None else originals
        gap, lateness, sessions = self.gap, self.lateness, self.open
        w = self.watermark
        for i, (k, v, t) in enumerate(zip(keys, items, times, strict=True)):
            mine = sessions.get(k)
            if mine is None:
                mine = sessions[k] = []
            # only sessions still open (last + gap >= watermark) take values
            joined = [s for s in mine if s.last + gap >= w and s.start - gap <= t <= s.last + gap]
            if not joined:
                if t < w:
                    self.late.append(src[i])
                    continue
                s = _Session(t, next(self.order))
                mine.append(s)
            else:
                s = joined[0]
                for other in joined[1:]:  # an out-of-order value bridged two sessions
                    self._merge(s, other)
                    mine.remove(other)
            s.items.append(v)
            s.arrivals.append(next(self.arrival))
            if t < s.start:
                s.start = t
            if t > s.last:
                s.last = t
            heapq.heappush(self.heap, (s.last + gap, s.order, k))
            if len(s.items) >= SPILL and len(joined) <= 1:
                self._spill(s)
            if t - lateness > w:
                w = t - lateness
        self.watermark = w
        self._close(w)

    def _merge(self, into: _Session, other: _Session) -> None:
        if other.accs is not None or into.accs is not None:
            for s in (into, other):
                if s.accs is None:
                    self._spill(s)
            assert into.accs is not None and other.accs is not None
            # arrival order is lost once folded: fold the other's remainder in after
            self._spill(other)
            for mine, theirs in zip(into.accs, other.accs, strict=True):
                mine.merge(theirs)
        else:
            both = sorted(
                zip(into.arrivals + other.arrivals, into.items + other.items, strict=True), key=lambda p: p[0]
            )
            into.arrivals = [a for a, _ in both]
            into.items = [v for _, v in both]
        into.start = min(into.start, other.start)
        into.last = max(into.last, other.last)
        into.order = min(into.order, other.order)

    def _spill(self, s: _Session) -> None:
        if s.accs is None:
            s.accs = [a.accumulator() for _, a in self.aggs]
        for (_, a), acc in zip(self.aggs, s.accs, strict=True):
            acc.add_many(self._column(a, s.items))
        s.items, s.arrivals = [], []

    def _close(self, w: float) -> None:
        heap, gap = self.heap, self.gap
        due: list[tuple[float, int, Any, _Session]] = []
        taken: set[int] = set()
        while heap and heap[0][0] < w:
            end, order, k = heapq.heappop(heap)
            for s in self.open.get(k, ()):
                if s.order == order and s.last + gap == end and id(s) not in taken:
                    taken.add(id(s))
                    due.append((end, order, k, s))
        due.sort(key=lambda d: (d[0], d[1]))
        for _, _, k, s in due:
            mine = self.open[k]
            mine.remove(s)
            if not mine:
                del self.open[k]
            self.emit(k, s.start, s.last, s.items, s.accs)

    @property
    def open_windows(self) -> int:
        return sum(len(s) for s in self.open.values())


class TimeOf:
    """Reads a value's event time as seconds, and gives a window's bounds back in the
    type the values had (a ``datetime`` in the same zone, or a number)."""

    def __init__(self, get: Callable[[Any], Any], where: str) -> None:
        self.get = get
        self.where = where
        self.tz: dt.tzinfo | None = None
        self.dates = False

    def seconds(self, items: list[Any]) -> list[float]:
        raw = list(map(self.get, items))
        first = raw[0]
        if isinstance(first, dt.datetime):
            self.dates = True
            self.tz = first.tzinfo
            try:
                return [(d if d.tzinfo else d.replace(tzinfo=dt.timezone.utc)).timestamp() for d in raw]
            except AttributeError:
                pass
        elif all(type(t) in (int, float) for t in raw) or all(
            isinstance(t, numbers.Real) and not isinstance(t, bool) for t in raw
        ):
            if any(t != t for t in raw):
                raise LivestackError(f"{self.where}: an event time is NaN")
            return raw
        bad = next(
            (t for t in raw if isinstance(t, bool) or not isinstance(t, (numbers.Real, dt.datetime))),
            next((t for t in raw if type(t) is not type(first)), first),  # datetimes mixed with numbers
        )
        raise LivestackError(
            f"{self.where}: an event time must be a number of seconds or a datetime, not {bad!r}"
        )

    def back(self, s: float) -> Any:
        if not self.dates or isinstance(s, str) or not math.isfinite(s):
            return s
        d = dt.datetime.fromtimestamp(s, self.tz or dt.timezone.utc)
        return d if self.tz else d.replace(tzinfo=None)
