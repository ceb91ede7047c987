"""``ls.window``: tumbling, sliding and session windows, per key, as a spec.

A window is a spec like any other, so it shows in the flow graph, its options
(the window's shape) are recorded with each job, and it runs in flows, in
worker processes and as ``.op()``. Its processor reads its input in batches
(:meth:`~livestack_nb.job.TagReader.read_batch`) and hands them to an engine of
:mod:`livestack_nb._windows`; closed windows go to the ``default`` output as
``{"key", "start", "end", **aggregates}``; late values are counted in
``spec.stats``, named in the job's log and, with ``late=True``, sent to a
``late`` output. Values that are ``pandas.DataFrame`` s take
the vectorised path of :mod:`livestack_nb._frames` (``input=pd.DataFrame``).
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import threading
import time as _time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator

from ._windows import CountWindows, Engine, SessionWindows, TimeWindows, projection
from .agg import Agg, as_agg
from .errors import LivestackError
from .keys import Keyed, field_getter
from .spec import JobSpec

if TYPE_CHECKING:
    from .job import LiveJob

__all__ = ["WindowOptions", "WindowSpec", "WindowStats", "window"]


class WindowOptions(BaseModel):
    """The shape of a window: its size, slide or gap, and where time comes from.

    ``count`` or ``seconds`` is the size (values per key, or seconds);
    ``slide`` (same unit) makes it sliding; ``gap`` (seconds) or
    ``gap_count`` (values) makes session windows. ``time`` names the event
    time field (default: processing time); ``lateness`` is how many seconds
    behind the newest time a value may arrive; ``key`` names the key field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int | None = None
    seconds: float | None = None
    slide: float | None = None
    gap: float | None = None
    gap_count: int | None = None
    time: str | None = None
    lateness: float = 0.0
    key: str | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> WindowOptions:
        sizes = [n for n in ("count", "seconds", "gap", "gap_count") if getattr(self, n) is not None]
        if len(sizes) != 1:
            raise ValueError(
                "give exactly one of count= or seconds= (the size), gap= or gap_count= (sessions); "
                f"got {sizes or 'none'}"
            )
        for n in ("count", "seconds", "gap", "gap_count", "slide"):
            v = getattr(self, n)
            if v is not None and not v > 0:
                raise ValueError(f"{n} must be > 0, not {v!r}")
        if self.lateness < 0:
            raise ValueError(f"lateness must be >= 0, not {self.lateness!r}")
        if self.slide is not None:
            size = self.count if self.count is not None else self.seconds
            if size is None:
                raise ValueError("slide= makes a count= or seconds= window sliding; sessions do not slide")
            if self.slide > size:
                raise ValueError(f"slide ({self.slide}) must not be larger than the size ({size})")
            if self.count is not None and self.slide != int(self.slide):
                raise ValueError(f"a count window slides by a whole number of values, not {self.slide}")
        if self.gap_count is not None and (self.time is not None or self.lateness):
            raise ValueError("gap_count= counts values: time= and lateness= do not apply")
        if self.count is not None and (self.time is not None or self.lateness):
            raise ValueError("a count window counts values: time= and lateness= do not apply")
        if self.lateness and self.time is None:
            raise ValueError("lateness= is for event time: name the time field with time=")
        return self

    @property
    def kind(self) -> str:
        """``"count"``, ``"time"`` or ``"session"``."""
        if self.count is not None:
            return "count"
        if self.seconds is not None:
            return "time"
        return "session"

    @property
    def sliding(self) -> bool:
        size = self.count if self.count is not None else self.seconds
        return self.slide is not None and self.slide != size

    def describe(self) -> str:
        """A short text of the shape, e.g. ``count=1000 slide=100 key=path``."""
        parts = [f"{n}={_num(getattr(self, n))}" for n in ("count", "seconds", "slide", "gap", "gap_count")]
        parts = [p for p in parts if not p.endswith("=None")]
        if self.time:
            parts.append(f"time={self.time}")
        if self.lateness:
            parts.append(f"lateness={_num(self.lateness)}")
        if self.key:
            parts.append(f"key={self.key}")
        return " ".join(parts)


def _num(v: Any) -> str:
    return "None" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


@dataclass
class WindowStats:
    """What the jobs of a window spec did: values in, windows closed, values late."""

    values: int = 0
    windows: int = 0
    late: int = 0
    open_windows: int = 0


class WindowSpec(JobSpec):
    """The spec ``ls.window`` makes (see there); ``stats`` counts late values."""

    def __init__(
        self,
        name: str,
        shape: WindowOptions,
        aggs: list[tuple[str, Agg]],
        key_fn: Callable[[Any], Any] | None,
        time_fn: Callable[[Any], Any] | None,
        input: Any,
        late: bool = False,
    ) -> None:
        frames = _is_frame_type(input)
        out = input if frames else dict
        fields = {n: (f.annotation, getattr(shape, n)) for n, f in WindowOptions.model_fields.items()}
        options = create_model("WindowOptions", __base__=WindowOptions, **fields)  # type: ignore[call-overload]
        outputs = {"default": out, "late": input} if late else {"default": out}
        super().__init__(name, input=input, outputs=outputs, options=options)
        self.shape = shape
        self.aggs = aggs
        self.key_fn = key_fn
        self.time_fn = time_fn
        self.frames = frames
        self.stats = WindowStats()
        self._stats_lock = threading.Lock()

        def window(job: LiveJob) -> None:
            _run(self, job)

        window.__annotations__ = {"job": "LiveJob"}
        self.define_worker(window)

    def engine(self, shape: WindowOptions) -> Engine:
        """A new engine for one job (of this spec's aggregates, in ``shape``)."""
        if shape.count is not None:
            slide = int(shape.slide) if shape.slide is not None else shape.count
            return CountWindows(self.aggs, shape.count, slide)
        if shape.seconds is not None:
            return TimeWindows(self.aggs, shape.seconds, shape.slide or shape.seconds, shape.lateness)
        if shape.gap_count is not None:
            return SessionWindows(self.aggs, shape.gap_count)
        assert shape.gap is not None
        return SessionWindows(self.aggs, shape.gap, shape.lateness)

    def record_counts(self, values: int, windows: int, late: int, open_delta: int) -> None:
        """Add to :attr:`stats` what a job of this spec just did (called by the engines)."""
        with self._stats_lock:
            s = self.stats
            s.values += values
            s.windows += windows
            s.late += late
            s.open_windows += open_delta


def _is_frame_type(tp: Any) -> bool:
    return isinstance(tp, type) and tp.__name__ == "DataFrame" and tp.__module__.startswith("pandas")


def window(
    *,
    count: int | None = None,
    seconds: float | None = None,
    slide: float | None = None,
    gap: float | None = None,
    gap_count: int | None = None,
    time: str | Callable[[Any], Any] | None = None,
    lateness: float = 0.0,
    key: str | Callable[[Any], Any] | None = None,
    agg: Mapping[str, Agg | Callable[[list[Any]], Any]] | None = None,
    name: str | None = None,
    input: Any = Any,
    late: bool = False,
) -> WindowSpec:
    """A spec that groups its input into windows and emits one aggregate per closed window.

    Parameters
    ----------
    count, seconds:
        The size: ``count`` values per key, or ``seconds`` of time. Time
        windows are aligned to multiples of their slide from 0 (as pandas'
        ``resample``); count windows start at each key's first value.
    slide:
        Makes the window sliding: a new window starts every ``slide`` values
        or seconds (default: tumbling, ``slide`` = the size).
    gap, gap_count:
        Session windows instead: values of a key at most ``gap`` seconds (or
        ``gap_count`` values of the stream) apart form one session.
    time:
        The event-time field (a number of seconds or a ``datetime``) or a
        function of the value; default: processing time (when the job read it).
    lateness:
        Seconds a value may arrive behind the newest time seen. The watermark
        (newest time minus ``lateness``) closes a window once past its end; a
        value whose windows had all closed is counted in ``spec.stats.late``
        and named in the job's log, never put in a window; with ``late=True``
        it also goes to the spec's ``late`` output.
    key:
        The key field or a function of the value (an ``ls.key_by`` spec too);
        values arriving as ``Keyed`` pairs (from ``ls.key_by``) are keyed by it.
        Default: one window for all values (key ``None``).
    agg:
        ``{name: aggregate}``: ``ls.agg.count()``, ``ls.agg.quantile("ms", 0.95)``,
        ..., or any function of the list of the window's values.
    name:
        The spec's name (default: made from the shape and the aggregates).
    input:
        The input type (default: any value). ``pandas.DataFrame`` makes the
        vectorised window: each input frame's rows are windowed together and
        the windows it closes come out as one DataFrame.
    late:
        Give the spec a second output, ``late``, carrying every late value as
        it arrived (off by default, so a flow's single output stays its default).

    Each closed window emits ``{"key", "start", "end", **aggregates}``: for
    time windows its bounds, for sessions the times of its first and last
    value, for count windows the positions (per key) of its first value and
    one past its last. The end of input closes every window still open. A
    window without values emits nothing. The shape is the spec's options:
    ``spec.start(options={"count": 500})`` or ``spec.op(count=500)`` changes it
    for one job.

    Examples
    --------
    >>> import livestack_nb as ls
    >>> per_2 = ls.window(count=2, key="pizza", agg={"n": ls.agg.count(), "size": ls.agg.mean("size")})
    >>> per_2.run([{"pizza": "a", "size": 10}, {"pizza": "a", "size": 12}], timeout=10)
    [{'key': 'a', 'start': 0, 'end': 2, 'n': 2, 'size': 11.0}]
    """
    where = f"ls.window{'(' + repr(name) + ')' if name else ''}"
    if not agg:
        raise LivestackError(f"{where} needs agg={{name: aggregate}}, e.g. agg={{'n': ls.agg.count()}}")
    aggs = [(str(n), as_agg(str(n), a, where)) for n, a in agg.items()]
    reserved = {"key", "start", "end"} & {n for n, _ in aggs}
    if reserved:
        raise LivestackError(
            f"{where}: aggregate names {sorted(reserved)} are taken by the window's own fields"
        )
    key_field = key if isinstance(key, str) else None
    time_field = time if isinstance(time, str) else None
    if key is not None and key_field is None and not callable(key):
        raise LivestackError(f"{where}: key must be a field name or a function of the value, not {key!r}")
    if time is not None and time_field is None and not callable(time):
        raise LivestackError(f"{where}: time must be a field name or a function of the value, not {time!r}")
    try:
        shape = WindowOptions(
            count=count,
            seconds=seconds,
            slide=slide,
            gap=gap,
            gap_count=gap_count,
            time=time_field if time_field else ("<fn>" if time is not None else None),
            lateness=lateness,
            key=key_field,
        )
    except ValidationError as e:
        raise LivestackError(f"{where}: {e.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    key_fn = key if callable(key) else None
    time_fn = time if callable(time) else None
    if _is_frame_type(input):
        if key_fn is not None or time_fn is not None:
            raise LivestackError(f"{where}: over DataFrames, key= and time= name columns, not functions")
        for n, a in aggs:
            if a.field is not None and not isinstance(a.field, str):
                raise LivestackError(
                    f"{where}: over DataFrames, aggregate {n!r} needs a column name as its field"
                )
    if name is None:
        shown = shape.describe()
        if key_fn is not None:
            shown += f" key={getattr(key_fn, 'name', None) or getattr(key_fn, '__name__', 'fn')}"
        name = f"window({shown}: {', '.join(n for n, _ in aggs)})"
    spec = WindowSpec(name, shape, aggs, key_fn, time_fn, input, late)
    from .env import register_spec

    register_spec(spec)
    return spec


# -- the processor ----------------------------------------------------------------------


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


def _keys_of(spec: WindowSpec, shape: WindowOptions, items: list[Any]) -> tuple[list[Any], list[Any]]:
    """The key of each value, and the values the aggregates read (a ``Keyed`` pair's value)."""
    if spec.key_fn is not None:
        return list(map(spec.key_fn, items)), items
    if shape.key is not None:
        return _field_of(shape.key, items, spec.name), items
    if items and type(items[0]) is Keyed:
        return [k for k, _ in items], [v for _, v in items]
    return [None] * len(items), items


def _field_of(field: str, items: list[Any], where: str) -> list[Any]:
    """``field`` of every item: in C for a batch of dicts, else one by one (naming a missing one)."""
    if type(items[0]) is dict:
        try:
            return list(map(itemgetter(field), items))
        except (KeyError, TypeError):
            pass
    return list(map(field_getter(field, where), items))


def _run(spec: WindowSpec, job: LiveJob) -> None:
    """The window's processor: batches in, closed windows and late values out."""
    shape: WindowOptions = job.options  # type: ignore[assignment]
    if spec.frames:
        from ._frames import run_frames

        run_frames(spec, shape, job)
        return
    engine = spec.engine(shape)
    only = projection(spec.aggs)  # every aggregate reads one column: the windows keep only it
    engine.projected = only is not None
    out = job.output("default")
    late_port = job.output("late") if "late" in spec.out_tags else None
    processing = shape.time is None and shape.gap_count is None and shape.count is None
    event_time = spec.time_fn or (field_getter(shape.time, spec.name) if shape.time else None)
    times = TimeOf(event_time, spec.name) if event_time is not None else None
    arrivals = 0
    opened = 0
    late_seen = [0]
    try:
        while True:
            timeout = None
            if processing:
                due = engine.deadline()
                if due is not None:
                    timeout = max(0.0, due - _time.time())
            batch = job.input.read_batch(timeout)
            if batch is None:
                break
            if batch:
                if type(batch[0]).__name__ == "DataFrame":
                    raise LivestackError(
                        f"spec {spec.name!r} got a DataFrame: a window over frames is made with "
                        "ls.window(..., input=pd.DataFrame)"
                    )
                keys, values = _keys_of(spec, shape, batch)
                items = values if only is None else only.column(values)
                if shape.count is not None:
                    engine.push(keys, items, None)
                elif shape.gap_count is not None:
                    engine.push(keys, items, range(arrivals, arrivals + len(items)), batch)
                elif times is not None:
                    engine.push(keys, items, times.seconds(values), batch)
                else:
                    now = _time.time()
                    engine.push(keys, items, [now] * len(items), batch)
                arrivals += len(items)
            elif processing:
                engine.advance(_time.time())
            opened = _flush(spec, job, engine, out, late_port, times, len(batch), opened, late_seen)
        engine.close_all()
        _flush(spec, job, engine, out, late_port, times, 0, opened, late_seen)
    finally:
        if late_seen[0]:
            job.logger.warning("%d late values in all (spec.stats.late)", late_seen[0])


def _flush(
    spec: WindowSpec,
    job: LiveJob,
    engine: Engine,
    out: Any,
    late_port: Any,
    times: TimeOf | None,
    n: int,
    opened: int,
    late_seen: list[int],
) -> int:
    """Send what the engine closed and count it; late values are counted, logged
    (the first few by value) and sent to ``late`` when the spec has it."""
    rows, late = engine.out, engine.late
    engine.out, engine.late = [], []
    now_open = engine.open_windows
    spec.record_counts(n, len(rows), len(late), now_open - opened)
    if late:
        for v in late[: max(0, LOGGED_LATE - late_seen[0])]:
            job.logger.warning("late value (its windows had closed): %.200r", v)
        late_seen[0] += len(late)
        if late_port is not None:
            for v in late:
                late_port.emit(v)
    for row in rows:
        if times is not None and times.dates:
            row["start"], row["end"] = times.back(row["start"]), times.back(row["end"])
        out.emit(row)
    return now_open


LOGGED_LATE = 20  # late values named one by one in a job's log; the rest are counted
