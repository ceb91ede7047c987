"""Resident memory while events stream through a flow: bounded history must
really bound, a fast producer ahead of a slow consumer must not pile up, and
many runs in one process (a notebook looping over a flow, a worker serving
jobs for days) must not grow with the number of runs.

Run with ``.venv/bin/python bench/memory.py [N] [RUNS]`` (defaults 10,000,000
events and 10,000 runs). Each scenario runs in a fresh process so one does not
inherit another's heap. Figures are growth in MB from a warmed-up point to the
end, not absolute sizes:

- events: after the first 1,000,000 events of one run to its end;
- runs: RUNS runs of 1,000 events each through the 3-spec flow, from after the
  10th run to the end, with the env's default retention (``keep_jobs=100``)
  and, for comparison, with every job kept (``keep_jobs=None``, RUNS/10 runs);
- worker: a ``livestack-nb worker`` process serving RUNS jobs (10 events each)
  from Redis (a redis-server of its own on a free loopback port), its RSS read
  from ``/proc`` after the 100th job and at the end (skipped without
  redis-server).
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


RUNS = r"""
import gc, json, sys
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

runs, keep_jobs = int(sys.argv[1]), None if sys.argv[2] == "all" else int(sys.argv[2])
env = ls.LiveEnv(keep_jobs=keep_jobs)
flow = ls.Liveflow("memory")
flow.connect(double, inc)
flow.connect(inc, keep)
values = list(range(1000))
warm = 0.0
for i in range(runs):
    run = flow.start(env=env)
    run.feed_many(values)
    run.end()
    run.wait(timeout=60)
    if i == 9:
        warm = rss_mb()
gc.collect()
print(json.dumps({"warm": warm, "end": rss_mb(), "jobs": len(env._jobs)}))
env.close()
"""


def runs_scenario(runs: int, keep: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", RUNS, str(runs), keep], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def worker_scenario(jobs: int) -> dict[str, float] | None:
    """A worker process serving ``jobs`` jobs from Redis; its RSS after 100 jobs and at the end."""
    import shutil

    if shutil.which("redis-server") is None:
        return None
    import uuid

    import redis_bench_specs as specs
    from redis_workers import redis_server, workers

    import livestack_nb as ls

    def worker_rss(pid: int) -> float:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
        return 0.0

    with redis_server() as base:
        url = f"{base}?prefix=mem-{uuid.uuid4().hex[:6]}"
        with workers(url, "inc", 1, 8) as procs:
            pid = procs[0].pid
            env = ls.LiveEnv(vault=url, autostart=False)
            warm = 0.0
            try:
                done = 0
                while done < jobs:
                    batch = [specs.inc.start(env=env) for _ in range(min(50, jobs - done))]
                    for h in batch:
                        h.feed_many(range(10))
                        h.end()
                    for h in batch:
                        h.wait(timeout=60)
                        assert len(h.output()) == 10
                    done += len(batch)
                    if done == 100:
                        warm = worker_rss(pid)
                end = worker_rss(pid)
            finally:
                env.close()
    return {"warm": warm, "end": end}


def scenario(n: int, kind: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", SCENARIO, str(n), kind], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    print(f"{n:,} integers through map x2 + filter, fed in chunks of 10,000\n")
    print(f"{'scenario':<28}{'RSS at 1M (MB)':>16}{'RSS at end (MB)':>17}{'growth (MB)':>13}")
    for kind, label in (("fast", "default flow"), ("slow", "slow subscriber")):
        r = scenario(n, kind)
        growth = r["end"] - r["warm"]
        print(f"{label:<28}{r['warm']:>16.1f}{r['end']:>17.1f}{growth:>13.1f}")
    print("\nruns of 1,000 integers through the same flow, one after another in one env\n")
    print(f"{'scenario':<34}{'RSS at 10 (MB)':>16}{'RSS at end (MB)':>17}{'growth (MB)':>13}")
    for count, keep, label in (
        (runs, "100", f"{runs:,} runs, keep_jobs=100"),
        (max(runs // 10, 20), "all", f"{max(runs // 10, 20):,} runs, keep_jobs=None"),
    ):
        r = runs_scenario(count, keep)
        print(f"{label:<34}{r['warm']:>16.1f}{r['end']:>17.1f}{r['end'] - r['warm']:>13.1f}")
    w = worker_scenario(runs)
    if w is None:
        print("\nworker: skipped (no redis-server)")
    else:
        head = f"{'worker process (Redis)':<34}{'RSS at 100 (MB)':>16}{'RSS at end (MB)':>17}"
        print(f"\n{head}{'growth (MB)':>13}")
        label = f"{runs:,} jobs of 10 events"
        print(f"{label:<34}{w['warm']:>16.1f}{w['end']:>17.1f}{w['end'] - w['warm']:>13.1f}")


if __name__ == "__main__":
    main()
