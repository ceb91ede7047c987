"""Scale-out with real processes: a notebook-like client with autostart=False,
worker processes started with ``livestack-nb worker``, and a real redis-server.
"""

# ruff: noqa: F811 - the fixtures imported from redis_support are test parameters

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
import redis as redis_py
import redis_specs
from redis_support import ROOT, TESTS, Worker, redis_server, redis_url, running_redis, workers  # noqa: F401

import livestack_nb as ls
from livestack_nb.remote import QueueWorker
from livestack_nb.testing import wait_until
from livestack_nb.vault.redis import GROUP, RedisVault


def client(make_env, url: str) -> tuple[ls.LiveEnv, RedisVault]:
    env = make_env(vault=url, autostart=False)
    assert isinstance(env.vault, RedisVault)
    return env, env.vault


def started(vault: RedisVault, n: int, spec: str) -> None:
    """Wait until ``n`` workers have said they are alive (their heartbeat keys)."""

    def alive() -> bool:
        keys = vault._r.keys(vault.k("worker", "*"))
        return sum(1 for k in keys if vault._r.get(k) == spec.encode()) >= n

    wait_until(alive, timeout=30, message=f"{n} worker(s) of {spec} started")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(TESTS) + os.pathsep + str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "livestack_nb.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=TESTS,
        env=env,
    )


def test_a_client_feeds_a_job_that_a_worker_process_runs_and_sees_outputs_live(make_env, redis_url, workers):
    env, vault = client(make_env, redis_url)
    workers.append(Worker("redis_specs:slow_square", redis_url))
    started(vault, 1, "slow_square")
    job = redis_specs.slow_square.start()
    seen: list[int] = []
    job.output().subscribe(seen.append)
    job.feed_many([1, 2, 3])
    wait_until(lambda: seen == [1, 4, 9], timeout=20)  # live, before the input has even ended
    assert job.status is ls.JobStatus.RUNNING
    job.feed(4)
    job.end()
    job.wait(timeout=20)
    assert job.result() == [1, 4, 9, 16] and seen == [1, 4, 9, 16]
    assert [s.value for s, _ in job.statuses] == ["requested", "running", "completed"]
    assert [j.status for j in env.jobs()] == ["completed"]
    wait_until(lambda: vault.pending("slow_square") == {}, timeout=10)  # acknowledged
    assert workers[0].stop() == 0


def test_a_failure_in_the_worker_fails_the_clients_job_with_its_traceback(make_env, redis_url, workers):
    client(make_env, redis_url)
    workers.append(Worker("redis_specs:picky", redis_url))
    job = redis_specs.picky.start()
    job.feed_many([1, -2, 3])
    job.end()
    with pytest.raises(ls.JobFailed, match="negative: -2") as info:
        job.wait(timeout=30)
    assert info.value.traceback is not None and "ValueError: negative: -2" in info.value.traceback
    assert job.output().values() == [1]
    assert workers[0].stop() == 0


def test_two_worker_processes_share_the_jobs(make_env, redis_url, workers):
    _, vault = client(make_env, redis_url)
    for _ in range(2):
        workers.append(Worker("redis_specs:pid_of", redis_url, "--concurrency", "1"))
    started(vault, 2, "pid_of")
    jobs = [redis_specs.pid_of.start(options={"delay": 0.2}) for _ in range(6)]
    for j in jobs:
        j.feed(0)
        j.end()
    pids = set()
    for j in jobs:
        j.wait(timeout=60)
        pids.update(j.result())
    assert pids == {w.proc.pid for w in workers}
    for w in workers:
        assert w.stop() == 0


def test_a_worker_killed_mid_job_loses_nothing_and_no_output_is_seen_twice(make_env, redis_url, workers):
    env, vault = client(make_env, redis_url)
    for name in ("doomed", "survivor"):
        args = ("--lease", "1", "--concurrency", "2", "--name", name)
        workers.append(Worker("redis_specs:squares_one_by_one", redis_url, *args))
    started(vault, 2, "squares_one_by_one")
    n = 12
    jobs = [redis_specs.squares_one_by_one.start(options={"delay": 0.08}) for _ in range(6)]
    seen: dict[str, list[int]] = {}
    for j in jobs:
        out = seen[j.job_id] = []
        j.output().subscribe(out.append)
        j.feed_many(range(n))
        j.end()
    queue = vault.queue_key("squares_one_by_one")

    def doomed_part_way() -> list[str]:
        """Jobs the doomed worker holds and has emitted some, not all, outputs of."""
        held = vault._r.xpending_range(queue, GROUP, "-", "+", 100, consumername="doomed")
        ids = [vault._r.xrange(queue, m["message_id"], m["message_id"])[0][1][b"job"].decode() for m in held]
        return [i for i in ids if 0 < len(seen[i]) < n]

    # kill the "doomed" worker while it is part-way through a job
    cut_short = wait_until(doomed_part_way, timeout=30, interval=0.01)
    workers[0].proc.kill()
    workers[0].proc.wait(10)
    for j in jobs:
        j.wait(timeout=60)
    expected = [i * i for i in range(n)]
    for j in jobs:
        assert seen[j.job_id] == expected, j.job_id  # every output, each exactly once
        stored = env.vault.datapoints(j.output().stream_id)  # and stored once each
        assert [(p.seq, p.value) for p in stored] == list(enumerate(expected))
    for job_id in cut_short:  # taken over: run again by the survivor
        assert [r.status for r in vault.statuses(job_id)].count("running") == 2, job_id
        # and the client's own handle says so too: one "running" per run
        (handle,) = [j for j in jobs if j.job_id == job_id]
        assert [s for s, _ in handle.statuses].count(ls.JobStatus.RUNNING) == 2, handle.statuses
    for j in jobs:
        if j.job_id not in cut_short:
            assert [s.value for s, _ in j.statuses] in (
                ["requested", "running", "completed"],
                ["requested", "running", "running", "completed"],  # held by the doomed one, not yet emitting
            ), j.statuses
    wait_until(lambda: vault.pending("squares_one_by_one") == {}, timeout=10)
    assert workers[1].stop() == 0


def test_a_malformed_queue_message_is_reported_and_the_worker_goes_on(make_env, redis_url, workers):
    _, vault = client(make_env, redis_url)
    workers.append(Worker("redis_specs:shout", redis_url))
    started(vault, 1, "shout")
    queue = vault.queue_key("shout")
    vault._r.xadd(queue, {"garbage": "x"})
    vault._r.xadd(queue, {"job": "no-such-job"})
    vault._r.xadd(queue, {"job": b"\xff\xfe"})
    wait_until(lambda: len(vault.rejected()) == 3, timeout=20)
    reasons = [r["reason"] for r in vault.rejected()]
    assert "no 'job' field" in reasons[0] and "no job 'no-such-job'" in reasons[1]
    assert all(r["spec"] == "shout" for r in vault.rejected())
    job = redis_specs.shout.start()
    job.feed("still here")
    job.end()
    assert job.result(timeout=20) == ["STILL HERE"]
    wait_until(lambda: vault._r.xpending(queue, GROUP)["pending"] == 0, timeout=10)  # all acknowledged
    w = workers[0]
    assert w.stop() == 0
    assert "rejected" in w.err and "3 malformed messages reported" in w.out


def test_sigterm_lets_the_running_job_finish_then_exits_0(make_env, redis_url, workers):
    _, vault = client(make_env, redis_url)
    workers.append(Worker("redis_specs:slow_square", redis_url))
    started(vault, 1, "slow_square")
    job = redis_specs.slow_square.start(options={"delay": 0.1})
    job.feed_many(range(10))
    job.end()
    wait_until(lambda: len(job.output()) > 0, timeout=20)
    workers[0].proc.send_signal(signal.SIGTERM)
    job.wait(timeout=30)
    assert job.result() == [i * i for i in range(10)]
    assert workers[0].stop() == 0
    assert "stopped after 1 jobs" in workers[0].out


def test_a_cancel_from_the_client_stops_the_job_in_the_worker(make_env, redis_url, workers):
    _, vault = client(make_env, redis_url)
    workers.append(Worker("redis_specs:slow_square", redis_url))
    job = redis_specs.slow_square.start(options={"delay": 0.05})
    job.feed(1)
    wait_until(lambda: job.output().values() == [1], timeout=30)
    job.cancel()
    assert job.status is ls.JobStatus.CANCELLED
    wait_until(lambda: vault.pending("slow_square") == {}, timeout=10)
    assert [r.status for r in vault.statuses(job.job_id)][-1] == "cancelled"
    assert workers[0].stop() == 0


def test_a_flow_needs_an_env_that_runs_its_workers(make_env, redis_url):
    client(make_env, redis_url)
    flow = ls.Liveflow("squares")
    flow.connect(redis_specs.slow_square, redis_specs.picky)
    with pytest.raises(ls.LivestackError, match="autostart=False"):
        flow.start()


def test_the_jobs_command_lists_ids_specs_and_statuses(make_env, redis_url):
    make_env(vault=redis_url)  # runs its jobs in-process
    done = redis_specs.shout.start()
    done.feed("a")
    done.end()
    done.wait(timeout=10)
    waiting = redis_specs.shout.start()
    out = run_cli("jobs", "--env", redis_url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["ID", "SPEC", "STATUS", "CREATED"]
    rows = [line.split()[:3] for line in lines[1:]]
    assert rows == [[done.job_id, "shout", "completed"], [waiting.job_id, "shout", "running"]]
    waiting.cancel()


def test_the_cli_explains_itself_and_its_errors(redis_server):
    top = run_cli("--help")
    assert top.returncode == 0 and "worker" in top.stdout and "jobs" in top.stdout
    assert "autostart=False" in top.stdout
    w = run_cli("worker", "--help")
    assert w.returncode == 0 and "SIGTERM" in w.stdout and "--concurrency" in w.stdout
    bad = run_cli("jobs", "--env", "redis://127.0.0.1:1/0")
    assert bad.returncode == 1 and "redis://127.0.0.1:1/0" in bad.stderr and "cannot be reached" in bad.stderr
    missing = run_cli("worker", "no_such_module:spec", "--env", redis_server)
    assert missing.returncode == 1 and "cannot import module 'no_such_module'" in missing.stderr
    not_spec = run_cli("worker", "redis_specs:Pace", "--env", redis_server)
    assert not_spec.returncode == 1 and "not a JobSpec" in not_spec.stderr
    assert redis_py  # the client library is importable where workers run


def test_a_worker_outlives_a_redis_restart(make_env, tmp_path, workers):
    with running_redis(tmp_path) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        workers.append(Worker("redis_specs:shout", url, "--lease", "1"))
        env, _ = client(make_env, url)
        job = redis_specs.shout.start()
        job.feed("before")
        job.end()
        assert job.result(timeout=30) == ["BEFORE"]
        env.close()
    assert workers[0].proc.poll() is None  # still running without its server
    with running_redis(tmp_path, port) as url:  # the same address, no data: the queue is made again
        client(make_env, url)
        job = redis_specs.shout.start()
        job.feed("after")
        job.end()
        assert job.result(timeout=30) == ["AFTER"]
    assert workers[0].stop() == 0


def test_a_job_whose_workers_keep_going_silent_is_failed_not_retried_forever(make_env, redis_url):
    _, vault = client(make_env, redis_url)
    job = redis_specs.shout.start()
    job.feed("x")
    job.end()
    vault.flush()
    vault.ensure_group("shout")
    ((message_id, _),) = vault.take("shout", "ghost", 1, 0.1)
    for _ in range(3):  # three workers took it over and went silent in turn
        vault._r.xclaim(vault.queue_key("shout"), GROUP, "ghost", 0, [message_id])
    worker_env = make_env(vault=redis_url)
    worker = QueueWorker(worker_env, redis_specs.shout, lease=0.05, max_deliveries=3)
    stop = threading.Event()
    serving = threading.Thread(target=worker.serve, args=(stop,), name="livestack-test-serve")
    serving.start()
    try:
        with pytest.raises(ls.JobFailed, match="taken over 4 times") as info:
            job.wait(timeout=20)
        assert "went silent" in (info.value.traceback or "")
        wait_until(lambda: vault.pending("shout") == {}, timeout=10)
        assert worker.completed == 0  # it never ran
    finally:
        stop.set()
        serving.join(10)


def test_a_client_needs_only_the_specs_interface(make_env, redis_url, workers):
    """The notebook declares the spec without code; the worker process has the code."""
    client(make_env, redis_url)
    workers.append(Worker("redis_specs:shout", redis_url))
    shout = ls.JobSpec("shout", input=str, output=str)
    assert shout.run(["a", "b"], timeout=30) == ["A", "B"]
    job = shout.start()
    with pytest.raises(ls.DataValidationError):
        job.feed(["not", "a", "string"])  # checked where it is fed, before Redis
    job.end()
    assert job.result(timeout=30) == []
    assert workers[0].stop() == 0
