"""Resident memory while events stream through a flow: bounded history must
really bound, and a fast producer ahead of a slow consumer must not pile up.

Run with ``.venv/bin/python bench/memory.py [N]`` (default 10,000,000). Each
scenario runs in a fresh process so one does not inherit another's heap.
Figures are growth in MB from a warmed-up point (after the first 1,000,000
events) to the end, not absolute sizes.
"""

from __future__ import annotations

import json
import subprocess
import sys

SCENARIO = r"""
import json, sys
import livestack_nb as ls

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0

@ls.job_spec
def double(x: int) -> int:
    return x * 2

@ls.job_spec
def inc(x: int) -> int:
    return x + 1

@ls.job_spec
def keep(x: int) -> int | None:
    return x if x % 3 else None

n, slow = int(sys.argv[1]), sys.argv[2] == "slow"
flow = ls.Liveflow("memory")
flow.connect(double, inc)
flow.connect(inc, keep)
run = flow.start()
if slow:  # a subscriber much slower than the producer
    def crawl(_value, _acc=[0]):
        _acc[0] += 1
        if _acc[0] % 64 == 0:
            sum(range(2_000))
    run.output().subscribe(crawl)
chunk, warm = 10_000, None
for i in range(0, n, chunk):
    run.feed_many(range(i, i + chunk))
    if warm is None and i >= 1_000_000:
        warm = rss_mb()
run.end()
run.wait(timeout=3600)
print(json.dumps({"warm": warm, "end": rss_mb(), "out": len(run.output())}))
"""


def scenario(n: int, kind: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", SCENARIO, str(n), kind], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    print(f"{n:,} integers through map x2 + filter, fed in chunks of 10,000\n")
    print(f"{'scenario':<28}{'RSS at 1M (MB)':>16}{'RSS at end (MB)':>17}{'growth (MB)':>13}")
    for kind, label in (("fast", "default flow"), ("slow", "slow subscriber")):
        r = scenario(n, kind)
        growth = r["end"] - r["warm"]
        print(f"{label:<28}{r['warm']:>16.1f}{r['end']:>17.1f}{growth:>13.1f}")


if __name__ == "__main__":
    main()
