"""Events per second through map x2 + filter: a plain loop, raw reactivex,
streamz, and livestack-nb written the ways a notebook user writes it first,
measured in one run.

The livestack-nb rows: a 3-spec Liveflow fed with ``feed_many`` and with one
``feed`` per value; a processor (``for x in job.input: out.emit(...)``) fed
both ways; the three specs as RxPY operators (``subject.pipe(a.op(), b.op(),
c.op())``); a flat-map (generator) spec fed one value at a time. Each is set
against raw reactivex doing the same work. The last line compares the cost
per value of one ``feed`` per value at N and at N / 10 values.

Run with ``make bench`` (or ``.venv/bin/python bench/throughput.py [N] [REPEAT] [ROWS]``,
ROWS a comma-separated subset of the livestack-nb rows' names).
Ratios matter, not absolute figures: every contender does the same work on
the same machine in the same process.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable, Iterator

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


def make_processor(env: ls.LiveEnv) -> ls.JobSpec:
    with env:

        @ls.job_spec(name="proc", inputs={"default": int}, outputs={"default": int})
        def proc(job: ls.LiveJob) -> None:
            out = job.output()
            for x in job.input:
                y = x * 2 + 1
                if y % 3 != 0:
                    out.emit(y)

    return proc


def processor(data: list[int], per_item: bool) -> int:
    env = ls.LiveEnv()
    try:
        job = env.start(make_processor(env))
        feed_all(job, data, per_item)
        return len(job.output())
    finally:
        env.close()


def processor_batch(data: list[int]) -> int:
    """A processor job fed with ``feed_many``."""
    return processor(data, per_item=False)


def processor_per_item(data: list[int]) -> int:
    """A processor job fed one ``feed`` call per value."""
    return processor(data, per_item=True)


def make_flatmap(env: ls.LiveEnv) -> ls.JobSpec:
    with env:

        @ls.job_spec(name="fm")
        def fm(x: int) -> Iterator[int]:
            y = x * 2 + 1
            if y % 3 != 0:
                yield y

    return fm


def flatmap_per_item(data: list[int]) -> int:
    """A flat-map (generator) spec fed one ``feed`` call per value."""
    env = ls.LiveEnv()
    try:
        job = env.start(make_flatmap(env))
        feed_all(job, data, per_item=True)
        return len(job.output())
    finally:
        env.close()


def specs_as_operators(data: list[int]) -> int:
    """The three specs of the flow as RxPY operators on a Subject."""
    env = ls.LiveEnv()
    try:
        flow = make_flow(env)
        a, b, c = (n.spec for n in flow._nodes.values())
        out: list[int] = []
        errors: list[Exception] = []
        done = threading.Event()
        subject: Subject[int] = Subject()

        def on_error(e: Exception) -> None:
            errors.append(e)
            done.set()

        with env:  # the operators' jobs run in this env
            subject.pipe(a.op(), b.op(), c.op()).subscribe(out.append, on_error, done.set)
        for x in data:
            subject.on_next(x)
        subject.on_completed()
        if not done.wait(600):
            raise SystemExit("the operator chain did not complete")
        if errors:
            raise SystemExit(f"the operator chain failed: {errors[0]!r}")
        return len(out)
    finally:
        env.close()


CPU: dict[str, float] = {}  # best CPU seconds of each contender (all its threads)


def measure(fn: Callable[[list[int]], int], data: list[int], repeat: int) -> tuple[float, int]:
    """Best events/s of ``repeat`` runs (wall clock); the best CPU time goes to ``CPU``."""
    best = best_cpu = float("inf")
    result = 0
    for _ in range(repeat):
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn(data)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    CPU[fn.__name__] = best_cpu
    return len(data) / best, result


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    data = list(range(n))
    # (name, function, the rate it is set against, target ratio)
    contenders: list[tuple[str, Callable[[list[int]], int], str, float | None]] = [
        ("plain loop", plain_loop, "", None),
        ("raw reactivex", raw_reactivex, "", None),
        ("streamz", streamz_chain, "", None),
        ("Liveflow feed_many", liveflow_batch, "raw reactivex", 3.0),
        ("Liveflow feed", liveflow_per_item, "raw reactivex", 2.0),
        ("processor feed_many", processor_batch, "raw reactivex", 2.0),
        ("processor feed", processor_per_item, "raw reactivex", 1.0),
        ("specs as .op()", specs_as_operators, "raw reactivex", 0.75),
        ("flat-map feed", flatmap_per_item, "raw reactivex", 1.0),
    ]
    if len(sys.argv) > 3:  # only these rows (and the baselines), e.g. "Liveflow feed,specs as .op()"
        wanted = {"plain loop", "raw reactivex", "streamz", *sys.argv[3].split(",")}
        contenders = [c for c in contenders if c[0] in wanted]
    rates: dict[str, float] = {}
    expected = None
    for name, fn, _, _ in contenders:
        rate, count = measure(fn, data, repeat)
        if expected is None:
            expected = count
        elif count != expected:
            raise SystemExit(f"{name} produced {count} values, expected {expected}")
        rates[name] = rate
    small = data[: max(1, n // 10)]
    cpu = dict(CPU)  # (the run at N / 10 below is not a row)
    small_rate = measure(liveflow_per_item, small, repeat)[0] if "Liveflow feed" in rates else 0.0
    print(f"{n:,} integers through map x2 + filter (best of {repeat}), {expected:,} out\n")
    print(
        f"{'contender':<22}{'events/s':>14}{'vs reactivex':>14}"
        f"{'vs streamz':>12}{'vs loop':>10}{'target':>10}{'CPU vs rx':>11}"
    )
    rx_cpu = cpu["raw_reactivex"]
    for name, fn, _, target in contenders:
        rate = rates[name]
        tgt = f">= {target:g}x" if target is not None else ""
        print(
            f"{name:<22}{rate:>14,.0f}{rate / rates['raw reactivex']:>13.2f}x"
            f"{rate / rates['streamz']:>11.2f}x{rate / rates['plain loop']:>9.2f}x{tgt:>10}"
            f"{rx_cpu / cpu[fn.__name__]:>10.2f}x"
        )
    print(
        "\n(CPU vs rx: raw reactivex's CPU time over the contender's, all threads counted;"
        " less moved by the machine's load than the wall-clock figures)"
    )
    if small_rate:
        cpu_ratio = (cpu["liveflow_per_item"] / n) / (CPU["liveflow_per_item"] / len(small))
        print(
            f"\nLiveflow feed, cost per value at {n:,} over {len(small):,} values: "
            f"{small_rate / rates['Liveflow feed']:.2f}x wall, {cpu_ratio:.2f}x CPU (target <= 1.2x)"
        )


if __name__ == "__main__":
    main()
