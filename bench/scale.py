"""Cost per event from 1,000 to 10,000,000 events: flat, or something in the
path grows with the number of events (a list scanned per value, a history
that is not bounded, a counter kept per datapoint, a batch that grows with
the backlog).

Run with ``make bench`` (or ``.venv/bin/python bench/scale.py [ROUNDS]
[SIZES...]``, default 3 rounds of 1,000, 100,000 and 10,000,000 events).

The same 3-spec flow as ``throughput.py`` (map, map, filtering map) runs in
one env; a run is timed from ``env.start(flow)`` until ``run.wait()``
returns, fed with ``feed_many`` in chunks of 10,000 as a source would. The
fixed cost of a run (starting three jobs, ending them) is measured with an
empty run and reported apart; the marginal cost is ``(time(N) - time(0)) /
N``. A plain loop doing the same work at the same sizes shows what the
machine itself does as N grows. Sizes take turns within each round and the
best of all runs is kept for each size (small runs are repeated more often
in a round, so each size gets about the same time); the median marginal cost
is shown too.

On a shared machine a short run is more likely than a long one to fall in a
quiet moment, so the best of many short runs flatters them. The largest runs
(5 M events or more) are therefore also timed in tenths, by the process's CPU
time (both threads; unlike wall time it does not count the moments the
process was not running, and over a tenth, unlike a 1 ms run, the kernel's
accounting of the other thread is exact enough):

- late over early (tenths 6-10 over tenths 2-5): whether the cost drifts
  within one long run. The first tenth is left out: it is cheaper, as the
  feeder may run up to 65,536 values ahead of the flow before backpressure
  holds it;
- the best tenth: a best-of over stretches of a million events, to set
  against the best of the short runs.

And what does not depend on the machine's load at all:

- the largest batch of values the flow's output received: what a spec walks
  at once, which must not grow with a backlog (a batch that no longer fits in
  a core's cache made the cost per event grow over a long run);
- objects left behind per run (gc-tracked objects after a collection, per
  run, at each size): the same at every size means no per-event structure
  outlives a run (the env keeps each run's jobs and their bounded history);
- cyclic GC during the timed runs (collections of the oldest generation,
  time in the collector per event).
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from typing import Any

from throughput import make_flow  # the same 3-spec flow as the throughput figures

import livestack_nb as ls

CHUNK = 10_000
TENTHS_FROM = 5_000_000  # a tenth much longer than the feeder's lead (see the module docstring)


class GcWatch:
    """Counts oldest-generation collections and the time spent in the collector."""

    def __init__(self) -> None:
        self.full = 0
        self.seconds = 0.0
        self._t0 = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._t0
            self.full += info["generation"] == 2

    def close(self) -> None:
        gc.callbacks.remove(self._callback)


def flow_run(
    env: ls.LiveEnv,
    flow: ls.Liveflow,
    n: int,
    marks: list[float] | None = None,
    batches: list[int] | None = None,
) -> tuple[float, int]:
    """Wall seconds of one run of ``n`` events; ``marks`` gets the process's
    CPU time at each tenth of it, ``batches`` the size of each batch of output."""
    if batches is None:
        batches = []
    tenth = n // 10 if marks is not None and n >= TENTHS_FROM else 0
    t0, cpu0 = time.perf_counter(), time.process_time()
    run = env.start(flow)
    run.output().add_listener(lambda values: batches.append(len(values)))
    for i in range(0, n, CHUNK):
        run.feed_many(range(i, min(i + CHUNK, n)))
        if tenth and (i + CHUNK) % tenth == 0:
            assert marks is not None
            marks.append(time.process_time() - cpu0)
    run.end()
    run.wait(3600)
    return time.perf_counter() - t0, len(run.output())


def loop_run(n: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    count = 0
    for i in range(0, n, CHUNK):
        out = []
        for x in range(i, min(i + CHUNK, n)):
            y = x * 2 + 1
            if y % 3 != 0:
                out.append(y)
        count += len(out)
    return time.perf_counter() - t0, count


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    rounds = args[0] if args else 3
    sizes = args[1:] or [1_000, 100_000, 10_000_000]
    biggest = max(sizes)
    # repeat small sizes so that each gets roughly the same time per round
    times = {n: max(1, min(200, biggest // max(n, 1) // 10)) for n in [0, *sizes]}

    env = ls.LiveEnv()
    watch = GcWatch()
    wall: dict[int, list[float]] = {n: [] for n in [0, *sizes]}
    best_loop = dict.fromkeys(sizes, float("inf"))
    counts: dict[int, tuple[int, int]] = {}
    left: dict[int, list[float]] = {n: [] for n in sizes}
    largest = dict.fromkeys(sizes, 0)
    full_gcs = dict.fromkeys(sizes, 0)
    gc_seconds = dict.fromkeys(sizes, 0.0)
    tenths: list[list[float]] = []
    try:
        flow = make_flow(env)
        flow_run(env, flow, CHUNK)  # warm up
        order = [0, *sizes]
        for _ in range(rounds):
            order.reverse()
            for n in order:
                gc.collect()
                before = len(gc.get_objects())
                for _ in range(times[n]):
                    marks: list[float] = []
                    batches: list[int] = []
                    full, seconds = watch.full, watch.seconds
                    t, out = flow_run(env, flow, n, marks if n == biggest else None, batches)
                    wall[n].append(t)
                    if n:
                        largest[n] = max(largest[n], *batches)
                        full_gcs[n] += watch.full - full
                        gc_seconds[n] += watch.seconds - seconds
                        if len(marks) == 10:
                            tenths.append(marks)
                        tl, out_loop = loop_run(n)
                        best_loop[n] = min(best_loop[n], tl)
                        counts[n] = (out, out_loop)
                if n:
                    gc.collect()
                    left[n].append((len(gc.get_objects()) - before) / times[n])
    finally:
        watch.close()
        env.close()
    for n, (out, out_loop) in counts.items():
        if out != out_loop:
            raise SystemExit(f"{n:,} events: the flow emitted {out:,}, the loop {out_loop:,}")

    def marginal(n: int, pick: Any = min) -> float:
        """Wall ns per event beyond the fixed cost of a run (best or median of each)."""
        return float((pick(wall[n]) - pick(wall[0])) / n * 1e9)

    runs = ", ".join(f"{times[n] * rounds}" for n in sizes)
    print(f"map x2 + filter at {len(sizes)} sizes, {rounds} rounds (best of {runs} runs)\n")
    print(f"fixed cost of a run (start 3 jobs, end, wait): {min(wall[0]) * 1e3:.2f} ms\n")
    print(
        f"{'events':>12}{'ns/event':>10}{'marginal':>10}{'median':>8}{'loop':>7}{'flow/loop':>11}"
        f"{'largest batch':>15}{'objects/run':>13}{'full gcs':>10}{'gc ns/ev':>10}"
    )
    for n in sizes:
        best = marginal(n)
        loop = best_loop[n] / n * 1e9
        events = n * len(wall[n])
        print(
            f"{n:>12,}{min(wall[n]) / n * 1e9:>10.0f}{best:>10.0f}{marginal(n, statistics.median):>8.0f}"
            f"{loop:>7.0f}{best / loop:>10.2f}x{largest[n]:>15,}{statistics.median(left[n]):>13.0f}"
            f"{full_gcs[n]:>10}{gc_seconds[n] / events * 1e9:>10.1f}"
        )
    lo, hi = sizes[0], sizes[-1]
    print(
        f"\nmarginal ns/event, {hi:,} over {lo:,} events: {marginal(hi) / marginal(lo):.2f}x (best), "
        f"{marginal(hi, statistics.median) / marginal(lo, statistics.median):.2f}x (median)"
    )
    if tenths:
        tenth = biggest // 10
        print(f"\n{biggest:,}-event runs in tenths (CPU ns/event of each tenth), late over early:")
        drifts, stretches = [], []
        for marks in tenths:
            per = [(b - a) / tenth * 1e9 for a, b in zip([0.0, *marks[:-1]], marks, strict=True)]
            drifts.append(statistics.mean(per[5:]) / statistics.mean(per[1:5]))
            stretches.extend(per[1:])
            print(f"  {' '.join(f'{x:.0f}' for x in per)}   {drifts[-1]:.2f}x")
        best = min(stretches)
        print(f"late over early (tenths 6-10 over 2-5), median of the runs: {statistics.median(drifts):.2f}x")
        print(
            f"best tenth (of tenths 2-10, {len(stretches)} in all): {best:.0f} ns/event, "
            f"{best / marginal(lo):.2f}x the best {lo:,}-event run"
        )


if __name__ == "__main__":
    main()
