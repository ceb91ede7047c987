"""Every window kind against pandas (groupby / rolling / resample) or plain Python on the same data.

The engines are fed directly (no job), in random batch splits, with random
keys appearing and disappearing, out-of-order and late values and gaps that
leave windows empty; the job forms are in test_window_spec.py.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import pairwise
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import livestack_nb as ls
from livestack_nb._windows import CountWindows, SessionWindows, TimeWindows

_settings = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

AGGS = [
    ("n", ls.agg.count()),
    ("total", ls.agg.sum("v")),
    ("hi", ls.agg.max("v")),
    ("first", ls.agg.first("v")),
]

keys = st.sampled_from(["a", "b", "c", "d", "e"])
EPOCH = 1_714_759_200  # 2024-05-03 18:00 UTC
events = st.lists(st.tuples(keys, st.integers(0, 200), st.integers(-50, 50)), max_size=80)
cuts = st.lists(st.integers(1, 20), max_size=10)


def feed(engine: Any, rows: list[tuple[str, int, int]], cuts: list[int], timed: bool = True) -> Any:
    """Push ``rows`` (key, time, v) in batches of the sizes in ``cuts`` (then the rest), then end."""
    i = 0
    sizes = [*cuts, len(rows)]
    for n in sizes:
        part = rows[i : i + n]
        i += n
        if part:
            engine.push(
                [k for k, _, _ in part],
                [{"t": t, "v": v} for _, t, v in part],
                [t for _, t, _ in part] if timed else None,
            )
        if i >= len(rows):
            break
    engine.close_all()
    return engine


def summary(items: list[dict[str, int]]) -> tuple[int, int, int, int]:
    vs = [x["v"] for x in items]
    return (len(vs), sum(vs), max(vs), vs[0])


def as_rows(out: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["key"], r["start"], r["end"], r["n"], r["total"], r["hi"], r["first"]) for r in out]


# -- count windows ---------------------------------------------------------------------


@_settings
@given(rows=events, size=st.integers(1, 7), cuts=cuts)
def test_tumbling_count_windows_match_pandas_groupby(rows, size, cuts):
    engine = feed(CountWindows(AGGS, size, size), rows, cuts, timed=False)
    df = pd.DataFrame(rows, columns=["k", "t", "v"])
    expected = []
    if len(df):
        df["pos"] = df.groupby("k").cumcount()
        df["w"] = df["pos"] // size
        g = df.groupby(["k", "w"], sort=False)
        got = g.agg(
            n=("v", "size"), total=("v", "sum"), hi=("v", "max"), first=("v", "first"), lo=("pos", "min")
        )
        for (k, _), r in got.iterrows():
            expected.append(
                (k, int(r.lo), int(r.lo) + int(r.n), int(r.n), int(r.total), int(r.hi), int(r["first"]))
            )
    assert sorted(as_rows(engine.out)) == sorted(expected)
    # full windows come out as their last value arrives; the partial ones at the end
    assert [r for r in as_rows(engine.out) if r[3] == size] == sorted(
        [r for r in expected if r[3] == size], key=lambda r: _arrival_of_nth(rows, r[0], r[2] - 1)
    )


def _arrival_of_nth(rows: list[tuple[str, int, int]], key: str, nth: int) -> int:
    return [i for i, (k, _, _) in enumerate(rows) if k == key][nth]


@_settings
@given(rows=events, size=st.integers(1, 9), slide=st.integers(1, 9), cuts=cuts)
def test_sliding_count_windows_match_pandas_rolling(rows, size, slide, cuts):
    slide = min(slide, size)
    engine = feed(CountWindows(AGGS, size, slide), rows, cuts, timed=False)
    got = as_rows(engine.out)
    df = pd.DataFrame(rows, columns=["k", "t", "v"])
    expected_closed = []
    for k, part in df.groupby("k", sort=False):
        v = part["v"].reset_index(drop=True).astype(float)
        roll = v.rolling(size, min_periods=1)
        n, total, hi = roll.count(), roll.sum(), roll.max()
        for pos in range(len(v)):
            if (pos + 1 - size) % slide == 0:  # the window [pos + 1 - size, pos + 1) closes here
                start = max(0, pos + 1 - size)
                first = int(v[start])
                expected_closed.append((k, start, pos + 1, int(n[pos]), int(total[pos]), int(hi[pos]), first))
    # every closed window rolling gives, and then the end of input's open ones (plain Python)
    expected_open = []
    for k in dict.fromkeys(k for k, _, _ in rows):
        vs = [v for kk, _, v in rows if kk == k]
        n = len(vs)
        s = (n - size) // slide * slide + slide
        while s < n:
            start = max(s, 0)
            part = vs[start:]
            expected_open.append((k, start, n, len(part), sum(part), max(part), part[0]))
            s += slide
    closed = got[: len(got) - len(expected_open)]
    assert sorted(closed) == sorted(expected_closed)
    assert got[len(got) - len(expected_open) :] == expected_open


# -- time windows ------------------------------------------------------------------------


def reference_time_windows(rows, size, slide, lateness):
    """Plain Python: which values each window [s, s + size) gets, and which come too late."""
    watermark = -math.inf
    members: dict[tuple[str, int], list[dict[str, int]]] = defaultdict(list)
    firsts: dict[tuple[str, int], int] = {}
    late = []
    for i, (k, t, v) in enumerate(rows):
        missed = False
        for s in range((t - size) // slide * slide, t + 1, slide):
            if not s <= t < s + size:
                continue
            if s + size <= watermark:
                missed = True
            else:
                members[(k, s)].append({"t": t, "v": v})
                firsts.setdefault((k, s), i)
        if missed:
            late.append({"t": t, "v": v})
        watermark = max(watermark, t - lateness)
    order = sorted(members, key=lambda ks: (ks[1] + size, firsts[ks]))
    return [(k, s, s + size, *summary(members[(k, s)])) for k, s in order], late


@_settings
@given(rows=events, size=st.integers(1, 30), slide=st.integers(1, 30), lateness=st.integers(0, 60), cuts=cuts)
def test_time_windows_with_lateness_match_plain_python(rows, size, slide, lateness, cuts):
    slide = min(slide, size)
    engine = feed(TimeWindows(AGGS, size, slide, lateness), rows, cuts)
    expected, late = reference_time_windows(rows, size, slide, lateness)
    assert as_rows(engine.out) == expected  # same windows, same values, same order
    assert engine.late == late  # late values are kept, in order; none vanish
    assert sum(r[3] for r in expected) >= len(rows) - len(late)


@_settings
@given(rows=events, size=st.sampled_from([5, 10, 60]), cuts=cuts)
def test_tumbling_time_windows_match_pandas_resample(rows, size, cuts):
    # in time order (nothing is late), at epoch times: a second before a boundary stays before it
    rows = sorted(((k, EPOCH + t, v) for k, t, v in rows), key=lambda r: r[1])
    engine = feed(TimeWindows(AGGS, size, size, 0), rows, cuts)
    assert not engine.late
    expected = []
    if rows:
        df = pd.DataFrame(rows, columns=["k", "t", "v"])
        df.index = pd.to_datetime(df["t"], unit="s")
        res = df.groupby("k")["v"].resample(f"{size}s").agg(["size", "sum", "max", "first"])
        for (k, start), r in res.iterrows():
            if r["size"]:  # resample shows empty bins; a window without values emits nothing
                s = int(start.timestamp())
                expected.append(
                    (k, s, s + size, int(r["size"]), int(r["sum"]), int(r["max"]), int(r["first"]))
                )
    assert sorted(as_rows(engine.out)) == sorted(expected)


def test_float_times_on_window_boundaries_fall_in_the_right_window():
    engine = TimeWindows([("n", ls.agg.count())], 0.1, 0.1)
    engine.push(["k"] * 3, [0, 1, 2], [0.3, 0.1 + 0.2, 0.7])  # 0.3 / 0.1 == 2.9999999999999996
    engine.close_all()
    assert [(round(r["start"], 9), r["n"]) for r in engine.out] == [(0.3, 2), (0.7, 1)]
    sliding = TimeWindows([("n", ls.agg.count())], 0.3, 0.1)
    sliding.push(["k"], [0], [0.3])
    sliding.close_all()
    assert [round(r["start"], 9) for r in sliding.out] == [0.1, 0.2, 0.3]


def test_a_window_spills_to_accumulators_and_gives_the_same_result(monkeypatch):
    from livestack_nb import _windows

    aggs = [*AGGS, ("sd", ls.agg.std("v")), ("p", ls.agg.quantile("v", 0.9)), ("top", ls.agg.top_k("v", 2))]
    rows = [("a", t // 7, (t * 37) % 101) for t in range(700)]
    plain = feed(TimeWindows(aggs, 30, 10), rows, [50] * 20)
    monkeypatch.setattr(_windows, "SPILL", 16)
    spilled = TimeWindows(aggs, 30, 10)
    spilled.spill = 16
    feed(spilled, rows, [50] * 20)
    assert len(spilled.out) == len(plain.out)
    for a, b in zip(spilled.out, plain.out, strict=True):
        assert a.keys() == b.keys()
        for f in a:
            assert a[f] == b[f] or math.isclose(a[f], b[f], rel_tol=1e-9), f


# -- session windows -----------------------------------------------------------------------


def reference_sessions(rows, gap):
    """Plain Python on sorted values: a new session where the time gap exceeds ``gap``."""
    out = []
    for k in sorted({k for k, _, _ in rows}):
        mine = sorted([(t, i, v) for i, (kk, t, v) in enumerate(rows) if kk == k])
        run = [mine[0]]
        for item in mine[1:]:
            if item[0] - run[-1][0] > gap:
                out.append((k, run))
                run = []
            run.append(item)
        out.append((k, run))
    result = []
    for k, run in out:
        by_arrival = [v for _, _, v in sorted(run, key=lambda x: x[1])]
        result.append((k, run[0][0], run[-1][0], len(run), sum(by_arrival), max(by_arrival), by_arrival[0]))
    return result


@_settings
@given(rows=events, gap=st.integers(0, 15), cuts=cuts, shuffled=st.booleans())
def test_sessions_match_plain_python(rows, gap, cuts, shuffled):
    if not shuffled:
        rows = sorted(rows, key=lambda r: r[1])
    # in time order with no lateness they close as time passes; shuffled, a lateness
    # longer than any disorder keeps every value, and bridged sessions merge
    engine = feed(SessionWindows(AGGS, gap, 0 if not shuffled else 10**6), rows, cuts)
    assert not engine.late
    assert sorted(as_rows(engine.out)) == sorted(reference_sessions(rows, gap)) if rows else not engine.out


@_settings
@given(rows=events, gap=st.integers(0, 15), lateness=st.integers(0, 30), cuts=cuts)
def test_sessions_with_late_values_lose_nothing_and_stay_apart(rows, gap, lateness, cuts):
    engine = feed(SessionWindows(AGGS, gap, lateness), rows, cuts)
    assert sum(r["n"] for r in engine.out) + len(engine.late) == len(rows)
    late_times = [x["t"] for x in engine.late]
    assert sorted(late_times) == sorted(late_times)  # every late value is kept as it came
    by_key = defaultdict(list)
    for r in engine.out:
        assert r["start"] <= r["end"]
        by_key[r["key"]].append((r["start"], r["end"]))
    for spans in by_key.values():  # sessions of a key never overlap
        spans.sort()
        assert all(a[1] < b[0] for a, b in pairwise(spans))


@_settings
@given(rows=events, cuts1=cuts, cuts2=cuts, lateness=st.integers(0, 20))
def test_results_do_not_depend_on_how_values_were_batched(rows, cuts1, cuts2, lateness):
    for make in (
        lambda: TimeWindows(AGGS, 10, 5, lateness),
        lambda: SessionWindows(AGGS, 4, lateness),
        lambda: CountWindows(AGGS, 4, 2),
    ):
        a, b = feed(make(), rows, cuts1), feed(make(), rows, cuts2)
        assert a.out == b.out
        assert a.late == b.late


def test_session_by_count_closes_after_gap_values_of_the_stream():
    engine = SessionWindows([("n", ls.agg.count())], 2)
    keys = list("aabxxxa")
    engine.push(keys, list(range(7)), list(range(7)))
    # 'a' at 0, 1; then b, x, x, x: more than 2 values after a's last -> closed before 'a' at 6
    assert [(r["key"], r["start"], r["end"], r["n"]) for r in engine.out] == [("a", 0, 1, 2), ("b", 2, 2, 1)]
    engine.close_all()
    assert [(r["key"], r["n"]) for r in engine.out[2:]] == [("x", 3), ("a", 1)]


@_settings
@given(n_keys=st.integers(1, 300), per_key=st.integers(1, 5), size=st.integers(1, 4))
def test_key_churn_many_keys_coming_and_going(n_keys, per_key, size):
    # each key lives for a short while, then never comes back
    rows = [(f"k{i}", i * 10 + j, j) for i in range(n_keys) for j in range(per_key)]
    engine = feed(TimeWindows(AGGS, size, size, 0), rows, [])
    expected, late = reference_time_windows(rows, size, size, 0)
    assert as_rows(engine.out) == expected
    assert not late and engine.open_windows == 0
    count = feed(CountWindows(AGGS, size, size), rows, [], timed=False)
    assert sum(r["n"] for r in count.out) == len(rows)
