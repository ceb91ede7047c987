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
is shown too, since a short run is more likely than a long one to fall in a
quiet moment of a shared machine.

Wall time on a shared machine is noisy, so the script also reports what does
not depend on it:

- the largest batch of values the flow's output received: what a spec walks
  at once, which must not grow with a backlog (a batch that no longer fits in
  a core's cache made the cost per event grow over a long run);
- objects left behind per run (gc-tracked objects after a collection, per
  run, at each size): the same at every size means no per-event structure
  outlives a run (the env keeps each run's jobs and their bounded history);
- cyclic GC during the timed runs (collections of the oldest generation,
  time in the collector per event);
- the largest runs (5 M events or more) timed in tenths, as fed: the later
  tenths against the earlier ones show whether the cost drifts within one
  long run (the first tenth is left out: it is cheaper, as the feeder may run
  up to 65,536 values ahead of the flow before backpressure holds it); and
  the best tenth is a best-of over stretches of a million events, closer to
  the best-of over many short runs than one long run's total is.
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


class Clocks:
    """Wall time and this process's CPU time (both threads of the flow) since creation."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0


def flow_run(
    env: ls.LiveEnv,
    flow: ls.Liveflow,
    n: int,
    marks: list[float] | None = None,
    batches: list[int] | None = None,
) -> tuple[float, float, int]:
    """Wall and CPU seconds of one run of ``n`` events; ``marks`` gets the CPU
    time at each tenth of it, ``batches`` the size of each batch of output."""
    if batches is None:
        batches = []
    tenth = n // 10 if marks is not None and n >= TENTHS_FROM else 0
    clocks = Clocks()
    run = env.start(flow)
    run.output().add_listener(lambda values: batches.append(len(values)))
    for i in range(0, n, CHUNK):
        run.feed_many(range(i, min(i + CHUNK, n)))
        if tenth and (i + CHUNK) % tenth == 0:
            assert marks is not None
            marks.append(clocks.read()[1])
    run.end()
    run.wait(3600)
    wall, cpu = clocks.read()
    return wall, cpu, len(run.output())


def loop_run(n: int) -> tuple[float, float, int]:
    clocks = Clocks()
    count = 0
    for i in range(0, n, CHUNK):
        out = []
        for x in range(i, min(i + CHUNK, n)):
            y = x * 2 + 1
            if y % 3 != 0:
                out.append(y)
        count += len(out)
    wall, cpu = clocks.read()
    return wall, cpu, count


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
    cpu: dict[int, list[float]] = {n: [] for n in [0, *sizes]}
    loop_cpu = dict.fromkeys(sizes, float("inf"))
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
                    w, c, out = flow_run(env, flow, n, marks if n == biggest else None, batches)
                    wall[n].append(w)
                    cpu[n].append(c)
                    if n:
                        largest[n] = max(largest[n], *batches)
                        full_gcs[n] += watch.full - full
                        gc_seconds[n] += watch.seconds - seconds
                        if len(marks) == 10:
                            tenths.append(marks)
                        _, lc, out_loop = loop_run(n)
                        loop_cpu[n] = min(loop_cpu[n], lc)
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

    def marginal(seconds: dict[int, list[float]], n: int, pick: Any = min) -> float:
        """ns per event beyond the fixed cost of a run (best or median of each)."""
        return float((pick(seconds[n]) - pick(seconds[0])) / n * 1e9)

    runs = ", ".join(f"{times[n] * rounds}" for n in sizes)
    print(f"map x2 + filter at {len(sizes)} sizes, {rounds} rounds (best of {runs} runs)\n")
    print(
        f"fixed cost of a run (start 3 jobs, end, wait): {min(cpu[0]) * 1e3:.2f} ms CPU, "
        f"{min(wall[0]) * 1e3:.2f} ms wall\n"
    )
    print("marginal ns/event: CPU time of the process (both threads), best and median; wall time, best")
    print(
        f"{'events':>12}{'cpu':>7}{'median':>8}{'wall':>7}{'loop':>7}{'flow/loop':>11}"
        f"{'largest batch':>15}{'objects/run':>13}{'full gcs':>10}{'gc ns/ev':>10}"
    )
    for n in sizes:
        best = marginal(cpu, n)
        loop = loop_cpu[n] / n * 1e9
        events = n * len(cpu[n])
        print(
            f"{n:>12,}{best:>7.0f}{marginal(cpu, n, statistics.median):>8.0f}{marginal(wall, n):>7.0f}"
            f"{loop:>7.0f}{best / loop:>10.2f}x{largest[n]:>15,}{statistics.median(left[n]):>13.0f}"
            f"{full_gcs[n]:>10}{gc_seconds[n] / events * 1e9:>10.1f}"
        )
    lo, hi = sizes[0], sizes[-1]
    print(
        f"\nmarginal ns/event, {hi:,} over {lo:,} events: "
        f"CPU {marginal(cpu, hi) / marginal(cpu, lo):.2f}x (best), "
        f"{marginal(cpu, hi, statistics.median) / marginal(cpu, lo, statistics.median):.2f}x (median); "
        f"wall {marginal(wall, hi) / marginal(wall, lo):.2f}x (best)"
    )
    if tenths:
        tenth = biggest // 10
        print(
            f"\n{biggest:,}-event runs in tenths (CPU ns/event of each tenth), and late over early "
            "(tenths 6-10 over 2-5)"
        )
        drifts, stretches = [], []
        for marks in tenths:
            per = [(b - a) / tenth * 1e9 for a, b in zip([0.0, *marks[:-1]], marks, strict=True)]
            drifts.append(statistics.mean(per[5:]) / statistics.mean(per[1:5]))
            stretches.extend(per[1:])
            print(f"  {' '.join(f'{x:.0f}' for x in per)}   {drifts[-1]:.2f}x")
        best = min(stretches)
        print(f"late over early, median of the runs: {statistics.median(drifts):.2f}x")
        print(
            f"best tenth (of tenths 2-10, {len(stretches)} in all): {best:.0f} ns/event, "
            f"{best / marginal(cpu, lo):.2f}x the best {lo:,}-event run"
        )


if __name__ == "__main__":
    main()
