"""The durable SQLite vault against the memory vault, on the throughput flow.

The same 3-spec flow as ``throughput.py`` (map, map, filtering map), fed with
``feed_many`` and with one ``feed`` per value, in an env whose vault is
``"memory"`` and in one whose vault is a fresh SQLite file. A run is timed
until ``run.wait()`` returns, which with the SQLite vault is when every
datapoint of the flow's four streams (input, two intermediate, output) and
every status is committed to the file. The figure is the ratio of the two.

Run with ``.venv/bin/python bench/vault.py [N] [REPEAT]``.
"""

from __future__ import annotations

import gc
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from throughput import make_flow

import livestack_nb as ls


def run_flow(vault: str, data: list[int], per_item: bool) -> tuple[float, int]:
    env = ls.LiveEnv(vault=vault)
    try:
        flow = make_flow(env)
        gc.collect()
        t0 = time.perf_counter()
        run = env.start(flow)
        if per_item:
            feed = run.feed
            for x in data:
                feed(x)
        else:
            run.feed_many(data)
        run.end()
        run.wait(600)
        elapsed = time.perf_counter() - t0
        return elapsed, len(run.output())
    finally:
        env.close()


def stored_rows(path: Path) -> tuple[int, int]:
    con = sqlite3.connect(path)
    try:
        rows, values = con.execute("SELECT count(*), coalesce(sum(n), 0) FROM datapoints").fetchone()
        return int(rows), int(values)
    finally:
        con.close()


def best(fn: Callable[[], tuple[float, int]], repeat: int) -> tuple[float, int]:
    times, outs = [], set()
    for _ in range(repeat):
        t, out = fn()
        times.append(t)
        outs.add(out)
    if len(outs) != 1:
        raise SystemExit(f"runs disagree on the output count: {outs}")
    return min(times), outs.pop()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    data = list(range(n))
    print(f"{n:,} integers through map x2 + filter (best of {repeat}); timed until run.wait() returns\n")
    head = f"{'feeding':<12}{'memory ev/s':>14}{'sqlite ev/s':>14}{'ratio':>8}"
    print(f"{head}{'rows':>10}{'values stored':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, per_item in (("feed_many", False), ("feed", True)):
            mem_t, mem_out = best(lambda p=per_item: run_flow("memory", data, p), repeat)
            paths: list[Path] = []

            def sqlite_run(
                p: bool = per_item, paths: list[Path] = paths, name: str = label
            ) -> tuple[float, int]:
                path = Path(tmp) / f"bench-{name}-{len(paths)}.db"
                paths.append(path)
                return run_flow(f"sqlite:///{path}", data, p)

            sql_t, sql_out = best(sqlite_run, repeat)
            if sql_out != mem_out:
                raise SystemExit(f"sqlite run produced {sql_out} values, memory {mem_out}")
            rows, values = stored_rows(paths[-1])
            print(
                f"{label:<12}{n / mem_t:>14,.0f}{n / sql_t:>14,.0f}{mem_t / sql_t:>7.2f}x"
                f"{rows:>10,}{values:>16,}"
            )


if __name__ == "__main__":
    main()
