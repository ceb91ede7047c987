"""Scale-out with Redis: events/s through one worker process, and the speed-up
of two worker processes over one on a CPU-bound spec.

Starts its own redis-server on a free loopback port (no persistence, a temp
dir) unless ``--env`` names one, and its worker processes with the
``livestack-nb worker`` command. The client is a ``LiveEnv(vault=...,
autostart=False)`` in this process, as a notebook would be.

- throughput: one job of the map spec ``inc`` (``x + 1``) is fed N integers
  with ``feed_many`` (and N/10 with one ``feed`` call per value); timed from
  ``start()`` until the client has received all N outputs and the job is
  completed. Every value goes client -> Redis ->
  worker -> Redis -> client, and every datapoint (input and output) is stored
  in Redis.
- scale-out: J jobs of the CPU-bound spec ``burn`` (one value each, a
  pure-Python loop of L steps), run by one worker process and then by two;
  timed from the first ``start()`` until every job has completed.

Run with ``.venv/bin/python bench/redis_workers.py [--n N] [--jobs J] [--loop L]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis_bench_specs as specs
from throughput import feed_all

import livestack_nb as ls
from livestack_nb.testing import wait_until
from livestack_nb.vault.redis import RedisVault

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@contextmanager
def redis_server() -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed (apt-get install redis-server), or pass --env URL")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as d:
        args = ["--bind", "127.0.0.1", "--port", str(port), "--dir", d, "--save", "", "--appendonly", "no"]
        proc = subprocess.Popen([exe, *args], stdout=subprocess.DEVNULL)
        try:
            import redis

            r = redis.Redis(port=port)

            def up() -> bool:
                try:
                    return bool(r.ping())
                except redis.ConnectionError:
                    return False

            wait_until(up, timeout=10)
            r.close()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


@contextmanager
def workers(url: str, spec: str, count: int, concurrency: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = dict(os.environ, PYTHONPATH=str(HERE) + os.pathsep + str(ROOT))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "livestack_nb.cli",
                "worker",
                f"redis_bench_specs:{spec}",
                "--env",
                url,
                "--concurrency",
                str(concurrency),
            ],
            cwd=HERE,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        vault = RedisVault(url)
        try:
            pattern = vault.k("worker", "*")
            wait_until(lambda: len(vault._r.keys(pattern)) >= count, timeout=30)
        finally:
            vault.close()
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)


def throughput(base: str, n: int, per_item: bool = False) -> float:
    url = f"{base}?prefix=bench-{uuid.uuid4().hex[:6]}"
    with workers(url, "inc", 1, 1):
        env = ls.LiveEnv(vault=url, autostart=False)
        try:
            data = list(range(n))
            t0 = time.perf_counter()
            job = specs.inc.start(env=env)
            feed_all(job, data, per_item)
            elapsed = time.perf_counter() - t0
            assert len(job.output()) == n, len(job.output())
            assert job.output().last() == n
        finally:
            env.close()
    return n / elapsed


def scale(base: str, processes: int, jobs: int, loop: int) -> float:
    url = f"{base}?prefix=bench-{uuid.uuid4().hex[:6]}"
    with workers(url, "burn", processes, 1):
        env = ls.LiveEnv(vault=url, autostart=False)
        try:
            t0 = time.perf_counter()
            handles = []
            for _ in range(jobs):
                h = specs.burn.start(env=env)
                h.feed(loop)
                h.end()
                handles.append(h)
            for h in handles:
                h.wait(600)
            elapsed = time.perf_counter() - t0
            expected = specs.burn.worker_def.processor(loop)  # type: ignore[union-attr]
            assert all(h.result() == [expected] for h in handles)
        finally:
            env.close()
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default=None, help="a Redis URL (default: start a redis-server here)")
    p.add_argument("--n", type=int, default=1_000_000, help="values through one worker")
    p.add_argument("--jobs", type=int, default=16, help="CPU-bound jobs")
    p.add_argument("--loop", type=int, default=5_000_000, help="loop steps per CPU-bound job")
    p.add_argument("--repeat", type=int, default=5, help="runs of each measurement")
    args = p.parse_args()

    def run(url: str) -> None:
        rates = [throughput(url, args.n) for _ in range(args.repeat)]
        print(f"throughput, 1 worker: {max(rates):,.0f} events/s (best of {args.repeat}; N={args.n:,})")
        m = max(1, args.n // 10)
        rates = [throughput(url, m, per_item=True) for _ in range(args.repeat)]
        print(f"  the same with one feed() per value: {max(rates):,.0f} events/s (N={m:,})")
        t0 = time.perf_counter()
        specs.burn.worker_def.processor(args.loop)  # type: ignore[union-attr]
        alone = time.perf_counter() - t0
        ones, twos = [], []
        for _ in range(args.repeat):  # interleaved, so drift on the machine hits both alike
            ones.append(scale(url, 1, args.jobs, args.loop))
            twos.append(scale(url, 2, args.jobs, args.loop))
        one, two = statistics.median(ones), statistics.median(twos)
        ratios = [o / t for o, t in zip(ones, twos, strict=True)]
        print(
            f"CPU-bound, {args.jobs} jobs x {args.loop:,} steps ({args.jobs * alone:.2f}s of work in one "
            f"process without livestack): median of {args.repeat} runs: 1 worker {one:.2f}s, "
            f"2 workers {two:.2f}s"
        )
        print(
            f"speed-up of 2 worker processes over 1: {statistics.median(ratios):.2f}x "
            f"(median of {args.repeat} back-to-back pairs: {', '.join(f'{r:.2f}' for r in ratios)}; "
            f"{os.cpu_count()} cores)"
        )

    if args.env:
        run(args.env)
    else:
        with redis_server() as url:
            run(url)


if __name__ == "__main__":
    main()
