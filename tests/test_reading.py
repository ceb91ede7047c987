"""Reading a stream as it comes: ``for``, ``async for`` and ``next_value`` (Livestack's
``for await (const x of job.output)`` and ``output.nextValue()``), on every kind of stream."""

# ruff: noqa: F811 - the fixtures imported from redis_support are test parameters
from __future__ import annotations

import asyncio
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest
import redis_specs
from pydantic import BaseModel
from redis_support import Worker, redis_server, redis_url, workers  # noqa: F401

import livestack_nb as ls
from livestack_nb.testing import collect, wait_until


@ls.job_spec
def double(x: int) -> int:
    return 2 * x


@ls.job_spec
def twice(x: int) -> Iterator[int]:
    yield x
    yield x


@ls.job_spec
async def async_double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


class Meaning(BaseModel):
    means: int


class Start(BaseModel):
    starting_num: int = 0


# Livestack's spec.dummy test: a processor that emits on a named tag without reading input.
@ls.job_spec(
    name="dummy-test-spec",
    inputs={"default": dict},
    outputs={"meaning-of-life": Meaning, "truth": bool},
    options=Start,
)
def say_meaning(job: ls.LiveJob) -> None:
    for i in range(30):
        job.output("meaning-of-life").emit(Meaning(means=job.options.starting_num + i))


@ls.job_spec(inputs={"default": int}, outputs={"default": int})
def processor_double(job: ls.LiveJob) -> None:
    for x in job.input:
        job.output.emit(2 * x)


@ls.job_spec
def breaks_at_3(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


@pytest.mark.parametrize("spec", [double, twice, async_double, processor_double], ids=lambda s: s.name)
def test_a_for_loop_over_a_job_output_yields_every_value_and_stops_when_the_job_ends(env, spec):
    job = spec.start()
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.extend(job.output()))
    reader.start()  # reading from before the first value
    job.feed_many(range(50))
    for i in range(50, 60):
        job.feed(i)  # per value too
    job.end()
    reader.join(10)
    assert not reader.is_alive()
    expected = [v for x in range(60) for v in ([x, x] if spec is twice else [2 * x])]
    assert got == expected
    # the stream has ended: a new loop gives it all again and never hangs
    assert list(job.output()) == expected


def test_livestack_spec_dummy_reads_a_named_output_tag_as_it_comes(env):
    job = say_meaning.start(options={"starting_num": 42})
    job.end()
    means = [m.means for m in job.output("meaning-of-life")]
    assert means == list(range(42, 72))
    assert list(job.output("truth")) == []  # nothing emitted on it: an ended, empty stream


def test_a_loop_started_mid_stream_begins_at_the_first_value_held_and_misses_nothing(env):
    job = double.start()
    job.feed_many(range(100))
    wait_until(lambda: len(job.output()) == 100, timeout=5)
    got: list[int] = []
    done = threading.Event()

    def read() -> None:
        got.extend(job.output())
        done.set()

    threading.Thread(target=read).start()
    for i in range(100, 5000):
        job.feed(i)  # while the loop reads: no gap, no duplicate
    job.end()
    assert done.wait(10)
    assert got == [2 * x for x in range(5000)]


def test_next_value_returns_each_value_once_then_raises_stream_ended(env):
    job = double.start()
    out = job.output()
    job.feed_many([1, 2, 3])
    assert [out.next_value(timeout=5) for _ in range(3)] == [2, 4, 6]
    with pytest.raises(ls.WaitTimeout, match=r"no new value within 0\.05s"):
        out.next_value(timeout=0.05)
    job.feed(4)  # a timeout loses nothing: the next call gets it
    assert out.next_value(timeout=5) == 8
    job.end()
    with pytest.raises(ls.StreamEnded, match="has ended: all 4 of its values were returned"):
        out.next_value(timeout=5)
    with pytest.raises(ls.StreamEnded):
        out.next_value()  # ended: never waits, however often it is asked
    assert isinstance(ls.StreamEnded("x"), ls.LivestackError)
    # the handle gives the same stream object: its place is kept
    assert job.output() is out


def test_next_value_is_per_stream_object_and_independent_of_for_loops(env):
    job = double.start()
    job.feed_many(range(5))
    job.end()
    job.wait(timeout=10)
    out = job.output()
    assert out.next_value() == 0
    assert list(out) == [0, 2, 4, 6, 8]  # a loop is a pass of its own
    assert out.next_value() == 2


def test_async_for_and_anext_value_wait_without_blocking_the_event_loop(env):
    job = double.start()

    async def main() -> tuple[list[int], int, int]:
        got: list[int] = []
        ticks = 0

        async def read() -> None:
            async for v in job.output():
                got.append(v)

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        reader, ticker = asyncio.create_task(read()), asyncio.create_task(tick())
        job.feed_many([1, 2])
        await asyncio.sleep(0.05)  # the loop runs while the reader waits
        job.feed(3)
        first = await job.output().anext_value(timeout=5)
        job.end()
        await asyncio.wait_for(reader, 5)
        ticker.cancel()
        with pytest.raises(ls.WaitTimeout):
            await double.start().output().anext_value(timeout=0.05)
        return got, ticks, first

    got, ticks, first = asyncio.run(main())
    assert got == [2, 4, 6] and first == 2
    assert ticks > 5


def test_a_failed_jobs_output_gives_its_values_then_raises_job_failed(env):
    job = breaks_at_3.start()
    job.feed_many([1, 2, 3, 4])
    job.end()
    got: list[int] = []
    with pytest.raises(ls.JobFailed, match="three"):
        for v in job.output():
            got.append(v)
    assert got == [1, 2]
    out = job.output()
    assert [out.next_value(), out.next_value()] == [1, 2]
    with pytest.raises(ls.JobFailed):
        out.next_value()


def test_a_cancelled_job_ends_a_waiting_loop(env):
    job = double.start()
    job.feed(1)
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.extend(job.output()))
    reader.start()
    wait_until(lambda: got == [2] or len(job.output()) == 1, timeout=5)
    job.cancel()
    reader.join(5)
    assert not reader.is_alive() and got == [2]


def test_a_flow_runs_exposed_output_reads_as_it_comes(env):
    flow = ls.Liveflow("reading-flow")
    flow.connect(double, twice)
    flow.expose(double.input(), "in")
    flow.expose(twice.output(), "out")
    run = flow.start()
    run.input("in").feed_many([1, 2, 3])
    run.end()
    assert list(run.output("out")) == [2, 2, 4, 4, 6, 6]


def test_an_int_index_is_refused_and_slices_are_rxpy(env):
    job = double.start()
    with pytest.raises(TypeError, match=r"not by 0: use stream.values\(\)\[i\]"):
        job.output()[0]
    seen: list[int] = []
    job.output()[1:3].subscribe(seen.append)
    job.feed_many([1, 2, 3, 4])
    job.end()
    job.wait(timeout=10)
    assert seen == [4, 6]


def test_with_the_memory_vault_a_loop_that_cannot_begin_at_the_first_value_warns(make_env):
    make_env(history=10)
    job = double.start()
    job.feed_many(range(100))
    job.end()
    job.wait(timeout=10)
    with pytest.warns(
        ls.TruncatedHistoryWarning, match=r"iteration starts at datapoint 90 of 100.*history=10"
    ):
        assert list(job.output()) == [2 * x for x in range(90, 100)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert job.output().values(last=3) == [194, 196, 198]  # asked for what is held: no warning


def test_with_sqlite_a_loop_reads_the_whole_stream_live_and_from_a_new_env(make_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    env = make_env(vault=url, history=10)
    job = double.start(env=env)
    job.feed_many(range(3000))  # far more than memory holds
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.extend(job.output()))
    reader.start()  # begins mid-stream: the older part comes from the file
    job.feed_many(range(3000, 3500))
    job.end()
    reader.join(20)
    assert got == [2 * x for x in range(3500)]
    job_id = job.job_id
    env.close()

    again = make_env(vault=url, history=10)
    again.register(double)
    stored = again.job(job_id).output()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # whole: nothing to warn about
        assert list(stored) == [2 * x for x in range(3500)]
        assert stored.values() == [2 * x for x in range(3500)]
        assert len(stored.to_pandas()) == 3500
    assert [stored.next_value() for _ in range(2)] == [0, 2]
    for _ in range(3498):
        stored.next_value()
    with pytest.raises(ls.StreamEnded):
        stored.next_value(timeout=1)


async def _collect_async(it: AsyncIterator[int]) -> list[int]:
    return [v async for v in it]


def test_an_ended_stream_of_every_kind_never_hangs(make_env, tmp_path):
    env = make_env()
    bare = ls.DataStream("bare")
    bare.end()
    assert list(bare) == []
    assert asyncio.run(_collect_async(aiter(bare))) == []
    with pytest.raises(ls.StreamEnded):
        bare.next_value()
    failed = ls.DataStream("failed")
    failed.push([1])
    failed.end(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        list(failed)
    job = double.start(env=env)
    job.end()
    t = time.monotonic()
    assert list(job.output()) == []
    assert time.monotonic() - t < 5


def test_with_redis_a_pure_client_reads_a_worker_processes_outputs_as_they_come(make_env, redis_url, workers):
    env = make_env(vault=redis_url, autostart=False)
    workers.append(Worker("redis_specs:slow_square", redis_url))
    job = redis_specs.slow_square.start(options={"delay": 0.001}, env=env)
    job.feed_many(range(20))
    out = job.output()
    assert out.next_value(timeout=30) == 0  # the first one, as soon as a worker made it
    job.feed_many(range(20, 40))
    job.end()
    assert list(out) == [x * x for x in range(40)]
    assert [out.next_value(timeout=5) for _ in range(39)] == [x * x for x in range(1, 40)]
    with pytest.raises(ls.StreamEnded):
        out.next_value(timeout=5)
    # read back by another env on the same server
    again = make_env(vault=redis_url, autostart=False)
    again.register(redis_specs.slow_square)
    assert list(again.job(job.job_id).output()) == [x * x for x in range(40)]


def test_a_whole_read_from_sqlite_has_no_duplicate_where_a_stored_row_spans_the_memory_bound(
    make_env, tmp_path
):
    # The writer stores several pushes (4,096 values each, each its own timestamp) in one
    # row. Where the first value still in memory fell inside such a row, before its last
    # push, the read of the older part went on past it and the values after came twice.
    url = f"sqlite:///{tmp_path / 'k.db'}"
    env = make_env(vault=url)
    job = double.start(env=env)
    job.feed_many(range(40_000))
    job.end()
    job.wait(timeout=30)
    expected = [2 * x for x in range(40_000)]
    assert job.output().values() == expected
    env.close()
    for k in range(1, 9):  # the memory bound inside each push in turn
        history = 40_000 - (4096 * k + 100)
        again = make_env(vault=url, history=history)
        stored = again.job(job.job_id).output()
        assert stored.values() == expected, history
        assert list(stored) == expected, history
        assert collect(stored.replay(), timeout=10) == expected, history
        again.close()


def test_next_value_from_several_threads_gives_each_value_to_one_of_them(env):
    job = double.start()
    out = job.output()
    got: list[list[int]] = [[], [], []]

    def take(mine: list[int]) -> None:
        try:
            while True:
                mine.append(out.next_value(timeout=10))
        except ls.StreamEnded:
            pass

    threads = [threading.Thread(target=take, args=(g,)) for g in got]
    for t in threads:
        t.start()
    for i in range(2000):
        job.feed(i)
    job.end()
    for t in threads:
        t.join(20)
    assert sorted(v for g in got for v in g) == [2 * x for x in range(2000)]
    assert all(g == sorted(g) for g in got)


def test_a_table_of_a_long_stream_neither_warns_nor_reads_it_whole(make_env):
    from livestack_nb.widgets import StreamTable

    make_env(history=50)
    job = double.start()
    job.feed_many(range(1000))
    job.end()
    job.wait(timeout=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = StreamTable(job.output(), max_rows=200)  # more than memory holds
        table.close()


def test_a_read_of_a_redis_stream_trimmed_by_maxlen_says_what_is_missing(make_env, redis_url):
    url = redis_url + "&maxlen=10"
    env = make_env(vault=url)
    job = double.start(env=env)
    for i in range(400):  # one entry per flush: far more than maxlen keeps
        job.feed(i)
        wait_until(lambda i=i: len(job.output()) == i + 1, timeout=5)
        env.flush()
    job.end()
    job.wait(timeout=20)
    again = make_env(vault=url, history=5)
    stored = again.job(job.job_id).output()
    with pytest.warns(ls.TruncatedHistoryWarning, match=r"datapoints 0\.\.\d+ of 400 are no longer stored"):
        kept = stored.values()
    assert 5 <= len(kept) < 400 and kept == [2 * x for x in range(400 - len(kept), 400)]
