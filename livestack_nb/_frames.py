"""The DataFrame path of ``ls.window``: the same windows, computed with pandas.

For the batch case: each datapoint is a frame of rows, windowed together.
Rows of windows still open wait in a pending frame; each input frame is
appended to it, windows are assigned with vectorised arithmetic (a row of a
sliding window is repeated once per window it falls in), the watermark is a
running maximum, and the windows that close are aggregated with one
``groupby``. The windows a frame closes come out as one frame with the
columns ``key, start, end, *aggregates``, in the order the value-by-value
path emits them, and late rows as one frame on ``late``. Session windows are
run by the value-by-value engine over the frame's rows (same results, not
vectorised). ``key=`` and ``time=`` name columns here.
"""

from __future__ import annotations

import math
import time as _time
from typing import TYPE_CHECKING, Any

from ._windows import SessionWindows
from .agg import Agg
from .errors import LivestackError

if TYPE_CHECKING:
    import pandas as pd

    from .job import LiveJob
    from .window import WindowOptions, WindowSpec

__all__ = ["FrameWindows", "run_frames"]

_VECTOR = {"count", "sum", "mean", "min", "max", "std", "first", "last"}


class FrameWindows:
    """Count and time windows over frames (see the module docstring)."""

    def __init__(self, spec: WindowSpec, shape: WindowOptions) -> None:
        import pandas as pd

        self.pd = pd
        self.spec = spec
        self.shape = shape
        self.aggs = spec.aggs
        for name, a in self.aggs:
            if a.field is not None and not isinstance(a.field, str):
                raise LivestackError(
                    f"spec {spec.name!r}: over DataFrames, aggregate {name!r} needs a column name"
                )
        if spec.key_fn is not None or spec.time_fn is not None:
            raise LivestackError(f"spec {spec.name!r}: over DataFrames, key= and time= name columns")
        self.pending: pd.DataFrame | None = None  # (row, window) pairs of open windows
        self.arrival = 0
        self.watermark = -math.inf
        self.positions: dict[Any, int] = {}  # count windows: values seen per key
        self.key_order: dict[Any, int] = {}
        self.dates: Any = None  # the dtype of a datetime time column

    # -- assigning rows to windows --------------------------------------------------

    def _keys(self, frame: pd.DataFrame) -> Any:
        key = self.shape.key
        if key is None:
            return self.pd.Series([None] * len(frame), index=frame.index, dtype=object)
        if key not in frame.columns:
            raise LivestackError(f"spec {self.spec.name!r}: the frame has no key column {key!r}")
        return frame[key]

    def _seconds(self, frame: pd.DataFrame) -> Any:
        col = self.shape.time
        if col is None:
            return self.pd.Series(_time.time(), index=frame.index)
        if col not in frame.columns:
            raise LivestackError(f"spec {self.spec.name!r}: the frame has no time column {col!r}")
        t = frame[col]
        if self.pd.api.types.is_datetime64_any_dtype(t):
            self.dates = t.dtype
            naive = t.dt.tz_convert("UTC").dt.tz_localize(None) if t.dt.tz is not None else t
            return (naive - self.pd.Timestamp(0)).dt.total_seconds()
        if not self.pd.api.types.is_numeric_dtype(t):
            raise LivestackError(f"spec {self.spec.name!r}: time column {col!r} must be numbers or datetimes")
        return t.astype(float)

    def push(self, frame: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        """Take one frame; return the windows it closed and its late rows."""
        import numpy as np

        pd = self.pd
        n = len(frame)
        if not n:
            return None, None
        rows = frame.reset_index(drop=True).copy()
        rows["_k"] = self._keys(frame).to_numpy()
        rows["_a"] = np.arange(self.arrival, self.arrival + n)
        self.arrival += n
        for k in pd.unique(rows["_k"]):
            self.key_order.setdefault(k, len(self.key_order))
        late = None
        if self.shape.count is not None:
            pairs = self._count_pairs(rows)
        else:
            size = self.shape.seconds
            assert size is not None
            slide = self.shape.slide or size
            t = self._seconds(frame).to_numpy(dtype=float)
            rows["_t"] = t
            w_prev = np.maximum.accumulate(np.concatenate([[self.watermark], t - self.shape.lateness]))
            rows["_w"] = w_prev[:-1]
            self.watermark = float(w_prev[-1])
            x = t / slide
            j = np.round(x)
            tol = 16 * np.spacing(np.maximum(np.abs(x), 1.0))
            j = np.where(np.abs(x - j) <= tol, j, np.floor(x))  # as the value path rounds
            reach = size / slide - tol
            copies = math.ceil(size / slide)
            parts = []
            for back in range(copies):
                jj = j - back
                part = rows.assign(_s=jj * slide)
                parts.append(part[x - jj < reach])
            pairs = pd.concat(parts, ignore_index=True) if copies > 1 else parts[0]
            pairs["_e"] = pairs["_s"] + size
            missed = pairs["_e"] <= pairs["_w"]
            late_a = set(pairs.loc[missed, "_a"])
            if late_a:
                late = frame.reset_index(drop=True)[rows["_a"].isin(late_a).to_numpy()]
            pairs = pairs[~missed]
        pending = pairs if self.pending is None else pd.concat([self.pending, pairs], ignore_index=True)
        closed_mask = self._closed(pending)
        self.pending = pending[~closed_mask]
        return self._windows(pending[closed_mask]), late

    def _count_pairs(self, rows: pd.DataFrame) -> Any:
        import numpy as np

        pd = self.pd
        size = self.shape.count
        assert size is not None
        slide = int(self.shape.slide or size)
        base = rows["_k"].map(lambda k: self.positions.get(k, 0)).astype("int64")
        pos = base + rows.groupby("_k", sort=False, dropna=False).cumcount()
        rows["_p"] = pos.to_numpy()
        last = rows.groupby("_k", sort=False, dropna=False)["_p"].max()
        for k, p in last.items():
            self.positions[k] = int(p) + 1
        first = (rows["_p"] // slide) * slide
        parts = []
        for j in range(math.ceil(size / slide)):
            part = rows.assign(_s=first - j * slide)
            parts.append(part[part["_s"] > part["_p"] - size])
        pairs = pd.concat(parts, ignore_index=True)
        pairs["_e"] = pairs["_s"] + size
        out = pairs.assign(_s=pairs["_s"].astype(np.int64))
        return out

    def _closed(self, pending: pd.DataFrame) -> Any:
        if self.shape.count is not None:
            seen = pending["_k"].map(self.positions)
            return (seen >= pending["_e"]).to_numpy()
        return (pending["_e"] <= self.watermark).to_numpy()

    def deadline(self) -> float | None:
        """When the first open time window ends (processing time closes it then)."""
        if self.pending is None or not len(self.pending) or "_e" not in self.pending:
            return None
        return float(self.pending["_e"].min())

    def advance(self, now: float) -> Any:
        """Processing time moved on to ``now`` with no frame: the windows it closed."""
        self.watermark = max(self.watermark, now)
        if self.pending is None or not len(self.pending):
            return None
        closed_mask = self._closed(self.pending)
        closed, self.pending = self.pending[closed_mask], self.pending[~closed_mask]
        return self._windows(closed)

    def close_all(self) -> Any:
        """The end of input: every open window."""
        pending, self.pending = self.pending, None
        if pending is None or not len(pending):
            return None
        return self._windows(pending, final=True)

    # -- aggregating closed windows ---------------------------------------------------------

    def _windows(self, closed: pd.DataFrame, final: bool = False) -> Any:
        pd = self.pd
        if not len(closed):
            return None
        closed = closed.sort_values("_a", kind="stable")
        g = closed.groupby(["_k", "_s"], sort=False, dropna=False)
        firsts = g["_a"].min()
        out = pd.DataFrame(index=firsts.index)
        for name, a in self.aggs:
            out[name] = self._agg(g, a)
        out = out.reset_index()
        counted = self.shape.count is not None
        if counted:
            out["start"] = out["_s"].clip(lower=0)
            if final:
                out["end"] = out["_k"].map(self.positions).to_numpy()
                out["_o1"] = out["_k"].map(self.key_order).to_numpy()
                out["_o2"] = out["_s"]
            else:
                out["end"] = out["_s"] + self.shape.count
                out["_o1"] = g["_a"].max().to_numpy()
                out["_o2"] = 0
        else:
            size = self.shape.seconds
            out["start"] = out["_s"]
            out["end"] = out["_s"] + size
            out["_o1"] = out["end"]
            out["_o2"] = firsts.to_numpy()
        out = out.sort_values(["_o1", "_o2"], kind="stable").rename(columns={"_k": "key"})
        result = out[["key", "start", "end", *[n for n, _ in self.aggs]]].reset_index(drop=True)
        if self.dates is not None and not counted:
            for c in ("start", "end"):
                result[c] = pd.to_datetime(result[c], unit="s", utc=True)
                tz = getattr(self.dates, "tz", None)
                result[c] = result[c].dt.tz_convert(tz) if tz is not None else result[c].dt.tz_localize(None)
        self.spec.record_counts(0, len(result), 0, 0)
        return result

    def _agg(self, g: Any, a: Agg) -> Any:
        kind = a.kind
        if kind == "count":
            return g.size()
        if kind in _VECTOR:
            return g[a.field].agg(kind)
        if kind == "quantile":
            return g[a.field].quantile(getattr(a, "q"))  # noqa: B009 - the quantile's own q
        if a.field is not None:
            return [a.over(list(s)) for _, s in g[a.field]]
        cols = [c for c in g.obj.columns if not c.startswith("_")]
        return [a.over(d[cols].to_dict("records")) for _, d in g]


def run_frames(spec: WindowSpec, shape: WindowOptions, job: LiveJob) -> None:
    """The window's processor over a stream of DataFrames."""
    import pandas as pd

    out = job.output("default")
    late_port = job.output("late") if "late" in spec.out_tags else None
    if shape.count is None and shape.seconds is None:
        _run_sessions(spec, shape, job)
        return
    fw = FrameWindows(spec, shape)
    clock = shape.seconds is not None and shape.time is None  # processing time: windows close by the clock
    while True:
        due = fw.deadline() if clock else None
        batch = job.input.read_batch(None if due is None else max(0.0, due - _time.time()))
        if batch is None:
            break
        if not batch and clock:
            closed = fw.advance(_time.time())
            if closed is not None:
                out.emit(closed)
        for frame in batch:
            if not isinstance(frame, pd.DataFrame):
                raise LivestackError(f"spec {spec.name!r} takes DataFrames, not {type(frame).__name__}")
            closed, late = fw.push(frame)
            spec.record_counts(len(frame), 0, 0 if late is None else len(late), 0)
            if late is not None and len(late):
                job.logger.warning("%d late rows (their windows had closed)", len(late))
                if late_port is not None:
                    late_port.emit(late)
            if closed is not None:
                out.emit(closed)
    closed = fw.close_all()
    if closed is not None:
        out.emit(closed)


def _run_sessions(spec: WindowSpec, shape: WindowOptions, job: LiveJob) -> None:
    """Sessions over frames: the value engine over each frame's rows."""
    import pandas as pd

    from .window import TimeOf

    out = job.output("default")
    late_port = job.output("late") if "late" in spec.out_tags else None
    gap = shape.gap if shape.gap is not None else shape.gap_count
    assert gap is not None
    engine = SessionWindows(spec.aggs, gap, shape.lateness)
    arrivals = 0
    times: TimeOf | None = None
    columns: list[str] = []

    def emit() -> None:
        rows, late = engine.out, engine.late
        engine.out, engine.late = [], []
        spec.record_counts(0, len(rows), len(late), 0)
        if late:
            job.logger.warning("%d late rows (their sessions had closed)", len(late))
            if late_port is not None:
                late_port.emit(pd.DataFrame(late, columns=columns))
        if rows:
            if times is not None and times.dates:
                for r in rows:
                    r["start"], r["end"] = times.back(r["start"]), times.back(r["end"])
            out.emit(pd.DataFrame(rows))

    while True:
        batch = job.input.read_batch(None)
        if batch is None:
            break
        for frame in batch:
            columns = list(frame.columns)
            items = frame.to_dict("records")
            if not items:
                continue
            keys = [r[shape.key] for r in items] if shape.key else [None] * len(items)
            if shape.gap_count is not None:
                ts: Any = range(arrivals, arrivals + len(items))
            elif shape.time is not None:
                times = times or TimeOf(lambda r: r[shape.time], spec.name)
                ts = times.seconds(items)
            else:
                ts = [_time.time()] * len(items)
            arrivals += len(items)
            engine.push(keys, items, ts)
            spec.record_counts(len(items), 0, 0, 0)
            emit()
    engine.close_all()
    emit()
