"""The durable SQLite vault against the memory vault, on the throughput flow.

The same 3-spec flow as ``throughput.py`` (map, map, filtering map), fed with
``feed_many`` and with one ``feed`` per value, in an env whose vault is
``"memory"`` and in one whose vault is a fresh SQLite file. A run is timed
until ``run.wait()`` returns, which with the SQLite vault is when every
datapoint of the flow's four streams (input, two intermediate, output) and
every status is committed to the file. The figure is the ratio of the two.

Run with ``.venv/bin/python bench/vault.py [N] [REPEAT]`` (from the repository
root or from ``bench/``).
"""

from __future__ import annotations

import gc
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from throughput import feed_all, make_flow  # bench/ is on sys.path when this file runs

import livestack_nb as ls


def run_flow(vault: str, data: list[int], per_item: bool) -> tuple[float, int]:
    env = ls.LiveEnv(vault=vault)
    try:
        flow = make_flow(env)
        gc.collect()
        t0 = time.perf_counter()
        run = env.start(flow)
        feed_all(run, data, per_item)
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


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    data = list(range(n))
    print(f"{n:,} integers through map x2 + filter (best of {repeat}); timed until run.wait() returns\n")
    head = f"{'feeding':<12}{'memory ev/s':>14}{'sqlite ev/s':>14}{'ratio':>8}"
    print(f"{head}{'rows':>10}{'values stored':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, per_item in (("feed_many", False), ("feed", True)):
            # Memory and SQLite runs alternate, so a machine that gets busier
            # or quieter during the benchmark moves both sides alike.
            mem_t = sql_t = float("inf")
            outs = set()
            path = Path(tmp)
            for k in range(repeat):
                t, out = run_flow("memory", data, per_item)
                mem_t, _ = min(mem_t, t), outs.add(out)
                path = Path(tmp) / f"bench-{label}-{k}.db"
                t, out = run_flow(f"sqlite:///{path}", data, per_item)
                sql_t, _ = min(sql_t, t), outs.add(out)
            if len(outs) != 1:
                raise SystemExit(f"runs disagree on the output count: {outs}")
            rows, values = stored_rows(path)
            print(
                f"{label:<12}{n / mem_t:>14,.0f}{n / sql_t:>14,.0f}{mem_t / sql_t:>7.2f}x"
                f"{rows:>10,}{values:>16,}"
            )


if __name__ == "__main__":
    main()
