"""Shutting down with jobs running: a bound on the time, the durable vault flushed, nothing left."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import closing_env
from kernel import kernel

import livestack_nb as ls
from livestack_nb.testing import collect, wait_until

RUNNING = """\
import os, threading, time, asyncio
import pytest

import livestack_nb as ls
import livestack_nb.testing

env = ls.LiveEnv(vault="sqlite:///{db}")
ls.use_env(env)
stuck = threading.Event()

@ls.job_spec(inputs={{"default": int}}, outputs={{"default": int}})
def waiting(job: ls.LiveJob):  # waits for input that never comes
    for n in job.input:
        job.output.emit(n * 10)

@ls.job_spec(inputs={{"default": int}}, outputs={{"default": int}})
def busy(job: ls.LiveJob):  # user code that never looks up
    for n in job.input:
        stuck.wait()

@ls.job_spec(inputs={{"default": int}}, outputs={{"default": int}})
async def sleepy(job: ls.LiveJob):
    async for n in job.input:
        await asyncio.sleep(3600)

w = waiting.start(); w.feed_many([1, 2, 3])
b = busy.start(); b.feed(1)
s = sleepy.start(); s.feed(1)
ls.testing.wait_until(lambda: len(w.output()) == 3, timeout=20)
env.flush()
print(os.getpid(), w.job_id, b.job_id, s.job_id)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def test_kernel_shutdown_with_jobs_running_exits_in_bound_and_keeps_what_was_flushed(tmp_path):
    db = tmp_path / "kitchen.db"
    with kernel() as k:
        pid, waiting_id, busy_id, sleepy_id = k.printed(RUNNING.format(db=db), "cell-run").split()
        pid_n = int(pid)
        children = _children(pid_n)
        t0 = time.monotonic()
        k.kc.shutdown()  # what closing the notebook's kernel sends
        wait_until(lambda: not _alive(pid_n), timeout=15, message="the kernel process exited")
        took = time.monotonic() - t0
        assert took < 10, f"the kernel took {took:.1f}s to exit"
    assert not [c for c in children if _alive(c)], "a subprocess of the kernel outlived it"
    with closing_env(vault=f"sqlite:///{db}") as env:
        statuses = {r.job_id: r.status for r in env.jobs()}
        # the kernel closed its env on the way out: no job is left recorded as running
        assert statuses == {
            waiting_id: ls.JobStatus.CANCELLED,
            busy_id: ls.JobStatus.CANCELLED,
            sleepy_id: ls.JobStatus.CANCELLED,
        }
        assert collect(env.job(waiting_id).output().replay()) == [10, 20, 30]


def test_env_close_with_jobs_running_ends_workers_in_bound_and_flushes(tmp_path):
    db = tmp_path / "kitchen.db"
    before = set(threading.enumerate())
    stuck = threading.Event()
    env = ls.LiveEnv(vault=f"sqlite:///{db}")

    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    def waiting(job: ls.LiveJob) -> None:
        for n in job.input:
            job.output.emit(n)

    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    def stuck_in_user_code(job: ls.LiveJob) -> None:
        for _ in job.input:
            stuck.wait()

    with env:
        w = waiting.start()
        w.feed_many(range(1000))
        s = stuck_in_user_code.start()
        s.feed(1)
        wait_until(lambda: len(w.output()) == 1000, timeout=10)
    t0 = time.monotonic()
    env.close(timeout=1.0)
    took = time.monotonic() - t0
    assert took < 3, f"env.close() took {took:.1f}s"
    assert w.status is ls.JobStatus.CANCELLED and s.status is ls.JobStatus.CANCELLED
    # the processor stuck in user code is the only thread left, and it is a daemon: it cannot hold the process
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert all(t.daemon for t in left), [t.name for t in left]
    stuck.set()
    wait_until(lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()], timeout=5)
    with closing_env(vault=f"sqlite:///{db}") as again:
        assert collect(again.job(w.job_id).output().replay()) == list(range(1000))
        assert {r.job_id: r.status for r in again.jobs()}[s.job_id] == ls.JobStatus.CANCELLED


def test_a_process_exits_with_a_processor_stuck_in_user_code(tmp_path):
    import subprocess

    code = (
        "import threading, livestack_nb as ls, livestack_nb.testing\n"
        "@ls.job_spec(inputs={'default': int}, outputs={'default': int})\n"
        "def stuck(job: ls.LiveJob):\n"
        "    for n in job.input:\n"
        "        threading.Event().wait()\n"
        "j = stuck.start(); j.feed(1)\n"
        "ls.testing.wait_until(lambda: j.status is ls.JobStatus.RUNNING)\n"
        "print('started', flush=True)\n"
    )
    from kernel import kernel_env

    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], env=kernel_env(), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and "started" in done.stdout, done.stderr
    assert time.monotonic() - t0 < 15


def test_the_worker_pool_runs_calls_side_by_side_up_to_its_size_on_daemon_threads():
    from livestack_nb._pool import Pool as _Pool

    pool = _Pool(3, "livestack-pooltest")
    gate = threading.Barrier(3, timeout=10)
    done: list[int] = []
    pool.submit(done.append, 0)
    wait_until(lambda: done == [0])
    for i in range(1, 4):  # three calls that only finish together: three threads at once
        pool.submit(lambda i=i: (gate.wait(), done.append(i)))
    wait_until(lambda: len(done) == 4, timeout=10)
    for i in range(4, 40):
        pool.submit(done.append, i)
    wait_until(lambda: len(done) == 40, timeout=10)
    threads = pool.threads()
    assert len(threads) == 3 and all(t.daemon for t in threads)
    pool.shutdown()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)
    with pytest.raises(RuntimeError):
        pool.submit(done.append, 99)
