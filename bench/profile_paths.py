"""Where the time per value goes on each path of ``throughput.py``: cProfile in
every thread (the feeding thread and livestack-nb's worker threads), merged.

Run with ``.venv/bin/python bench/profile_paths.py [ROW] [N] [TOP]``, ROW one of
``flow-feed``, ``processor-feed``, ``processor-feed_many``, ``op``, ``flatmap-feed``
(default: all). Prints, per row, the function calls per value fed (which the
machine's load cannot move) and the functions with the most time of their own
(``tottime``) in nanoseconds per value fed (inflated by the profiler, and by load).
"""

from __future__ import annotations

import contextlib
import cProfile
import pstats
import sys
import threading
from collections.abc import Callable
from typing import Any

import throughput as tp  # bench/ is on sys.path when this file runs

ROWS: dict[str, Callable[[list[int]], int]] = {
    "flow-feed": tp.liveflow_per_item,
    "processor-feed": tp.processor_per_item,
    "processor-feed_many": tp.processor_batch,
    "op": tp.specs_as_operators,
    "flatmap-feed": tp.flatmap_per_item,
}


def profile(fn: Callable[[list[int]], int], data: list[int]) -> pstats.Stats:
    profiles: list[cProfile.Profile] = []
    run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        p = cProfile.Profile()
        profiles.append(p)
        p.enable()
        try:
            run(self)
        finally:
            p.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    main = cProfile.Profile()
    try:
        main.enable()
        fn(data)
        main.disable()
    finally:
        threading.Thread.run = run  # type: ignore[method-assign]
    stats = pstats.Stats(main)
    for p in profiles:
        with contextlib.suppress(TypeError):  # a thread that never ran a profiled call
            stats.add(p)
    return stats


def main() -> None:
    rows = [sys.argv[1]] if len(sys.argv) > 1 and sys.argv[1] != "all" else list(ROWS)
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 12
    data = list(range(n))
    for row in rows:
        stats = profile(ROWS[row], data)
        entries: list[tuple[float, int, str]] = []
        raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
        for (file, line, name), (_cc, nc, tt, _ct, _callers) in raw.items():
            where = f"{file.rsplit('/', 1)[-1]}:{line}({name})"
            entries.append((tt, nc, where))
        entries.sort(reverse=True)
        total = sum(e[0] for e in entries)
        calls = sum(e[1] for e in entries)
        print(
            f"\n{row}: {n:,} values, {total / n * 1e9:,.0f} ns/value profiled (all threads, own time), "
            f"{calls / n:.2f} function calls/value"
        )
        print(f"{'ns/value':>10}{'calls/value':>13}  function")
        for tt, nc, where in entries[:top]:
            print(f"{tt / n * 1e9:>10,.0f}{nc / n:>13.3f}  {where}")


if __name__ == "__main__":
    main()
