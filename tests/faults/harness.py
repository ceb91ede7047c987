"""Rounds of faults against real worker processes and a real redis-server.

A round is planned from its seed alone (how many workers, which jobs with
which input, which faults when), so a failing round is replayed by running
its seed again (``python tests/faults/run.py --seed S --rounds 1``); only
the timing of the processes differs between runs.

In a round, 1-3 ``livestack-nb worker`` processes serve every spec of
:mod:`fault_specs`; this process, a pure client (``autostart=False``), starts
one job of each spec and feeds it from a thread (one value at a time or in
batches) while a second thread injects the faults: SIGKILL (a replacement
worker is started when none is left, or by the plan's choice) or SIGSTOP
for longer than the lease, then SIGCONT (the worker wakes after its jobs were
taken over); with ``--restarts`` (``make faults`` only), also the redis-server
restarted (it keeps an append-only file). Faults land while the client is still feeding and after it
ended. Then every job must be completed, and each tag's outputs, seen live
and read back from a new env, must equal the plain Python computation: no
value lost, none twice, in order.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fault_specs
from redis_support import _pinged, free_port

import livestack_nb as ls
from livestack_nb.testing import wait_until

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LEASE = 1.0


class Server:
    """A redis-server with an append-only file (fsync always) that a round may restart:
    stopped (SIGTERM: it writes its file) and started again on the same port and files."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data)]
        args += ["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _pinged(self.port), timeout=30, message="redis answers")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def restart(self) -> None:
        self.stop()
        self.start()


class Pool:
    """The worker processes of a run; each serves every spec of :mod:`fault_specs`.

    With a :class:`Server`, rounds also restart it (the ``restart`` fault).
    """

    def __init__(
        self,
        url: str,
        logs: Path,
        *,
        lease: float = LEASE,
        concurrency: int = 2,
        server: Server | None = None,
    ) -> None:
        self.url = url
        self.logs = logs
        self.lease = lease
        self.concurrency = concurrency
        self.server = server
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.started = 0
        self._probe = ls.LiveEnv(vault=url, autostart=False)

    def alive(self) -> list[tuple[str, subprocess.Popen[bytes]]]:
        return [(n, p) for n, p in self.procs if p.poll() is None]

    def start(self) -> str:
        name = f"w{self.started}"
        self.started += 1
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]))
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - the process owns it
        args = [sys.executable, "-m", "livestack_nb.cli", "worker"]
        args += [f"fault_specs:{s}" for s in fault_specs.SPECS]
        args += ["--env", self.url, "--lease", str(self.lease), "--concurrency", str(self.concurrency)]
        args += ["--max-deliveries", "50", "--drain-timeout", "5", "--name", name]
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=HERE, env=env)
        log.close()
        self.procs.append((name, proc))
        return name

    def wait_ready(self, names: list[str], timeout: float = 60) -> None:
        vault: Any = self._probe.vault
        keys = [vault.k("worker", f"{n}-{s}") for n in names for s in fault_specs.SPECS]
        wait_until(
            lambda: vault._r.exists(*keys) == len(keys), timeout=timeout, message=f"workers {names} up"
        )

    def resize(self, k: int) -> None:
        """``k`` workers alive, ready to take jobs."""
        alive = self.alive()
        for _, p in alive[k:]:
            p.send_signal(signal.SIGTERM)
        for _, p in alive[k:]:
            p.wait(30)
        new = [self.start() for _ in range(k - len(alive))]
        if new:
            self.wait_ready(new)

    def log(self, name: str) -> str:
        """What worker ``name`` printed and logged so far."""
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for _, p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(30)
        self._probe.close()


@dataclass
class Fault:
    at: float  # seconds after the jobs started
    kind: str  # "kill" or "stop"
    victim: int  # index into the workers alive then
    stall: float = 0.0  # how long a stopped worker stays stopped
    restart: bool = False  # after a kill, start a replacement (also when none is left)


@dataclass
class Plan:
    seed: int
    workers: int
    inputs: dict[str, list[int]]
    delays: dict[str, float]
    batches: dict[str, bool]
    order: list[str]  # which job the next value is fed to
    gaps: list[float]  # sleep after each feed
    faults: list[Fault]

    @classmethod
    def of(cls, seed: int, lease: float = LEASE, *, restarts: bool = False) -> Plan:
        rng = random.Random(seed)
        workers = rng.randint(1, 3)
        inputs = {s: [rng.randrange(1000) for _ in range(rng.randint(5, 30))] for s in fault_specs.SPECS}
        delays = {s: rng.choice([0.0, 0.002, 0.01, 0.03]) for s in fault_specs.SPECS}
        batches = {s: rng.random() < 0.3 for s in fault_specs.SPECS}
        order = [s for s in fault_specs.SPECS for _ in inputs[s]]
        rng.shuffle(order)
        gaps = [rng.choice([0.0, 0.0, 0.002, 0.01, 0.03]) for _ in order]
        faults = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(["kill", "stop", "restart"] if restarts else ["kill", "stop"])
            faults.append(
                Fault(
                    at=rng.uniform(0.0, 2.5),
                    kind=kind,
                    victim=rng.randrange(3),
                    stall=lease * rng.uniform(1.5, 3.0) if kind == "stop" else 0.0,
                    restart=rng.random() < 0.5,
                )
            )
        faults.sort(key=lambda f: f.at)
        return cls(seed, workers, inputs, delays, batches, order, gaps, faults)


@dataclass
class Outcome:
    seed: int
    faults: list[str] = field(default_factory=list)  # what was injected, as it happened
    failures: list[str] = field(default_factory=list)
    takeovers: int = 0  # jobs run by more than one worker
    seconds: float = 0.0


def _feed(plan: Plan, jobs: dict[str, ls.JobHandle], errors: list[str]) -> None:
    try:
        pos = dict.fromkeys(plan.inputs, 0)
        pending: dict[str, list[int]] = {s: [] for s in plan.inputs}
        for spec, gap in zip(plan.order, plan.gaps, strict=True):
            x = plan.inputs[spec][pos[spec]]
            pos[spec] += 1
            if plan.batches[spec]:  # fed in batches of up to 5 with feed_many
                pending[spec].append(x)
                if len(pending[spec]) >= 5 or pos[spec] == len(plan.inputs[spec]):
                    jobs[spec].feed_many(pending[spec])
                    pending[spec] = []
            else:
                jobs[spec].feed(x)
            if pos[spec] == len(plan.inputs[spec]):
                jobs[spec].end()
            if gap:
                time.sleep(gap)
    except Exception as e:  # reported by the round
        errors.append(f"feeding failed: {type(e).__name__}: {e}")


def _inject(plan: Plan, pool: Pool, t0: float, out: Outcome, stop: threading.Event) -> None:
    for f in plan.faults:
        if stop.wait(max(0.0, t0 + f.at - time.monotonic())):
            return
        if f.kind == "restart":
            assert pool.server is not None
            out.faults.append(f"{time.monotonic() - t0:.2f}s redis-server restarted")
            pool.server.restart()
            continue
        alive = pool.alive()
        if not alive:
            continue
        name, proc = alive[f.victim % len(alive)]
        at = time.monotonic() - t0
        if f.kind == "kill":
            proc.kill()
            proc.wait(30)
            again = f.restart or len(alive) == 1
            out.faults.append(f"{at:.2f}s SIGKILL {name}" + (" (replaced)" if again else ""))
            if again:
                pool.start()
        else:
            proc.send_signal(signal.SIGSTOP)
            out.faults.append(f"{at:.2f}s SIGSTOP {name} for {f.stall:.2f}s")
            stop.wait(f.stall)
            proc.send_signal(signal.SIGCONT)


def run_round(seed: int, pool: Pool, *, timeout: float = 90.0) -> Outcome:
    """Run the round of ``seed``; its :class:`Outcome` lists what failed (empty: exact)."""
    plan = Plan.of(seed, pool.lease, restarts=pool.server is not None)
    out = Outcome(seed)
    began = time.monotonic()
    pool.resize(plan.workers)
    env = ls.LiveEnv(vault=pool.url, autostart=False)
    stop = threading.Event()
    injector: threading.Thread | None = None
    try:
        jobs: dict[str, ls.JobHandle] = {}
        seen: dict[str, dict[str, list[Any]]] = {}
        for name, spec in fault_specs.SPECS.items():
            job = jobs[name] = spec.start(options={"delay": plan.delays[name]}, env=env)
            seen[name] = {}
            for tag in spec.out_tags:
                got = seen[name][tag] = []
                job.output(tag).subscribe(got.append)
        errors: list[str] = []
        t0 = time.monotonic()
        feeder = threading.Thread(target=_feed, args=(plan, jobs, errors), name="faults-feeder")
        injector = threading.Thread(target=_inject, args=(plan, pool, t0, out, stop), name="faults-injector")
        feeder.start()
        injector.start()
        feeder.join(timeout)
        injector.join(timeout)
        out.failures += errors
        for name, job in jobs.items():
            try:
                job.wait(timeout=max(1.0, timeout - (time.monotonic() - t0)))
            except ls.LivestackError as e:
                out.failures.append(f"{name} {job.job_id}: {type(e).__name__}: {e}")
        env.flush()
        check = ls.LiveEnv(vault=pool.url, autostart=False)
        try:
            for name, job in jobs.items():
                expected = fault_specs.EXPECTED[name](plan.inputs[name])
                statuses = [r.status for r in check.vault.statuses(job.job_id)]
                ends = [s for s in statuses if s in ("completed", "failed", "cancelled")]
                if ends != ["completed"]:
                    out.failures.append(f"{name} {job.job_id}: recorded ends {ends}, not one completed")
                out.takeovers += statuses.count("running") > 1
                back = check.job(job.job_id)
                for tag, want in expected.items():
                    live = seen[name][tag]
                    again = back.output(tag).values()
                    if live != want:
                        out.failures.append(f"{name} {job.job_id} {tag!r} live: {_diff(live, want)}")
                    if again != want:
                        out.failures.append(f"{name} {job.job_id} {tag!r} read back: {_diff(again, want)}")
        finally:
            check.close()
    finally:
        stop.set()
        if injector is not None:
            injector.join(30)
        for _, p in pool.procs:  # none left stopped
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
        env.close()
    out.seconds = time.monotonic() - began
    return out


def _diff(got: list[Any], want: list[Any]) -> str:
    missing = [x for x in want if x not in got]
    extra = [x for x in got if x not in want]
    twice = sorted({x for x in got if got.count(x) > want.count(x)})
    differ = (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b)
    first = next(differ, min(len(got), len(want)))
    return (
        f"{len(got)} values, {len(want)} expected; missing {missing[:10]}, extra {extra[:10]}, "
        f"more often than expected {twice[:10]}, first difference at {first}"
    )
