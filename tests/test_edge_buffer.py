"""Values fed (or emitted) one at a time are gathered into chunks under the hood:
what that must not break, for every spec form.

Order across interleaved per-value and batch feeds, a slow trickle still seen
live, cancel and a kernel interrupt in the middle of a buffered run, a bad
value refused at the call that gave it with nothing before it lost, the flush
at ``end()``, and a feed into a failed job raising at once.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import livestack_nb as ls
from livestack_nb.testing import wait_until

FORMS = ["map", "flatmap", "processor", "async-map", "async-processor"]


def make_spec(form: str, name: str, fn: Callable[[int], int] = lambda x: x * 10) -> ls.JobSpec:
    """A spec of ``form`` whose output is ``fn`` of each int input."""
    if form == "map":

        @ls.job_spec(name=name)
        def m(x: int) -> int:
            return fn(x)

        return m
    if form == "flatmap":

        @ls.job_spec(name=name)
        def fm(x: int) -> Iterator[int]:
            yield fn(x)

        return fm
    if form == "processor":

        @ls.job_spec(name=name, inputs={"default": int}, outputs={"default": int})
        def p(job: ls.LiveJob) -> None:
            for x in job.input:
                job.output.emit(fn(x))

        return p
    if form == "async-map":

        @ls.job_spec(name=name)
        async def am(x: int) -> int:
            return fn(x)

        return am
    assert form == "async-processor"

    @ls.job_spec(name=name, inputs={"default": int}, outputs={"default": int})
    async def ap(job: ls.LiveJob) -> None:
        async for x in job.input:
            await job.output.emit(fn(x))

    return ap


def fails_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


@pytest.mark.parametrize("form", FORMS)
def test_values_keep_their_order_across_interleaved_feed_and_feed_many(env: ls.LiveEnv, form: str) -> None:
    job = make_spec(form, f"order-{form}").start()
    got: list[int] = []
    job.output().add_listener(got.extend)  # every value (the history keeps the last 10,000)
    expected = []
    n = 0
    for round_ in range(6):
        if round_ % 2:
            batch = list(range(n, n + 5000))  # more than a chunk: pushed in several
            job.feed_many(batch)
            expected += batch
            n += 5000
        else:
            for x in range(n, n + 3000):
                job.feed(x)
                expected.append(x)
            n += 3000
    job.end()
    job.wait(30)
    assert got == [x * 10 for x in expected]
    # the input stream recorded them in that order too, with consecutive seqs
    points = job._job._inputs["default"].datapoints(last=10_000)
    assert [p.value for p in points] == expected[-len(points) :]
    assert [p.seq for p in points] == list(range(len(expected) - len(points), len(expected)))


@pytest.mark.parametrize("form", FORMS)
def test_a_value_fed_alone_is_seen_live_without_an_end(env: ls.LiveEnv, form: str) -> None:
    """One ``feed`` and nothing after it: the buffer is pushed on a short deadline."""
    job = make_spec(form, f"alone-{form}").start()
    seen: list[tuple[float, list[Any]]] = []
    job.output().add_listener(lambda vs: seen.append((time.monotonic(), vs)))
    for x in range(3):
        t0 = time.monotonic()
        job.feed(x)
        wait_until(lambda x=x: len(seen) > x, timeout=2, message="a fed value never came out")
        assert seen[x][1] == [x * 10]
        assert seen[x][0] - t0 < 0.5  # tens of ms, unless the machine is very busy
    job.end()
    job.wait(5)


SLOW = 0.15


def slow_double(x: int) -> int:
    time.sleep(SLOW)
    return x * 2


@pytest.mark.parametrize("form", ["map", "flatmap", "processor"])
@pytest.mark.parametrize("how", ["feed_many", "feed"])
def test_a_slow_spec_shows_each_output_when_it_is_computed(env: ls.LiveEnv, form: str, how: str) -> None:
    job = make_spec(form, f"slow-{form}-{how}", slow_double).start()
    arrivals: list[float] = []
    job.output().add_listener(lambda vs: arrivals.extend(time.monotonic() for _ in vs))
    if how == "feed_many":
        job.feed_many(range(5))
    else:
        for x in range(5):
            job.feed(x)
    job.end()
    job.wait(10)
    assert job.result() == [0, 2, 4, 6, 8]
    assert len(arrivals) == 5
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # one by one, as computed: not all together at the end
    assert min(gaps) > SLOW / 3, gaps


@pytest.mark.parametrize("form", FORMS)
def test_end_flushes_what_was_fed_one_by_one(env: ls.LiveEnv, form: str) -> None:
    job = make_spec(form, f"end-{form}").start()
    for x in range(7):
        job.feed(x)
    job.end()
    assert job.result(timeout=10) == [x * 10 for x in range(7)]


@pytest.mark.parametrize("form", FORMS)
def test_a_bad_value_in_a_buffered_run_is_refused_at_its_feed_and_nothing_before_it_is_lost(
    env: ls.LiveEnv, form: str
) -> None:
    job = make_spec(form, f"bad-{form}").start()
    for x in range(100):
        job.feed(x)
    with pytest.raises(ls.DataValidationError, match=r"input tag 'default'"):
        job.feed("not a number")
    job.feed(100)
    job.end()
    assert job.result(timeout=10) == [x * 10 for x in range(101)]
    assert [f.tag for f in env.validation_failures(job.job_id)] == ["default"]


def held(gate: threading.Event) -> Callable[[int], int]:
    def fn(x: int) -> int:
        gate.wait(10)
        return x

    return fn


@pytest.mark.parametrize("form", FORMS)
def test_cancel_in_the_middle_of_a_buffered_run_stops_the_job_at_once(env: ls.LiveEnv, form: str) -> None:
    gate = threading.Event()
    job = make_spec(form, f"cancel-{form}", held(gate)).start()
    for x in range(10_000):
        job.feed(x)  # some pushed, some still in the buffer
    job.cancel()
    gate.set()
    assert job.status is ls.JobStatus.CANCELLED
    with pytest.raises(ls.JobClosedError):
        job.feed(1)
    job.wait(5)  # returns at once: cancelled


@pytest.mark.parametrize("form", FORMS)
def test_a_kernel_interrupt_in_a_feed_loop_loses_no_value_whose_feed_returned(form: str) -> None:
    """A real SIGINT lands in a loop of ``feed`` calls (between two of them, or inside
    the one that pushes a full buffer): every value whose ``feed`` returned comes out."""
    from conftest import closing_env

    for stop_at in (5, 4096, 4097, 9000):
        with closing_env():
            job = make_spec(form, f"sigint-{form}-{stop_at}").start()
            fed: list[int] = []
            with pytest.raises(KeyboardInterrupt):
                for x in range(20_000):
                    if x == stop_at:
                        signal.raise_signal(signal.SIGINT)
                    job.feed(x)
                    fed.append(x)
            job.end()
            out = job.result(timeout=20)
            assert out[: len(fed)] == [x * 10 for x in fed], stop_at
            assert len(out) in (len(fed), len(fed) + 1), stop_at


def flow_of(form: str, name: str, fn: Callable[[int], int]) -> ls.Liveflow:
    first = make_spec(form, f"{name}-a", fn)
    second = make_spec("map", f"{name}-b")
    flow = ls.Liveflow(name)
    flow.connect(first, second)
    flow.expose(first.input(), "in")
    flow.expose(second.output(), "out")
    return flow


@pytest.mark.parametrize("target", [*FORMS, "flow"])
@pytest.mark.parametrize("how", ["feed", "feed_many"])
def test_the_first_feed_after_a_job_failed_raises_job_failed(env: ls.LiveEnv, target: str, how: str) -> None:
    if target == "flow":
        run = flow_of("map", f"failing-flow-{how}", fails_on_three).start()
        handle = run
        feeder = run.input("in")
    else:
        handle = make_spec(target, f"failing-{target}-{how}", fails_on_three).start()
        feeder = handle.input()
    feeder.feed_many(range(5))
    wait_until(lambda: handle.status is ls.JobStatus.FAILED, timeout=10, message="the job did not fail")
    with pytest.raises(ls.JobFailed, match=r"ValueError: three.*takes no more values") as err:
        if how == "feed":
            feeder.feed(6)
        else:
            feeder.feed_many([6, 7])
    assert isinstance(err.value.__cause__, ValueError)
    with pytest.raises(ls.JobFailed):
        handle.wait(5)


@pytest.mark.parametrize("is_async", [False, True])
def test_values_fed_one_by_one_to_several_tags_keep_their_arrival_order(
    env: ls.LiveEnv, is_async: bool
) -> None:
    """Each tag has its own buffer: feeding another tag pushes the last one's first."""
    if is_async:

        @ls.job_spec(name="merge-async", inputs={"a": int, "b": int}, outputs={"default": str})
        async def merge_async(job: ls.LiveJob) -> None:
            async for tag, x in job.input.merge("a", "b"):
                await job.output.emit(f"{tag}{x}")

        spec = merge_async
    else:

        @ls.job_spec(name="merge-sync", inputs={"a": int, "b": int}, outputs={"default": str})
        def merge_sync(job: ls.LiveJob) -> None:
            for tag, x in job.input.merge("a", "b"):
                job.output.emit(f"{tag}{x}")

        spec = merge_sync
    job = spec.start()
    expected = []
    for i in range(300):
        tag = "a" if i % 3 else "b"
        job.input(tag).feed(i)
        expected.append(f"{tag}{i}")
    job.input("b").feed_many([1000, 1001])
    expected += ["b1000", "b1001"]
    job.input("a").feed(2000)
    expected.append("a2000")
    job.end()
    assert job.result(timeout=10) == expected
