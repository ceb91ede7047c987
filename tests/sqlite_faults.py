"""SQLite under SIGKILL: a writer process killed at random moments, round after round, seeded.

Each round starts a writer process on one SQLite file (the same file every
round, so it accumulates the wreckage of every earlier kill). The writer runs
jobs of every spec form (map, flat-map, processor, async map, async processor,
and a flow), one to three at a time, feeding them per value or in batches, and
prints what it was promised:

- ``ACK <job_id> <inputs> <outputs>`` once ``job.wait()`` returned;
- ``FLUSH <job_id> <inputs>`` once ``env.flush()`` returned after feeding that many.

The runner kills it with SIGKILL after a random delay, then opens the file in
a fresh env and checks:

- the file opens (and ``PRAGMA integrity_check`` says ``ok``);
- nothing acknowledged is lost: an ACKed job is ``completed`` with exactly its
  inputs and outputs, a FLUSHed job has at least that many inputs stored;
- no job reads back ``completed`` without all of its outputs: its outputs are
  the plain Python computation of its stored inputs, in order;
- a job that is not completed has stored outputs that are a prefix of that
  computation (nothing extra, nothing out of order);
- every stored stream is gap-free (seqs 0..n-1).

The same seed gives the same workloads and kill delays (where the kill lands
in the writer's work still depends on the machine's timing; a failure prints
the seed and round to replay).

Short version: ``tests/test_sqlite_faults.py`` (part of the normal suite).
Long version: ``make faults-sqlite`` or
``python tests/sqlite_faults.py --rounds 300 --seed 7``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import livestack_nb as ls

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# -- the specs the writer runs, and what each computes --------------------------------


@ls.job_spec(name="fk-map")
def fk_map(x: int) -> int:
    return x * 3


@ls.job_spec(name="fk-flat")
def fk_flat(x: int) -> Iterator[int]:
    yield x * 10
    yield x * 10 + 1


@ls.job_spec(name="fk-proc", outputs={"default": int})
def fk_proc(job: ls.LiveJob) -> None:
    for x in job.input:
        job.output.emit(x + 7)


@ls.job_spec(name="fk-amap")
async def fk_amap(x: int) -> int:
    return x - 5


@ls.job_spec(name="fk-aflat")
async def fk_aflat(x: int) -> AsyncIterator[int]:
    yield -x
    await asyncio.sleep(0)
    yield x


@ls.job_spec(name="fk-aproc", outputs={"default": int})
async def fk_aproc(job: ls.LiveJob) -> None:
    async for x in job.input:
        await job.output.emit(x * x)


@ls.job_spec(name="fk-inc")
def fk_inc(x: int) -> int:
    return x + 1


fk_flow = ls.Liveflow("fk-flow")
fk_flow.connect(fk_map, fk_inc)

SPECS: dict[str, ls.JobSpec] = {
    s.name: s for s in (fk_map, fk_flat, fk_proc, fk_amap, fk_aflat, fk_aproc, fk_flow)
}


def expected(spec: str, inputs: list[int]) -> list[int]:
    """What a job of ``spec`` emits for ``inputs``: the plain Python computation."""
    if spec == "fk-map":
        return [x * 3 for x in inputs]
    if spec == "fk-flat":
        return [y for x in inputs for y in (x * 10, x * 10 + 1)]
    if spec == "fk-proc":
        return [x + 7 for x in inputs]
    if spec == "fk-amap":
        return [x - 5 for x in inputs]
    if spec == "fk-aflat":
        return [y for x in inputs for y in (-x, x)]
    if spec == "fk-aproc":
        return [x * x for x in inputs]
    if spec == "fk-flow":
        return [x * 3 + 1 for x in inputs]
    raise KeyError(spec)


# -- the writer (a child process) -------------------------------------------------------


def writer(db: Path, seed: int) -> None:
    """Run jobs on ``db`` for ever, printing what was acknowledged (until killed)."""
    rng = random.Random(seed)
    env = ls.LiveEnv(vault=f"sqlite:///{db}", history=100)
    print("READY", flush=True)
    names = sorted(SPECS)
    while True:
        batch = []
        for _ in range(rng.randint(1, 3)):
            spec = SPECS[rng.choice(names)]
            n = rng.choice([1, 7, 100, 1000, 5000])
            values = [rng.randint(-1000, 1000) for _ in range(n)]
            batch.append((spec.start(env=env), values, rng.random()))
        for job, values, how in batch:
            if how < 0.3:
                for v in values:
                    job.feed(v)
            else:
                step = max(1, len(values) // 3)
                for i in range(0, len(values), step):
                    job.feed_many(values[i : i + step])
            if how > 0.8:
                env.flush()
                print(f"FLUSH {job.job_id} {len(values)}", flush=True)
            job.end()
        for job, values, _ in batch:
            job.wait(timeout=120)
            print(f"ACK {job.job_id} {len(values)} {len(job.output())}", flush=True)


# -- the checker ------------------------------------------------------------------------


@dataclass
class Tally:
    """What the rounds so far did and checked."""

    rounds: int = 0
    acked: int = 0
    flushed: int = 0
    completed: int = 0
    unfinished: int = 0
    streams: int = 0
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.rounds} rounds: {self.acked} acknowledged jobs, {self.flushed} flushes, "
            f"{self.completed} completed and {self.unfinished} unfinished jobs read back, "
            f"{self.streams} streams gap-free; {len(self.problems)} problem(s)"
        )


def _stored(vault: Any, stream_id: str) -> list[int]:
    """A stream's stored values, checking its seqs are 0..n-1."""
    points = vault.datapoints(stream_id)
    seqs = [p.seq for p in points]
    if seqs != list(range(len(seqs))):
        raise AssertionError(f"stream {stream_id}: seqs are not 0..{len(seqs) - 1}: {seqs[:20]}...")
    return [p.value for p in points]


def check(
    db: Path,
    acks: dict[str, tuple[int, int]],
    flushes: dict[str, int],
    tally: Tally,
    seen: set[str],
    where: str = "",
) -> None:
    """Open ``db`` in a fresh env and check every promise (see the module docstring).

    Jobs in ``seen`` were checked after an earlier round (no process writes
    them since) and are skipped; the ones checked now are added to it.
    """
    problems = tally.problems
    start = len(problems)
    con = sqlite3.connect(db)
    try:
        (integrity,) = con.execute("PRAGMA integrity_check").fetchone()
    finally:
        con.close()
    if integrity != "ok":
        tally.problems.append(f"integrity_check: {integrity}")
    env = ls.LiveEnv(vault=f"sqlite:///{db}")
    try:
        vault = env.vault
        records = {r.job_id: r for r in env.jobs()}
        for job_id, r in records.items():
            if r.spec not in SPECS or r.parent_id is not None or job_id in seen:
                continue  # a flow's own jobs are checked through their run
            seen.add(job_id)
            links = {(s.direction, s.tag): s.stream_id for s in vault.streams(job_id)}
            try:
                inputs = _stored(vault, links[("in", "default")])
                outputs = _stored(vault, links[("out", "default")])
            except AssertionError as e:
                tally.problems.append(str(e))
                continue
            tally.streams += 2
            want = expected(r.spec, inputs)
            if r.status == "completed":
                tally.completed += 1
                if outputs != want:
                    tally.problems.append(
                        f"{job_id} ({r.spec}) read back completed with {len(outputs)} outputs, "
                        f"{len(want)} expected from its {len(inputs)} inputs"
                    )
            else:
                tally.unfinished += 1
                if r.status == "failed":
                    tally.problems.append(f"{job_id} ({r.spec}) failed: {vault.statuses(job_id)[-1].detail}")
                if outputs != want[: len(outputs)]:
                    tally.problems.append(
                        f"{job_id} ({r.spec}, {r.status}): its {len(outputs)} stored outputs are not "
                        f"a prefix of the computation of its {len(inputs)} stored inputs"
                    )
            if job_id in acks:
                n_in, n_out = acks[job_id]
                if (r.status, len(inputs), len(outputs)) != ("completed", n_in, n_out):
                    tally.problems.append(
                        f"{job_id} ({r.spec}) acknowledged by wait() with {n_in} inputs and {n_out} "
                        f"outputs reads back {r.status} with {len(inputs)} and {len(outputs)}"
                    )
            if job_id in flushes and len(inputs) < flushes[job_id]:
                tally.problems.append(
                    f"{job_id} ({r.spec}): {flushes[job_id]} inputs flushed, {len(inputs)} read back"
                )
        for job_id in list(acks) + list(flushes):
            if job_id not in records:
                tally.problems.append(f"{job_id} was acknowledged but is not in the file")
    finally:
        env.close()
    problems[start:] = [f"{where}{p}" for p in problems[start:]]


# -- the runner -------------------------------------------------------------------------


def _read_lines(proc: subprocess.Popen[str], lines: list[str], ready: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("READY"):
            ready.set()
        lines.append(line.rstrip("\n"))
    ready.set()


def one_round(
    db: Path, seed: int, delay: float, acks: dict[str, tuple[int, int]], flushes: dict[str, int]
) -> str:
    """Start a writer with ``seed``, SIGKILL it ``delay`` s after it is ready; gather what it
    acknowledged.

    Returns the writer's stderr (empty unless it raised before it was killed).
    """
    env = dict(os.environ, PYTHONPATH=str(HERE) + os.pathsep + str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__)), "--writer", str(db), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=HERE,
    )
    lines: list[str] = []
    ready = threading.Event()
    reader = threading.Thread(target=_read_lines, args=(proc, lines, ready), daemon=True)
    reader.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the writer did not start within 60 s")
        time.sleep(delay)  # the fault's moment: what the writer is doing now is up to chance
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    reader.join(timeout=60)
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    if proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the writer exited with {proc.returncode} before it was killed:\n{err}")
    for line in lines:
        parts = line.split()
        if parts and parts[0] == "ACK":
            acks[parts[1]] = (int(parts[2]), int(parts[3]))
        elif parts and parts[0] == "FLUSH":
            flushes[parts[1]] = int(parts[2])
    return err


def run_rounds(db: Path, seed: int, rounds: int, max_delay: float = 1.0, log: Any = None) -> Tally:
    """``rounds`` rounds of write, SIGKILL, check on one file; see the module docstring."""
    rng = random.Random(seed)
    tally = Tally()
    seen: set[str] = set()
    for r in range(rounds):
        child_seed = rng.randrange(2**32)
        delay = rng.uniform(0.0, max_delay)
        acks: dict[str, tuple[int, int]] = {}
        flushes: dict[str, int] = {}
        one_round(db, child_seed, delay, acks, flushes)
        tally.rounds += 1
        tally.acked += len(acks)
        tally.flushed += len(flushes)
        before = len(tally.problems)
        check(db, acks, flushes, tally, seen, f"seed {seed} round {r} (kill after {delay:.3f} s): ")
        if log is not None:
            log(f"round {r}: kill after {delay:.3f} s; {tally}")
        if len(tally.problems) > before and log is not None:
            for p in tally.problems[before:]:
                log(f"  PROBLEM {p}")
    return tally


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="SIGKILL a SQLite writer at random moments and check the file.")
    p.add_argument("--rounds", type=int, default=300)
    p.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    p.add_argument("--max-delay", type=float, default=1.5, help="longest wait before the kill (s)")
    p.add_argument("--db", type=Path, default=None, help="the file (default: a new temp file)")
    p.add_argument("--writer", nargs=2, metavar=("DB", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.writer:
        writer(Path(args.writer[0]), int(args.writer[1]))
        return 0
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        db = args.db or Path(d) / "faults.db"
        print(f"seed {args.seed}, {args.rounds} rounds on {db.name}", flush=True)
        t0 = time.monotonic()
        tally = run_rounds(db, args.seed, args.rounds, args.max_delay, log=lambda m: print(m, flush=True))
        print(f"{tally} in {time.monotonic() - t0:.0f} s (seed {args.seed})")
        return 1 if tally.problems else 0


if __name__ == "__main__":
    sys.exit(main())
