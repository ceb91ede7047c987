"""How long a cell is held, and how long the whole feed takes: ``feed_from`` (of a
range, and of a generator) against ``feed_many`` and one ``feed`` per value.

Run with ``.venv/bin/python bench/feed_from.py [VALUES] [REPEAT]``. Each round feeds
VALUES ints to a pass-through spec three ways, alternating, and keeps the best of
REPEAT for each: "cell" is how long the call holds the cell, "done" until the job has
output everything. ``feed_from`` should hold the cell for milliseconds whatever VALUES
is, and finish within a small factor of ``feed_many``.
"""

from __future__ import annotations

import sys
import time

import livestack_nb as ls


def one_round(spec: ls.JobSpec, n: int, how: str) -> tuple[float, float]:
    job = spec.start()
    t0 = time.perf_counter()
    if how == "feed_from":
        job.feed_from(range(n), end=True)
    elif how == "from gen":
        job.feed_from((i for i in range(n)), end=True)
    elif how == "feed_many":
        job.feed_many(range(n))
        job.end()
    else:
        for i in range(n):
            job.feed(i)
        job.end()
    cell = time.perf_counter() - t0
    job.wait(timeout=300)
    return cell, time.perf_counter() - t0


def main(n: int = 200_000, repeat: int = 3) -> None:
    with ls.LiveEnv() as env:
        spec = ls.JobSpec("pass_on", input=int, output=int)
        spec.define_worker(lambda v: v)
        best: dict[str, tuple[float, float]] = {}
        for _ in range(repeat):
            for how in ("feed_from", "from gen", "feed_many", "feed"):
                cell, done = one_round(spec, n, how)
                old = best.get(how, (float("inf"), float("inf")))
                best[how] = (min(old[0], cell), min(old[1], done))
        env.close()
    print(f"{n:,} values, best of {repeat}:")
    for how, (cell, done) in best.items():
        print(f"  {how:<10} cell held {cell * 1000:8.1f} ms   done in {done * 1000:8.1f} ms")
    f, m, one = best["feed_from"], best["feed_many"], best["feed"]
    print(f"  feed_from holds the cell {one[0] / f[0]:,.0f}x less than one feed per value;")
    print(f"  it is done in {f[1] / m[1]:.2f}x the time of feed_many,", end=" ")
    print(f"{f[1] / one[1]:.2f}x that of one feed per value;")
    print(f"  from a generator (read on a thread of its own) in {best['from gen'][1] / m[1]:.2f}x")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*args)
