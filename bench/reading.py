"""Reading a stream as it comes, against the batch call, in the same run (best of N).

    python bench/reading.py [N_VALUES] [REPEATS]

- live: a job fed ``N`` values while a ``for`` loop reads its output, against
  the same job whose output is read once at the end (``job.result()``);
- ended: ``list(stream)`` against ``stream.values()`` on an ended stream of
  ``N`` values pushed one per chunk (the worst case for a loop);
- next_value: ``N`` calls against one ``values()``;
- sqlite: a whole read of ``N`` values from a file (``values()`` of a handle
  read back with history=1,000), against ``values()`` of the same stream
  held whole in memory.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import livestack_nb as ls


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(n: int, repeats: int) -> None:
    env = ls.LiveEnv(history=n)

    @ls.job_spec
    def double(x: int) -> int:
        return 2 * x

    def batch() -> None:
        job = double.start(env=env)
        job.feed_many(range(n))
        job.end()
        assert len(job.result(timeout=60)) == n

    def looped() -> None:
        job = double.start(env=env)
        got = []
        reader = threading.Thread(target=lambda: got.extend(v for v in job.output()))
        reader.start()
        job.feed_many(range(n))
        job.end()
        reader.join()
        assert len(got) == n

    live_b, live_l = best(batch, repeats), best(looped, repeats)

    s = ls.DataStream("s", history=n)
    for i in range(n):
        s.push([i])
    s.end()
    ended_v = best(s.values, repeats)
    ended_l = best(lambda: list(s), repeats)

    def by_next() -> None:
        s._cursor = None
        for _ in range(n):
            s.next_value()

    next_n = best(by_next, repeats)

    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{Path(d) / 'r.db'}"
        w = ls.LiveEnv(vault=url, history=n)
        job = double.start(env=w)
        job.feed_many(range(n))
        job.end()
        job.wait(timeout=120)
        memory_v = best(lambda: job.output().values(), repeats)  # all held in memory
        w.close()
        r = ls.LiveEnv(vault=url, history=1000)
        stored = r.job(job.job_id).output()
        sqlite_v = best(lambda: stored.values(), repeats)
        r.close()

    env.close()
    print(f"{n} values, best of {repeats}")
    print(f"live: for loop {live_l * 1e3:.0f} ms, result() {live_b * 1e3:.0f} ms: {live_l / live_b:.2f}x")
    print(
        f"ended: list(stream) {ended_l * 1e3:.1f} ms, values() {ended_v * 1e3:.1f} ms: "
        f"{ended_l / ended_v:.2f}x"
    )
    print(f"next_value: {next_n * 1e3:.0f} ms, {next_n / ended_v:.1f}x values()")
    print(
        f"sqlite: whole read of a handle read back {sqlite_v * 1e3:.0f} ms, the same values() "
        f"held in memory {memory_v * 1e3:.1f} ms: {sqlite_v / memory_v:.1f}x"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000, int(sys.argv[2]) if len(sys.argv) > 2 else 5)
