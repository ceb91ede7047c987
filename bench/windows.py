"""The log-line prototype: rolling p95 latency per path, written three ways.

Run with ``make bench`` (or ``.venv/bin/python bench/windows.py [LINES] [REPEAT] [--profile]``).

200,000 simulated web-server log lines (``"<ts> <method> <path> <status> <ms>"``)
are parsed, error responses (5xx) and malformed lines dropped, and for each
path the p95 latency over its last 1,000 requests is computed every 100
requests of that path; a p95 above the threshold is an alert. The same logic:

1. **plain Python**: one loop, a dict of deques (the baseline);
2. **hand-written processor**: a flow ``parse -> p95 processor -> alert`` whose
   processor holds a dict of deques (what the prototype had to write);
3. **ls.window**: a flow ``parse -> ls.window(count=1000, slide=100,
   key="path", agg={"p95": ls.agg.quantile("ms", 0.95)}) -> alert``.

Each flow is fed one ``feed`` per line and with one ``feed_many``; every
contender must give the same alerts. Contenders alternate and the best of
REPEAT is kept for each, so a machine that gets busier moves them alike.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import livestack_nb as ls

LINES = 200_000
WINDOW = 1_000
EVERY = 100
THRESHOLD = 180.0
PATHS = ["/", "/menu", "/order", "/order/status", "/cart", "/login", "/static/app.js", "/api/ovens"]


def log_lines(n: int, seed: int = 18) -> list[str]:
    """Simulated access log: latencies drift up on some paths now and then; a few errors and junk."""
    r = random.Random(seed)
    base = {p: r.uniform(20, 90) for p in PATHS}
    out = []
    t = 1_700_000_000.0
    for i in range(n):
        t += r.expovariate(500)
        path = r.choice(PATHS)
        slow = 2.5 if (i // 20_000) % 3 == 2 and path in ("/order", "/api/ovens") else 1.0
        ms = r.lognormvariate(0, 0.5) * base[path] * slow
        status = 503 if r.random() < 0.01 else 404 if r.random() < 0.02 else 200
        if r.random() < 0.001:
            out.append("garbage line")
            continue
        out.append(f"{t:.3f} GET {path} {status} {ms:.1f}")
    return out


def parse_line(line: str) -> dict[str, Any] | None:
    parts = line.split(" ")
    if len(parts) != 5:
        return None
    status = int(parts[3])
    if status >= 500:
        return None
    return {"ts": float(parts[0]), "path": parts[2], "status": status, "ms": float(parts[4])}


def p95_of(values: Any) -> float:
    """The 0.95 quantile with linear interpolation (pandas' default), as ls.agg.quantile."""
    s = sorted(values)
    pos = 0.95 * (len(s) - 1)
    lo = int(pos)
    if lo >= len(s) - 1:
        return float(s[-1])
    return float(s[lo] + (s[lo + 1] - s[lo]) * (pos - lo))


# -- 1. plain Python -----------------------------------------------------------------


def plain(lines: list[str]) -> list[tuple[str, int, float]]:
    recent: dict[str, deque[float]] = {}
    seen: dict[str, int] = {}
    alerts = []
    for line in lines:
        row = parse_line(line)
        if row is None:
            continue
        path = row["path"]
        d = recent.get(path)
        if d is None:
            d = recent[path] = deque(maxlen=WINDOW)
            seen[path] = 0
        d.append(row["ms"])
        n = seen[path] = seen[path] + 1
        if n % EVERY == 0:
            p95 = p95_of(d)
            if p95 > THRESHOLD:
                alerts.append((path, n, p95))
    return alerts


# -- 2 and 3. the flows -------------------------------------------------------------------


@ls.job_spec
def parse(line: str) -> dict | None:
    return parse_line(line)


@ls.job_spec
def rolling_p95(job: ls.LiveJob) -> None:
    recent: dict[str, deque[float]] = {}
    seen: dict[str, int] = {}
    for row in job.input:
        path = row["path"]
        d = recent.get(path)
        if d is None:
            d = recent[path] = deque(maxlen=WINDOW)
            seen[path] = 0
        d.append(row["ms"])
        n = seen[path] = seen[path] + 1
        if n % EVERY == 0:
            job.output.emit({"key": path, "end": n, "p95": p95_of(d)})


p95_window = ls.window(
    count=WINDOW, slide=EVERY, key="path", agg={"p95": ls.agg.quantile("ms", 0.95)}, name="p95 per path"
)


@ls.job_spec
def alert(row: dict) -> tuple | None:
    return (row["key"], row["end"], row["p95"]) if row["p95"] > THRESHOLD else None


def flow_of(middle: ls.JobSpec) -> ls.Liveflow:
    flow = ls.Liveflow(f"log-p95-{middle.name}")
    flow.connect(parse, middle)
    flow.connect(middle, alert)
    return flow


def run_flow(flow: ls.Liveflow, lines: list[str], per_line: bool) -> list[tuple[str, int, float]]:
    run = flow.start()
    out: list[Any] = []
    run.output().add_listener(out.extend)
    feeder = run.input()
    if per_line:
        for line in lines:
            feeder.feed(line)
    else:
        feeder.feed_many(lines)
    run.end()
    run.wait(timeout=600)
    # the window also closes the last open windows at the end of input: alerts for
    # partial windows; the fixed-slide contenders have none of those
    return [a for a in out if a[1] % EVERY == 0]


# -- running ---------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of the whole process (every thread), and the result.

    CPU time is what the work costs whatever else the machine runs: on a busy
    machine a flow's threads wait for a core, which wall time counts and CPU
    time does not.
    """
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, time.process_time() - c0, result


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else LINES
    repeat = int(args[1]) if len(args) > 1 else 5
    lines = log_lines(n)
    hand, windowed = flow_of(rolling_p95), flow_of(p95_window)
    contenders: dict[str, Callable[[], Any]] = {
        "plain Python": lambda: plain(lines),
        "hand-written processor, feed_many": lambda: run_flow(hand, lines, False),
        "ls.window, feed_many": lambda: run_flow(windowed, lines, False),
        "hand-written processor, feed per line": lambda: run_flow(hand, lines, True),
        "ls.window, feed per line": lambda: run_flow(windowed, lines, True),
    }
    if "--profile" in sys.argv:
        prof = cProfile.Profile()
        prof.enable()
        run_flow(windowed, lines, False)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        return
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    expected = plain(lines)
    for _ in range(repeat):
        for name, fn in contenders.items():
            took, used, result = timed(fn)
            assert result == expected, f"{name} gave other alerts than plain Python"
            best[name] = min(best.get(name, float("inf")), took)
            cpu[name] = min(cpu.get(name, float("inf")), used)
    base, cpu_base = best["plain Python"], cpu["plain Python"]
    print(f"{n:,} log lines, {len(expected)} alerts, best of {repeat}")
    print("| contender | wall s | lines/s | vs plain Python | CPU s | vs plain Python |")
    print("|---|---|---|---|---|---|")
    for name, took in best.items():
        c = cpu[name]
        rate = n / took
        print(f"| {name} | {took:.3f} | {rate:,.0f} | {took / base:.2f}x | {c:.3f} | {c / cpu_base:.2f}x |")


if __name__ == "__main__":
    main()
