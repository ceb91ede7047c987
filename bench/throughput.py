"""Events per second through map x2 + filter: a plain loop, raw reactivex,
streamz, and a 3-spec livestack-nb Liveflow, measured in one run.

Run with ``make bench`` (or ``.venv/bin/python bench/throughput.py [N]``).
Ratios matter, not absolute figures: every contender does the same work on
the same machine in the same process.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

from reactivex import operators as ops
from reactivex.subject import Subject

import livestack_nb as ls


def double(x: int) -> int:
    return x * 2


def inc(x: int) -> int:
    return x + 1


def keep(x: int) -> bool:
    return x % 3 != 0


def plain_loop(data: list[int]) -> int:
    out = []
    for x in data:
        y = inc(double(x))
        if keep(y):
            out.append(y)
    return len(out)


def raw_reactivex(data: list[int]) -> int:
    out: list[int] = []
    subject: Subject[int] = Subject()
    subject.pipe(ops.map(double), ops.map(inc), ops.filter(keep)).subscribe(out.append)
    for x in data:
        subject.on_next(x)
    subject.on_completed()
    return len(out)


def streamz_chain(data: list[int]) -> int:
    import streamz

    source = streamz.Stream()
    out = source.map(double).map(inc).filter(keep).sink_to_list()
    for x in data:
        source.emit(x)
    return len(out)


def make_flow(env: ls.LiveEnv) -> ls.Liveflow:
    with env:

        @ls.job_spec(name="double")
        def s_double(x: int) -> int:
            return x * 2

        @ls.job_spec(name="inc")
        def s_inc(x: int) -> int:
            return x + 1

        @ls.job_spec(name="keep")
        def s_keep(x: int) -> int | None:
            return x if x % 3 != 0 else None

        flow = ls.Liveflow("bench")
        flow.connect(s_double, s_inc)
        flow.connect(s_inc, s_keep)
    return flow


def feed_all(job: ls.JobHandle, data: list[int], per_item: bool) -> None:
    """Feed ``data`` to a job or flow run, end its input and wait for it: with one
    ``feed_many`` call (chunks), or one ``feed`` call per value as a notebook loop would."""
    if per_item:
        feed = job.feed
        for x in data:
            feed(x)
    else:
        job.feed_many(data)
    job.end()
    job.wait(600)


def liveflow(data: list[int], per_item: bool) -> int:
    env = ls.LiveEnv()
    try:
        run = env.start(make_flow(env))
        feed_all(run, data, per_item)
        return len(run.output())
    finally:
        env.close()


def liveflow_batch(data: list[int]) -> int:
    """The flow fed with ``feed_many`` (values go through in chunks)."""
    return liveflow(data, per_item=False)


def liveflow_per_item(data: list[int]) -> int:
    """The flow fed one ``feed`` call per value, as a notebook loop would."""
    return liveflow(data, per_item=True)


def measure(fn: Callable[[list[int]], int], data: list[int], repeat: int) -> tuple[float, int]:
    best = float("inf")
    result = 0
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn(data)
        best = min(best, time.perf_counter() - t0)
    return len(data) / best, result


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    data = list(range(n))
    contenders: list[tuple[str, Callable[[list[int]], int]]] = [
        ("plain loop", plain_loop),
        ("raw reactivex", raw_reactivex),
        ("streamz", streamz_chain),
        ("Liveflow feed_many", liveflow_batch),
        ("Liveflow feed", liveflow_per_item),
    ]
    rates: dict[str, float] = {}
    expected = None
    for name, fn in contenders:
        rate, count = measure(fn, data, repeat)
        if expected is None:
            expected = count
        elif count != expected:
            raise SystemExit(f"{name} produced {count} values, expected {expected}")
        rates[name] = rate
    print(f"{n:,} integers through map x2 + filter (best of {repeat}), {expected:,} out\n")
    print(f"{'contender':<22}{'events/s':>14}{'vs reactivex':>14}{'vs streamz':>12}{'vs loop':>10}")
    for name, rate in rates.items():
        print(
            f"{name:<22}{rate:>14,.0f}{rate / rates['raw reactivex']:>13.2f}x"
            f"{rate / rates['streamz']:>11.2f}x{rate / rates['plain loop']:>9.2f}x"
        )


if __name__ == "__main__":
    main()
