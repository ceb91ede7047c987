"""ls.window as a spec: every public form (feed, feed_many, a flow, .op(), options), the clock,
event time as datetimes, late values, the DataFrame path, bad input, and a durable vault."""

from __future__ import annotations

import datetime as dt
import math
import random

import pandas as pd
import pytest
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from support import Recorder
from test_window_kinds import reference_time_windows

import livestack_nb as ls
from livestack_nb.testing import wait_until

_settings = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

AGG = {"n": ls.agg.count(), "total": ls.agg.sum("v"), "p90": ls.agg.quantile("v", 0.9)}


def orders(n: int, seed: int = 1) -> list[dict[str, object]]:
    r = random.Random(seed)
    return [{"k": r.choice("abc"), "t": i + r.randint(-3, 0), "v": r.randint(0, 100)} for i in range(n)]


def test_every_form_gives_the_same_windows(env):
    values = orders(300)
    win = ls.window(seconds=10, slide=5, time="t", lateness=3, key="k", agg=AGG)
    expected = win.run(values, timeout=10)
    assert expected and all(set(r) == {"key", "start", "end", "n", "total", "p90"} for r in expected)

    job = win.start()  # one feed per value
    for v in values:
        job.feed(v)
    job.end()
    assert job.result(timeout=10) == expected

    @ls.job_spec
    def parse(line: str) -> dict:
        k, t, v = line.split(",")
        return {"k": k, "t": int(t), "v": int(v)}

    @ls.job_spec
    def keep(row: dict) -> dict:
        return row

    flow = ls.Liveflow("windows-in-a-flow")
    flow.connect(parse, win)
    flow.connect(win, keep)
    lines = [f"{v['k']},{v['t']},{v['v']}" for v in values]
    assert flow.run(lines, timeout=10) == expected
    assert win.name in {n.spec for n in flow.graph().nodes}  # it shows in the graph

    got = Recorder(reactivex.from_iterable(values).pipe(win.op(), ops.map(lambda r: r["n"]))).wait_done(10)
    assert got.error is None and got.values == [r["n"] for r in expected]


def test_the_shape_is_the_options_recorded_with_the_job(env):
    win = ls.window(count=3, agg={"n": ls.agg.count()})
    job = win.start(options={"count": 2})
    job.feed_many(range(5))
    job.end()
    assert [r["n"] for r in job.result(timeout=10)] == [2, 2, 1]
    assert env.vault.job(job.job_id).options["count"] == 2
    assert [r["n"] for r in win.run(range(5), timeout=10)] == [3, 2]
    got = Recorder(reactivex.from_iterable(range(4)).pipe(win.op(count=4))).wait_done(10)
    assert [r["n"] for r in got.values] == [4]
    with pytest.raises(ls.DataValidationError, match="exactly one of"):
        win.start(options={"seconds": 5})


def test_processing_time_windows_close_by_the_clock_while_input_is_open(env):
    win = ls.window(seconds=0.2, key="k", agg={"n": ls.agg.count()})
    job = win.start()
    job.feed_many([{"k": "a"}, {"k": "a"}, {"k": "b"}])
    wait_until(lambda: len(job.output()) >= 2, timeout=5)  # no more input, no end: the clock closes them
    rows = job.output().values()
    assert sorted((r["key"], r["n"]) for r in rows) == [("a", 2), ("b", 1)]
    assert all(math.isclose(r["end"] - r["start"], 0.2, abs_tol=1e-6) for r in rows)
    assert job.status is ls.JobStatus.RUNNING
    job.end()
    job.wait(timeout=5)

    sessions = ls.window(gap=0.15, key="k", agg={"n": ls.agg.count()})
    job = sessions.start()
    job.feed_many([{"k": "a"}, {"k": "a"}])
    wait_until(lambda: len(job.output()) == 1, timeout=5)
    assert job.output().values()[0]["n"] == 2
    job.end()
    job.wait(timeout=5)


def test_event_time_datetimes_come_back_as_datetimes(env):
    t0 = dt.datetime(2024, 5, 1, 12, 0, 5, tzinfo=dt.timezone.utc)
    values = [{"pizza": "margherita", "at": t0 + dt.timedelta(seconds=s)} for s in (0, 20, 70, 130)]
    per_min = ls.window(seconds=60, time="at", key="pizza", agg={"orders": ls.agg.count()})
    rows = per_min.run(values, timeout=10)
    assert [(r["start"], r["orders"]) for r in rows] == [
        (dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc), 2),
        (dt.datetime(2024, 5, 1, 12, 1, tzinfo=dt.timezone.utc), 1),
        (dt.datetime(2024, 5, 1, 12, 2, tzinfo=dt.timezone.utc), 1),
    ]
    naive = [{"pizza": "x", "at": v["at"].replace(tzinfo=None)} for v in values]
    assert per_min.run(naive, timeout=10)[0]["end"] == dt.datetime(2024, 5, 1, 12, 1)


def test_late_values_are_counted_logged_and_sent_on_late_never_dropped(env):
    # the windows keep only "t", the one field the aggregates read; late values come out whole
    aggs = {"n": ls.agg.count(), "hi": ls.agg.max("t")}
    win = ls.window(seconds=10, time="t", lateness=2, agg=aggs, late=True)
    values = [
        {"t": 1},
        {"t": 12},
        {"t": 15},
        {"t": 3},
        {"t": 9},
        {"t": 14},
    ]  # 3 and 9 arrive after [0, 10) closed
    job = win.start()
    job.feed_many(values)
    job.end()
    rows = job.result(timeout=10)
    assert [(r["start"], r["n"], r["hi"]) for r in rows] == [(0, 1, 1), (10, 3, 15)]
    assert job.output("late").values() == [{"t": 3}, {"t": 9}]
    assert win.stats.late == 2 and win.stats.values == 6 and win.stats.windows == 2
    assert any("late value" in e.message and "'t': 3" in e.message for e in job.logs)
    plain = ls.window(seconds=10, time="t", lateness=2, agg={"n": ls.agg.count()}, name="no-late-tag")
    assert list(plain.outputs) == ["default"]
    job = plain.start()
    job.feed_many(values)
    job.end()
    job.wait(timeout=10)
    assert plain.stats.late == 2
    assert any("2 late values in all" in e.message for e in job.logs)


def test_keyed_values_from_key_by_are_windowed_by_their_key(env):
    by_path = ls.key_by("path")
    per_path = ls.window(count=2, agg={"n": ls.agg.count(), "ms": ls.agg.mean("ms")})
    flow = ls.Liveflow("keyed")
    flow.connect(by_path, per_path)
    rows = [{"path": p, "ms": i} for i, p in enumerate(["/a", "/b", "/a", "/a", "/b"])]
    assert flow.run(rows, timeout=10) == [
        {"key": "/a", "start": 0, "end": 2, "n": 2, "ms": 1.0},
        {"key": "/b", "start": 0, "end": 2, "n": 2, "ms": 2.5},
        {"key": "/a", "start": 2, "end": 3, "n": 1, "ms": 3.0},
    ]
    fn_key = ls.window(count=2, key=by_path, agg={"n": ls.agg.count()})
    assert [r["key"] for r in fn_key.run(rows, timeout=10)] == ["/a", "/b", "/a"]


def test_models_functions_and_user_aggregates(env):
    from pizzeria import Order

    win = ls.window(
        count=3,
        key=lambda o: o.pizza[0],
        agg={
            "sizes": ls.agg.apply(sorted, "size"),
            "spread": lambda os: max(o.size for o in os) - min(o.size for o in os),
        },
        input=Order,
    )
    rows = win.run([Order(pizza="margherita", size=s) for s in (12, 10, 14)], timeout=10)
    assert rows == [{"key": "m", "start": 0, "end": 3, "sizes": [10, 12, 14], "spread": 4}]


# -- bad input ---------------------------------------------------------------------------


def test_bad_windows_are_refused_where_they_are_written():
    with pytest.raises(ls.LivestackError, match="needs agg="):
        ls.window(count=3)
    with pytest.raises(ls.LivestackError, match="exactly one of"):
        ls.window(count=3, seconds=2, agg={"n": ls.agg.count()})
    with pytest.raises(ls.LivestackError, match="must not be larger than the size"):
        ls.window(seconds=3, slide=5, agg={"n": ls.agg.count()})
    with pytest.raises(ls.LivestackError, match="count must be > 0"):
        ls.window(count=0, agg={"n": ls.agg.count()})
    with pytest.raises(ls.LivestackError, match="taken by the window"):
        ls.window(count=2, agg={"start": ls.agg.count()})
    with pytest.raises(ls.LivestackError, match="aggregate 'n' must be"):
        ls.window(count=2, agg={"n": 3})
    with pytest.raises(ls.LivestackError, match="sessions do not slide"):
        ls.window(gap=3, slide=1, agg={"n": ls.agg.count()})
    with pytest.raises(ls.LivestackError, match="time= and lateness= do not apply"):
        ls.window(count=3, time="t", agg={"n": ls.agg.count()})
    with pytest.raises(ls.LivestackError, match="lateness= is for event time"):
        ls.window(seconds=3, lateness=1, agg={"n": ls.agg.count()})
    with pytest.raises(ls.LivestackError, match="key must be a field name or a function"):
        ls.window(count=3, key=3, agg={"n": ls.agg.count()})


def test_bad_values_fail_the_job_naming_what_was_wrong(env):
    win = ls.window(seconds=10, time="t", key="k", agg={"n": ls.agg.count()})
    with pytest.raises(ls.JobFailed, match="no field 'k'"):
        win.run([{"k": "a", "t": 1}, {"t": 2}], timeout=10)
    with pytest.raises(ls.JobFailed, match="must be a number of seconds or a datetime, not 'noon'"):
        win.run([{"k": "a", "t": "noon"}], timeout=10)
    with pytest.raises(ls.JobFailed, match=r"input=pd\.DataFrame"):
        win.run([pd.DataFrame({"k": ["a"], "t": [1]})], timeout=10)


# -- the DataFrame path ----------------------------------------------------------------------

shapes = st.sampled_from(
    [
        {"count": 3},
        {"count": 4, "slide": 2},
        {"seconds": 10, "time": "t", "lateness": 4},
        {"seconds": 10, "slide": 5, "time": "t", "lateness": 2},
        {"gap": 3, "time": "t", "lateness": 5},
    ]
)


@_settings
@given(
    rows=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 80), st.integers(0, 9)), max_size=60),
    cuts=st.lists(st.integers(1, 25), max_size=5),
    shape=shapes,
)
def test_the_dataframe_path_gives_what_the_value_path_gives(env, rows, cuts, shape):
    aggs = {
        "n": ls.agg.count(),
        "total": ls.agg.sum("v"),
        "mean": ls.agg.mean("v"),
        "lo": ls.agg.min("v"),
        "first": ls.agg.first("v"),
        "last": ls.agg.last("v"),
        "p50": ls.agg.quantile("v", 0.5),
        "top": ls.agg.top_k("v", 2),
    }
    values = [{"k": k, "t": t, "v": v} for k, t, v in rows]
    by_value = ls.window(key="k", agg=aggs, name="by-value", **shape)
    by_frame = ls.window(key="k", agg=aggs, name="by-frame", input=pd.DataFrame, **shape)
    expected = by_value.run(values, timeout=10)
    frames, i = [], 0
    for n in [*cuts, len(values)]:
        if values[i : i + n]:
            frames.append(pd.DataFrame(values[i : i + n], columns=["k", "t", "v"]))
        i += n
    got = by_frame.run(frames, timeout=10)
    assert all(isinstance(f, pd.DataFrame) for f in got)
    flat = [r for f in got for r in f.to_dict("records")]
    assert len(flat) == len(expected)
    for a, b in zip(flat, expected, strict=True):
        assert a["key"] == b["key"] and a["n"] == b["n"] and a["top"] == b["top"]
        for f in ("start", "end", "total", "mean", "lo", "first", "last", "p50"):
            assert math.isclose(a[f], b[f]), (f, a, b)


def test_a_dataframe_window_with_datetimes_and_late_rows(env):
    t = pd.to_datetime(["2024-01-01 00:00:10", "2024-01-01 00:01:10", "2024-01-01 00:00:20"])
    frame = pd.DataFrame({"pizza": ["a", "a", "a"], "at": t, "size": [10, 12, 14]})
    win = ls.window(
        seconds=60, time="at", key="pizza", agg={"n": ls.agg.count()}, input=pd.DataFrame, late=True
    )
    job = win.start()
    job.feed(frame)
    job.end()
    out = pd.concat(job.result(timeout=10))
    assert out["start"].tolist() == [pd.Timestamp("2024-01-01 00:00"), pd.Timestamp("2024-01-01 00:01")]
    assert out["n"].tolist() == [1, 1]
    assert job.output("late").values()[0]["size"].tolist() == [14]


# -- durable vault ---------------------------------------------------------------------------


def test_windows_are_recorded_in_a_durable_vault(make_env, tmp_path):
    db = tmp_path / "w.db"
    env = make_env(vault=f"sqlite:///{db}")
    win = ls.window(count=2, key="k", agg={"n": ls.agg.count()}, name="pairs")
    job = win.start(env=env)
    job.feed_many([{"k": "a"}, {"k": "a"}, {"k": "b"}])
    job.end()
    job.wait(timeout=10)
    job_id = job.job_id
    env.close()
    again = make_env(vault=f"sqlite:///{db}")
    assert again.job(job_id).output().values() == [
        {"key": "a", "start": 0, "end": 2, "n": 2},
        {"key": "b", "start": 0, "end": 1, "n": 1},
    ]


# -- the batch read windows use --------------------------------------------------------------


def test_read_batch_gives_what_arrived_in_order_waits_with_a_timeout_and_ends(env):
    seen: list[object] = []

    @ls.job_spec(outputs={"default": int})
    def batches(job: ls.LiveJob):
        while True:
            batch = job.input.read_batch(timeout=0.05)
            if batch is None:
                break
            seen.append(len(batch) if batch else "timeout")
            for v in batch:
                job.output.emit(v * 2)

    job = batches.start()
    job.feed_many(range(10))
    wait_until(lambda: "timeout" in seen, timeout=5)  # nothing more came: an empty batch, not a hang
    job.feed(10)
    job.end()
    assert job.result(timeout=10) == [v * 2 for v in range(11)]
    assert sum(n for n in seen if n != "timeout") == 11


def test_a_cancel_reaches_a_processor_waiting_in_read_batch(env):
    @ls.job_spec(outputs={"default": int})
    def waits(job: ls.LiveJob):
        while job.input.read_batch() is not None:
            pass

    job = waits.start()
    job.feed(1)
    job.cancel()
    assert job.status is ls.JobStatus.CANCELLED
    wait_until(lambda: job._job._processor_thread is None, timeout=5)  # it returned: its thread is free
    assert env.worker("waits").stats.busy_after_cancel == 0


def test_numpy_numbers_are_event_times_too(env):
    import numpy as np

    win = ls.window(seconds=10, time="t", agg={"n": ls.agg.count()})
    rows = win.run([{"t": np.int64(3)}, {"t": 4}, {"t": np.float32(12.5)}], timeout=10)
    assert [(r["start"], r["n"]) for r in rows] == [(0, 2), (10, 1)]


def test_a_dataframe_window_names_a_missing_column_and_refuses_functions_where_written(env):
    aggs = {"n": ls.agg.count()}
    by_missing = ls.window(seconds=5, time="t", key="k", agg=aggs, input=pd.DataFrame, name="frames-missing")
    with pytest.raises(ls.JobFailed, match="no key column 'k'"):
        by_missing.run([pd.DataFrame({"t": [1.0]})], timeout=10)
    with pytest.raises(ls.LivestackError, match="key= and time= name columns"):
        ls.window(count=2, key=len, agg=aggs, input=pd.DataFrame)
    with pytest.raises(ls.LivestackError, match="'hi' needs a column name"):
        ls.window(count=2, agg={"hi": ls.agg.max(abs)}, input=pd.DataFrame)
    text_time = ls.window(seconds=5, time="t", agg=aggs, input=pd.DataFrame, name="frames-text")
    with pytest.raises(ls.JobFailed, match="time column 't' must be numbers or datetimes"):
        text_time.run([pd.DataFrame({"t": ["noon"]})], timeout=10)


@_settings
@given(
    rows=st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 60), st.integers(-9, 9)), max_size=40),
    sizes=st.lists(st.integers(1, 6), max_size=12),
    lateness=st.integers(0, 15),
)
def test_a_job_fed_any_mix_of_feed_and_feed_many_matches_plain_python(env, rows, sizes, lateness):
    aggs = {"n": ls.agg.count(), "total": ls.agg.sum("v"), "hi": ls.agg.max("v"), "first": ls.agg.first("v")}
    win = ls.window(
        seconds=10, slide=5, time="t", lateness=lateness, key="k", agg=aggs, late=True, name="mix"
    )
    job = win.start()
    values = [{"t": t, "v": v, "k": k} for k, t, v in rows]
    i = 0
    for n in [*sizes, len(values)]:
        part, i = values[i : i + n], i + n
        if len(part) == 1:
            job.feed(part[0])
        elif part:
            job.feed_many(part)
    job.end()
    got = [
        (r["key"], r["start"], r["end"], r["n"], r["total"], r["hi"], r["first"])
        for r in job.result(timeout=10)
    ]
    expected, late = reference_time_windows(rows, 10, 5, lateness)
    assert got == expected
    assert [(v["t"], v["v"]) for v in job.output("late").values()] == [(x["t"], x["v"]) for x in late]


def test_a_dataframe_window_on_processing_time_closes_by_the_clock(env):
    win = ls.window(seconds=0.2, key="k", agg={"n": ls.agg.count()}, input=pd.DataFrame, name="frames-clock")
    job = win.start()
    job.feed(pd.DataFrame({"k": ["a", "a", "b"]}))
    wait_until(lambda: len(job.output()) == 1, timeout=5)  # no end of input: the clock closed them
    closed = job.output().values()[0]
    assert sorted(zip(closed["key"], closed["n"], strict=True)) == [("a", 2), ("b", 1)]
    job.end()
    job.wait(timeout=5)
