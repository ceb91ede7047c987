"""DataStream: live vs replay, history, datapoints and lineage, pandas, stats, operators."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import reactivex
from pizzeria import Pizza, bake
from reactivex import operators as ops
from support import Recorder

import livestack_nb as ls
from livestack_nb.testing import collect, wait_until


@ls.job_spec
def echo(n: int) -> int:
    return n


def test_a_stream_is_an_observable_with_tag_and_type(env):
    job = bake.start()
    stream = job.output()
    assert isinstance(stream, reactivex.Observable)
    assert isinstance(stream, ls.DataStream)
    assert stream.tag == "default"
    assert stream.value_type is str
    assert isinstance(stream.stream_id, str)


def test_subscribe_is_live_and_replay_starts_from_history(env):
    job = echo.start()
    job.feed_many([1, 2])
    wait_until(lambda: len(job.output()) == 2, timeout=5)
    live = Recorder(job.output())
    replayed_early = Recorder(job.output().replay())
    job.feed(3)
    job.end()
    job.wait(timeout=10)
    assert live.wait_done().values == [3]
    assert live.completed
    assert replayed_early.wait_done().values == [1, 2, 3]
    assert collect(job.output().replay(), timeout=5) == [1, 2, 3]


def test_stream_operators_work(env):
    job = echo.start()
    doubled = Recorder(job.output().pipe(ops.map(lambda n: n * 2), ops.filter(lambda n: n > 2)))
    job.feed_many([1, 2, 3])
    job.end()
    assert doubled.wait_done().values == [4, 6]


def test_values_last_len_and_ended(env):
    job = echo.start()
    stream = job.output()
    job.feed_many([5, 6, 7])
    wait_until(lambda: len(stream) == 3, timeout=5)
    assert not stream.ended
    job.end()
    job.wait(timeout=10)
    assert stream.values() == [5, 6, 7]
    assert stream.last() == 7
    assert stream.ended


def test_history_is_bounded_but_count_is_not(make_env):
    make_env(history=100)
    job = echo.start()
    job.feed_many(range(1000))
    job.end()
    job.wait(timeout=20)
    stream = job.output()
    assert len(stream) == 1000
    assert stream.values(last=100) == list(range(900, 1000))
    # a read that cannot be whole says so, naming history=
    with pytest.warns(ls.TruncatedHistoryWarning, match=r"starts at datapoint 900 of 1000.*history=100"):
        assert stream.values() == list(range(900, 1000))
    with pytest.warns(ls.TruncatedHistoryWarning, match="datapoints"):
        assert len(stream.datapoints()) == 100
    assert collect(stream.replay(), timeout=5) == list(range(900, 1000))
    assert stream.stats.count == 1000


def test_datapoints_have_id_timestamp_seq_and_stream(env):
    before = time.time()
    job = echo.start()
    job.feed_many([1, 2, 3])
    job.end()
    job.wait(timeout=10)
    dps = job.output().datapoints()
    assert [dp.value for dp in dps] == [1, 2, 3]
    assert len({dp.id for dp in dps}) == 3
    assert all(isinstance(dp, ls.Datapoint) for dp in dps)
    assert all(dp.stream_id == job.output().stream_id for dp in dps)
    assert [dp.seq for dp in dps] == sorted(dp.seq for dp in dps)
    assert len({dp.seq for dp in dps}) == 3
    assert all(before <= dp.timestamp <= time.time() for dp in dps)
    assert [dp.timestamp for dp in dps] == sorted(dp.timestamp for dp in dps)


@ls.job_spec
def plus_one(n: int) -> int:
    return n + 1


@ls.job_spec
def twice(n: int) -> Iterator[int]:
    yield n
    yield n


@ls.job_spec(inputs={"default": int}, outputs={"default": int})
def forward(job: ls.LiveJob):
    for n in job.input:
        job.output.emit(n)


@ls.job_spec(inputs={"default": int}, outputs={"default": int})
async def aforward(job: ls.LiveJob):
    async for n in job.input:
        await job.output.emit(n)


@pytest.mark.parametrize("downstream", [plus_one, twice, forward, aforward], ids=lambda s: s.name)
def test_lineage_output_parents_contain_the_input_datapoint(env, downstream):
    flow = ls.Liveflow(f"lineage-{downstream.name}")
    flow.connect(echo, downstream)
    flow.expose(echo.input(), "in")
    flow.expose(echo.output(), "mid")
    flow.expose(downstream.output(), "out")
    run = flow.start()
    run.input("in").feed_many([1, 2])
    run.end()
    run.wait(timeout=10)
    mid = run.output("mid").datapoints()
    out = run.output("out").datapoints()
    assert out, "nothing came out"
    for dp in out:
        assert isinstance(dp.parents, tuple)
        (source,) = [m for m in mid if m.id in dp.parents]
        assert source.value in (dp.value, dp.value - 1)


def test_to_pandas_has_model_fields_as_columns(env):
    @ls.job_spec
    def make(sauce: str) -> Pizza:
        return Pizza(dough="00", sauce=sauce)

    job = make.start()
    job.feed_many(["tomato", "pesto"])
    job.end()
    job.wait(timeout=10)
    df = job.output().to_pandas()
    assert {"dough", "sauce"} <= set(df.columns)
    assert list(df["sauce"]) == ["tomato", "pesto"]
    assert len(df) == 2


def test_to_pandas_of_plain_values(env):
    job = echo.start()
    job.feed_many([1, 2])
    job.end()
    job.wait(timeout=10)
    df = job.output().to_pandas()
    assert len(df) == 2
    assert [1, 2] in [list(df[c]) for c in df.columns]


def test_stats(env):
    job = echo.start()
    job.feed_many(range(10))
    job.end()
    job.wait(timeout=10)
    stream = job.output()
    assert stream.stats.count == 10
    assert stream.stats.last_time == stream.datapoints()[-1].timestamp
    assert wait_until(lambda: stream.stats.rate > 0, timeout=2)  # 10 events in the last seconds


def test_listener_gets_batches_and_end(env):
    batches: list[list[int]] = []
    ends: list[object] = []
    job = echo.start()
    disposable = job.output().add_listener(batches.append, on_end=ends.append)
    job.feed_many([1, 2, 3])
    job.end()
    job.wait(timeout=10)
    wait_until(lambda: ends == [None], timeout=5)
    assert [v for batch in batches for v in batch] == [1, 2, 3]
    disposable.dispose()


# --- a spec as an RxPY operator ------------------------------------------------------


def test_spec_op_in_a_pipe_keeps_order(env):
    source = reactivex.from_iterable([{"pizza": p} for p in "abcdefgh"])
    result = collect(source.pipe(bake.op(spice=2), ops.map(str.upper)), timeout=10)
    assert result == [f"12IN {p.upper()}, SPICE 2" for p in "abcdefgh"]


def test_spec_op_delivers_processor_errors_as_on_error(env):
    @ls.job_spec
    def picky(n: int) -> int:
        if n == 3:
            raise ValueError("three")
        return n

    rec = Recorder(reactivex.from_iterable([1, 2, 3, 4]).pipe(picky.op())).wait_done(10)
    assert rec.values == [1, 2]
    assert rec.error is not None
    assert not rec.completed
    assert isinstance(rec.error, ls.JobFailed)
    assert isinstance(rec.error.__cause__, ValueError)


def test_spec_op_delivers_invalid_values_as_on_error(env):
    rec = Recorder(reactivex.from_iterable([1, "x"]).pipe(echo.op())).wait_done(10)
    assert isinstance(rec.error, ls.DataValidationError)


def test_spec_op_passes_source_errors_on(env):
    source = reactivex.concat(reactivex.of(1), reactivex.throw(KeyError("source broke")))
    rec = Recorder(source.pipe(echo.op())).wait_done(10)
    assert isinstance(rec.error, KeyError)


@pytest.mark.parametrize("n", [0, 1, 50])
def test_spec_op_completes(env, n):
    assert collect(reactivex.from_iterable(range(n)).pipe(echo.op()), timeout=10) == list(range(n))


def test_replay_while_emitting_has_no_gap_and_no_duplicate(env):
    gate = threading.Event()

    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    def producer(job: ls.LiveJob):
        for n in job.input:
            for i in range(n):
                if i == n // 2:
                    gate.wait(5)
                job.output.emit(i)

    job = producer.start()
    job.feed(6000)
    job.end()
    wait_until(lambda: len(job.output()) == 3000, timeout=5)
    gate.set()  # the producer resumes while we subscribe
    replayed = Recorder(job.output().replay())
    assert replayed.wait_done(10).values == list(range(6000))


def test_two_subscribers_see_the_same_sequence(env):
    job = echo.start()
    first = Recorder(job.output())
    second = Recorder(job.output().replay())
    job.feed_many(range(300))
    job.end()
    assert first.wait_done().values == list(range(300))
    assert second.wait_done().values == list(range(300))


def test_disposing_an_op_subscription_cancels_its_job(env):
    source = reactivex.interval(0.001).pipe(ops.take(10_000))
    assert collect(source.pipe(echo.op(), ops.take(3)), timeout=10) == [0, 1, 2]
    (info,) = env.jobs()
    wait_until(lambda: env.job(info.job_id).status is ls.JobStatus.CANCELLED, timeout=5)


def test_to_pandas_of_an_empty_model_stream_still_has_the_columns(env):
    @ls.job_spec
    def make(sauce: str) -> Pizza:
        return Pizza(dough="00", sauce=sauce)

    job = make.start()
    job.end()
    job.wait(timeout=10)
    df = job.output().to_pandas()
    assert len(df) == 0
    assert {"dough", "sauce"} <= set(df.columns)


def test_a_disposed_listener_hears_nothing_more(env):
    seen: list[int] = []
    ends: list[object] = []
    job = echo.start()
    disposable = job.output().add_listener(seen.extend, on_end=ends.append)
    job.feed_many([1, 2])
    wait_until(lambda: seen == [1, 2], timeout=5)
    disposable.dispose()
    job.feed(3)
    job.end()
    job.wait(timeout=10)
    assert seen == [1, 2]
    assert ends == []


def test_a_value_whose_wait_for_the_vault_is_interrupted_is_still_delivered():
    """A stream whose vault is behind waits for room after keeping a chunk; an
    interrupt in that wait leaves the chunk kept, so it must reach readers too."""
    from livestack_nb.stream import DataStream

    interrupts = [KeyboardInterrupt()]

    def wait_for_room() -> None:
        if interrupts:
            raise interrupts.pop()

    s = DataStream("behind")
    s.record_to(lambda chunk: True, wait_for_room, lambda start, stop: [])
    seen: list[int] = []
    s.subscribe(seen.append)
    with pytest.raises(KeyboardInterrupt):
        s.push([1])
    s.push([2])
    assert seen == [1, 2] and s.values() == [1, 2]
