"""Workers: defining one for a spec interface, concurrency, retries, isolation, threads."""

from __future__ import annotations

import threading
import time

import pytest
from pizzeria import Order, Oven

import livestack_nb as ls
from livestack_nb.testing import wait_until


def test_worker_for_a_spec_interface(env):
    calls: list[str] = []

    spec = ls.JobSpec("bake", input=Order, output=str, options=Oven)

    def processor(order: Order, options: Oven) -> str:
        calls.append(order.pizza)
        return f"{order.size}in {order.pizza}, spice {options.spice}"

    worker = spec.define_worker(processor, concurrency=4)
    assert isinstance(worker, ls.LiveWorkerDef)
    assert spec.run([{"pizza": "diavola"}], options={"spice": 9}, timeout=10) == ["12in diavola, spice 9"]
    assert calls == ["diavola"]


def test_concurrency_four_runs_four_jobs_at_once(env):
    barrier = threading.Barrier(4, timeout=5)

    @ls.job_spec(concurrency=4)
    def meet(n: int) -> int:
        barrier.wait()
        return n

    jobs = [meet.start() for _ in range(4)]
    for i, job in enumerate(jobs):
        job.feed(i)
        job.end()
    assert [job.result(timeout=10) for job in jobs] == [[0], [1], [2], [3]]


def test_concurrency_one_never_overlaps_jobs(env):
    lock = threading.Lock()
    active = [0]
    peak = [0]

    @ls.job_spec(concurrency=1)
    def alone(n: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)  # simulated work
        with lock:
            active[0] -= 1
        return n

    jobs = [alone.start() for _ in range(2)]
    for job in jobs:
        job.feed_many([1, 2])
        job.end()
    for job in jobs:
        job.wait(timeout=10)
    assert peak[0] == 1


def test_retries_then_success(env):
    attempts: list[int] = []

    @ls.job_spec(retries=2, retry_backoff=0.0)
    def flaky(n: int) -> int:
        attempts.append(n)
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        return n

    assert flaky.run([5], timeout=10) == [5]
    assert attempts == [5, 5, 5]


def test_retries_exhausted_fails_the_job(env):
    attempts: list[int] = []

    @ls.job_spec(retries=1, retry_backoff=0.0)
    def broken(n: int) -> int:
        attempts.append(n)
        raise RuntimeError(f"burnt {n}")

    job = broken.start()
    job.feed(1)
    job.end()
    with pytest.raises(ls.JobFailed) as info:
        job.wait(timeout=10)
    assert attempts == [1, 1]
    assert isinstance(info.value.__cause__, RuntimeError)
    assert job.status is ls.JobStatus.FAILED


def test_define_worker_retries_and_init(env):
    inits: list[int] = []
    attempts: list[int] = []
    spec = ls.JobSpec("careful", input=int, output=int)

    def init(*args: object, **kwargs: object) -> None:
        inits.append(len(attempts))

    def processor(n: int) -> int:
        attempts.append(n)
        if len(attempts) == 1:
            raise RuntimeError("first try fails")
        return n

    spec.define_worker(processor, init=init, retries=1, retry_backoff=0.0)
    assert spec.run([4], timeout=10) == [4]
    assert attempts == [4, 4]
    assert inits and inits[0] == 0  # init ran before the first datapoint


def test_a_failing_job_does_not_disturb_its_siblings(env):
    @ls.job_spec(concurrency=3)
    def fragile(n: int) -> int:
        if n < 0:
            raise ValueError("negative")
        return n

    good = fragile.start()
    bad = fragile.start()
    bad.feed(-1)
    good.feed(1)
    bad.end()
    with pytest.raises(ls.JobFailed):
        bad.wait(timeout=10)
    good.feed(2)
    good.end()
    assert good.result(timeout=10) == [1, 2]
    assert fragile.run([3], timeout=10) == [3]


def test_sync_processors_run_in_livestack_threads(env):
    names: list[str] = []

    @ls.job_spec
    def where(n: int) -> int:
        names.append(threading.current_thread().name)
        return n

    where.run([1], timeout=10)
    assert names[0] != threading.main_thread().name
    assert names[0].startswith("livestack")


def test_async_processors_run_on_the_env_loop(env):
    names: list[str] = []

    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    async def where(job: ls.LiveJob):
        async for n in job.input:
            names.append(threading.current_thread().name)
            await job.output.emit(n)

    where.run([1], timeout=10)
    where.run([2], timeout=10)
    assert names[0] == names[1]
    assert names[0].startswith("livestack")


def test_close_stops_workers_with_a_job_still_open(make_env):
    before = set(threading.enumerate())
    e = make_env()

    @ls.job_spec
    def idle(n: int) -> int:
        return n

    job = idle.start(env=e)
    job.feed(1)
    e.close()  # the job never got end(): closing cancels it and leaves no thread
    assert job.status is ls.JobStatus.CANCELLED
    assert job.output().ended
    assert not [t for t in threading.enumerate() if t.name.startswith("livestack") and t not in before]


def test_jobs_beyond_concurrency_wait_their_turn(env):
    @ls.job_spec(concurrency=2)
    def step(n: int) -> int:
        time.sleep(0.02)  # simulated work
        return n

    jobs = [step.start() for _ in range(5)]
    for i, job in enumerate(jobs):
        job.feed(i)
        job.end()
    assert [job.result(timeout=10) for job in jobs] == [[0], [1], [2], [3], [4]]


def test_feeding_from_several_threads_loses_nothing(env):
    @ls.job_spec
    def echo(n: int) -> int:
        return n

    job = echo.start()

    def feeder(base: int) -> None:
        for i in range(250):
            job.feed(base + i)

    threads = [threading.Thread(target=feeder, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    job.end()
    out = job.result(timeout=10)
    assert sorted(out) == sorted(k * 1000 + i for k in range(4) for i in range(250))
    for k in range(4):
        mine = [v for v in out if k * 1000 <= v < (k + 1) * 1000]
        assert mine == sorted(mine)  # each feeder's order is kept


def test_a_retried_datapoint_keeps_its_place(env):
    failed_once: set[int] = set()

    @ls.job_spec(retries=1, retry_backoff=0.0)
    def hiccup(n: int) -> int:
        if n % 2 == 0 and n not in failed_once:
            failed_once.add(n)
            raise RuntimeError("hiccup")
        return n

    assert hiccup.run(range(6), timeout=10) == [0, 1, 2, 3, 4, 5]
    assert failed_once == {0, 2, 4}


def test_a_queued_job_can_be_cancelled(env):
    gate = threading.Event()

    @ls.job_spec(concurrency=1)
    def hold(n: int) -> int:
        gate.wait(5)
        return n

    running, queued = hold.start(), hold.start()
    running.feed(1)
    queued.feed(2)
    queued.cancel()
    wait_until(lambda: queued.status is ls.JobStatus.CANCELLED, timeout=5)
    gate.set()
    running.end()
    assert running.result(timeout=10) == [1]
    assert hold.run([3], timeout=10) == [3]


def _feed_from_a_thread(job: ls.JobHandle, total: int, chunk: int) -> tuple[threading.Thread, list[int]]:
    fed = [0]

    def feed() -> None:
        for i in range(0, total, chunk):
            job.feed_many(range(i, i + chunk))
            fed[0] = i + chunk
        job.end()

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread, fed


def _held_then_released(job, gate: threading.Event, total: int) -> None:
    from livestack_nb.job import MAX_BACKLOG

    chunk = 1_000
    thread, fed = _feed_from_a_thread(job, total, chunk)
    try:
        wait_until(lambda: fed[0] >= MAX_BACKLOG - 2 * chunk, timeout=10)
        thread.join(0.5)  # bounded: the feeder must still be held by backpressure
        assert thread.is_alive()
        assert fed[0] <= MAX_BACKLOG + 2 * chunk  # what waits is bounded, not all it wanted to feed
    finally:
        gate.set()
    thread.join(30)
    assert not thread.is_alive()
    job.wait(timeout=30)
    assert job.result(last=1)[-1] == total - 1
    assert len(job.output()) == total  # nothing dropped


def test_a_feeder_ahead_of_a_slow_map_job_is_held_not_dropped(env):
    gate = threading.Event()

    @ls.job_spec
    def slow(n: int) -> int:
        gate.wait(30)
        return n

    _held_then_released(slow.start(), gate, 200_000)


def test_a_feeder_ahead_of_a_slow_processor_is_held_not_dropped(env):
    gate = threading.Event()

    @ls.job_spec
    def slow_proc(job: ls.LiveJob) -> None:
        gate.wait(30)
        for n in job.input:
            job.output.emit(n)

    _held_then_released(slow_proc.start(), gate, 200_000)


def test_a_backlog_fed_value_by_value_is_processed_in_bounded_chunks(env):
    """Queued values are merged into batches, but no larger than MAX_CHUNK: a
    whole backlog in one chunk would not stay in cache between two specs."""
    from livestack_nb.stream import MAX_CHUNK

    started, gate = threading.Event(), threading.Event()

    @ls.job_spec
    def held(n: int) -> int:
        started.set()
        gate.wait(30)
        return n

    total = 3 * MAX_CHUNK + 100
    job = held.start()
    sizes: list[int] = []
    job.output().add_listener(lambda values: sizes.append(len(values)))
    job.feed(0)
    try:
        wait_until(started.is_set, timeout=10)  # the drain holds value 0; the rest queues
        for i in range(1, total):
            job.feed(i)
    finally:
        gate.set()
    job.end()
    job.wait(timeout=30)
    assert sum(sizes) == total and job.result(last=1)[-1] == total - 1
    assert max(sizes) == MAX_CHUNK  # merged (not a chunk per value), and bounded
    assert len(sizes) <= 5


def test_a_generator_yielding_fast_pushes_bounded_chunks(env):
    from livestack_nb.stream import MAX_CHUNK

    @ls.job_spec
    def burst(n: int):
        yield from range(n)

    total = 5 * MAX_CHUNK
    job = burst.start()
    sizes: list[int] = []
    job.output().add_listener(lambda values: sizes.append(len(values)))
    job.feed(total)
    job.end()
    job.wait(timeout=30)
    assert sum(sizes) == total
    assert max(sizes) <= MAX_CHUNK


def test_a_slow_generator_is_seen_live_not_when_it_ends(env):
    gate = threading.Event()

    @ls.job_spec
    def sensor(n: int):
        for i in range(n):
            yield i
            if i == 2:
                gate.wait(30)  # the reader must see 0..2 while the generator is held here
            else:
                time.sleep(0.02)

    job = sensor.start()
    job.feed(5)
    try:
        wait_until(lambda: job.output().values() == [0, 1, 2], timeout=10)
    finally:
        gate.set()
    job.end()
    job.wait(timeout=10)
    assert job.result() == [0, 1, 2, 3, 4]
    assert [d.parents for d in job.output().datapoints()] == [(f"{job.input().stream.stream_id}:0",)] * 5


def test_a_generator_retried_after_part_of_it_was_seen_emits_nothing_twice(env):
    tries = [0]

    @ls.job_spec(retries=2, retry_backoff=0)
    def flaky(n: int):
        tries[0] += 1
        for i in range(n):
            yield i
            time.sleep(0.02)  # slow: each yield is pushed at once
            if i == 2 and tries[0] == 1:
                raise OSError("sensor unplugged")

    assert flaky.run([5], timeout=10) == [0, 1, 2, 3, 4]
    assert tries[0] == 2
