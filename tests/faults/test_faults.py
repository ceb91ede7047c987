"""Faults with real processes and a real redis-server: workers killed or stalled
mid-job, a client killed while feeding, the server restarted with and without
its data. See harness.py for the randomised rounds (``make faults`` runs many).
"""

# ruff: noqa: F811 - the fixtures imported from redis_support are test parameters

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fault_specs
import pytest
from harness import HERE, ROOT, Pool, run_round
from redis_support import free_port, redis_server, redis_url, running_redis  # noqa: F401

import livestack_nb as ls
from livestack_nb.testing import wait_until
from livestack_nb.vault.redis import RedisVault

N = 24  # values per job in the targeted tests


def _client(make_env: Any, url: str) -> tuple[ls.LiveEnv, RedisVault]:
    env = make_env(vault=url, autostart=False)
    assert isinstance(env.vault, RedisVault)
    return env, env.vault


def _start_all(
    env: ls.LiveEnv, delay: float
) -> tuple[dict[str, ls.JobHandle], dict[str, dict[str, list[Any]]]]:
    """One job of every spec form, each output tag collected live from the start."""
    jobs, seen = {}, {}
    for name, spec in fault_specs.SPECS.items():
        job = jobs[name] = spec.start(options={"delay": delay}, env=env)
        seen[name] = {}
        for tag in spec.out_tags:
            got = seen[name][tag] = []
            job.output(tag).subscribe(got.append)
    return jobs, seen


def _exact(
    url: str, jobs: dict[str, ls.JobHandle], seen: dict[str, dict[str, list[Any]]], xs: list[int]
) -> None:
    """Every job completed once, each tag's outputs exact live and read back from a new env."""
    for job in jobs.values():
        job.wait(timeout=60)
    check = ls.LiveEnv(vault=url, autostart=False)
    try:
        for name, job in jobs.items():
            expected = fault_specs.EXPECTED[name](xs)
            ends = [r.status for r in check.vault.statuses(job.job_id) if r.status != "running"][1:]
            assert ends == ["completed"], (name, ends)
            back = check.job(job.job_id)
            for tag, want in expected.items():
                assert seen[name][tag] == want, (name, tag, "live")
                assert back.output(tag).values() == want, (name, tag, "read back")
    finally:
        check.close()


def test_fault_rounds_lose_nothing_and_repeat_nothing(redis_server, tmp_path):
    """Short randomised rounds (``FAULTS_ROUNDS`` from seed ``FAULTS_SEED``); ``make faults``: hundreds."""
    rounds = int(os.environ.get("FAULTS_ROUNDS", "6"))
    seed = int(os.environ.get("FAULTS_SEED", "1"))
    pool = Pool(f"{redis_server}?prefix=faults{seed}", tmp_path)
    report = []
    try:
        for s in range(seed, seed + rounds):
            out = run_round(s, pool)
            report.append(out)
            assert not out.failures, f"seed {s} (replay: FAULTS_SEED={s} FAULTS_ROUNDS=1): {out.faults}\n" + (
                "\n".join(out.failures)
            )
    finally:
        pool.close()
    assert sum(len(o.faults) for o in report) >= rounds  # every round injected at least one


def _running_count(vault: RedisVault, job_id: str) -> int:
    return [r.status for r in vault.statuses(job_id)].count("running")


@pytest.mark.parametrize("fault", ["kill", "stall"])
def test_every_spec_form_taken_over_mid_job_gives_each_output_once(make_env, redis_url, tmp_path, fault):
    """A worker holds a job of every form, each with some (not all) outputs stored and the
    client still feeding, when it is killed (or stalled past its lease, then woken)."""
    env, vault = _client(make_env, redis_url)
    pool = Pool(redis_url, tmp_path)
    try:
        pool.resize(1)
        ((doomed_name, doomed),) = pool.alive()
        jobs, seen = _start_all(env, delay=0.05)
        xs = list(range(N))
        for job in jobs.values():
            job.feed_many(xs[: N // 2])
        totals = {n: len(fault_specs.EXPECTED[n](xs)["default"]) for n in jobs}

        def part_way() -> bool:
            return all(0 < vault.count(j.output().stream_id) < totals[n] for n, j in jobs.items())

        wait_until(part_way, timeout=30, interval=0.01, message="every job part-way")
        if fault == "kill":
            doomed.kill()
            doomed.wait(10)
        else:
            doomed.send_signal(signal.SIGSTOP)
        pool.resize(2 if fault == "stall" else 1)  # the survivor, started now
        for job in jobs.values():  # the rest of the input while the job changes hands
            for x in xs[N // 2 :]:
                job.feed(x)
            job.end()
        if fault == "stall":
            wait_until(
                lambda: all(_running_count(vault, j.job_id) >= 2 for j in jobs.values()),
                timeout=30,
                message="every job taken over",
            )
            doomed.send_signal(signal.SIGCONT)  # wakes: its writes are fenced off, it stops its copies
            wait_until(
                lambda: pool.log(doomed_name).count("taken over by another worker") == len(jobs),
                timeout=30,
                message="the woken worker dropped its copies",
            )
        _exact(redis_url, jobs, seen, xs)
        for job in jobs.values():
            assert _running_count(vault, job.job_id) == 2  # run twice, recorded once
    finally:
        pool.close()


def test_a_killed_client_fails_its_open_job_and_frees_the_workers_slot(make_env, redis_url, tmp_path):
    url = f"{redis_url}&client_lease=1"
    env, vault = _client(make_env, url)
    pool = Pool(url, tmp_path, concurrency=1)
    pyenv = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]))
    client = subprocess.Popen(
        [sys.executable, str(HERE / "client_proc.py"), url],
        stdout=subprocess.PIPE,
        text=True,
        env=pyenv,
        cwd=HERE,
    )
    try:
        pool.resize(1)
        assert client.stdout is not None
        ended_id, job_id = client.stdout.readline().split()
        wait_until(lambda: vault.count(f"{job_id}/out/default") == 3, timeout=30, message="the fed part done")
        assert vault.count(f"{ended_id}/out/default") < 5  # still running
        client.kill()  # killed while feeding: its input never ends
        client.wait(10)
        killed = time.monotonic()

        def status() -> str:
            record = vault.job(job_id)
            return record.status if record is not None else "?"

        wait_until(lambda: status() == "failed", timeout=30, message="the orphaned job failed")
        assert time.monotonic() - killed < 10  # the lease (1 s) and a heartbeat or two
        detail = vault.statuses(job_id)[-1].detail or ""
        assert "client gone" in detail and "input 'default'" in detail, detail
        # its slot (concurrency 1) is free: the next job of the spec runs to the end
        assert fault_specs.double_some.run([1, 2, 3], env=env, timeout=30) == [2, 4, 6]
        assert env.job(job_id).output().values() == [2, 4, 6]  # what it did before is kept
        # the job whose input the client had ended needs no client: it completes
        wait_until(lambda: vault.job(ended_id).status == "completed", timeout=30, message="ended job done")
        assert env.job(ended_id).output().values() == [3, 6, 9, 12, 15]
    finally:
        if client.poll() is None:
            client.kill()
        client.wait(10)
        pool.close()


@contextmanager
def _server(data: Path, port: int, *, aof: bool) -> Iterator[str]:
    with running_redis(data, port, aof=aof) as url:
        yield url


def _half_done(vault: RedisVault, jobs: dict[str, ls.JobHandle]) -> None:
    wait_until(
        lambda: all(vault.count(j.output().stream_id) > 0 for j in jobs.values()),
        timeout=30,
        message="every job under way",
    )


def test_a_redis_restart_with_aof_loses_nothing_and_every_job_completes_exactly(tmp_path):
    """redis-server (appendonly, fsync always) is stopped and started again mid-run, on the
    same port and files: workers and client retry with backoff and carry on."""
    data, port = tmp_path / "data", free_port()
    data.mkdir()
    xs = list(range(N))
    first = _server(data, port, aof=True)
    url = first.__enter__() + "?reconnect_timeout=20"  # what fails does not hold up the test for long
    pool = Pool(url, tmp_path)
    env = ls.LiveEnv(vault=url, autostart=False)
    try:
        pool.resize(2)
        jobs, seen = _start_all(env, delay=0.03)
        for job in jobs.values():
            job.feed_many(xs[: N // 2])
        _half_done(env.vault, jobs)  # type: ignore[arg-type]
        first.__exit__(None, None, None)  # SIGTERM: the server writes its AOF and exits
        for job in jobs.values():  # fed while the server is down: queued, sent once it is back
            for x in xs[N // 2 :]:
                job.feed(x)
            job.end()
        wait_until(
            lambda: "retrying" in pool.log("w0") + pool.log("w1"), timeout=30, message="workers cut off"
        )
        with _server(data, port, aof=True):
            _exact(url, jobs, seen, xs)
            assert env.vault.losses == 0  # type: ignore[attr-defined]
            env.close()
            pool.close()
    finally:
        pool.close()
        env.close()
        first.__exit__(None, None, None)  # stopped if a failure came first (a no-op if not)


def test_a_redis_restart_without_persistence_fails_every_wait_saying_what_was_lost(tmp_path):
    """The server comes back empty: every job waiting on it fails with a LivestackError that
    says the server lost its data; nothing hangs, and the workers serve new jobs."""
    data, port = tmp_path / "data", free_port()
    data.mkdir()
    first = _server(data, port, aof=False)
    url = first.__enter__() + "?reconnect_timeout=20"
    pool = Pool(url, tmp_path)
    env = ls.LiveEnv(vault=url, autostart=False)
    try:
        pool.resize(1)
        jobs, _ = _start_all(env, delay=0.05)
        for job in jobs.values():
            job.feed_many(range(N))
        _half_done(env.vault, jobs)  # type: ignore[arg-type]
        first.__exit__(None, None, None)
        with _server(data, port, aof=False):
            began = time.monotonic()
            for job in jobs.values():
                with pytest.raises(
                    ls.LivestackError, match="restarted without the data recorded before"
                ) as info:
                    job.wait(timeout=60)
                assert job.job_id in str(info.value) and "gone" in str(info.value)
            assert time.monotonic() - began < 30
            dropped = "stopping here, recording nothing"
            wait_until(lambda: pool.log("w0").count(dropped) == len(jobs), timeout=30, message="dropped")
            assert fault_specs.triple.run([1, 2], env=env, timeout=30) == [3, 6]  # served again
            env.close()
            pool.close()
    finally:
        pool.close()
        env.close()
        first.__exit__(None, None, None)  # stopped if a failure came first (a no-op if not)


def test_a_jobs_end_is_written_after_its_outputs_also_when_a_rerun_resends_them(redis_url):
    """The cause of the lost takeover outputs: a re-run's outputs overlap what the first run
    stored, Redis refuses the entry, and it was sent again only after the rest of the batch,
    the job's ``completed`` among it; a reader that saw the status read the outputs too
    early. The order of the writes, as Redis executed them, is watched here (keyspace
    notifications), so this holds without depending on timing."""
    from livestack_nb.stream import Chunk
    from livestack_nb.vault.base import StatusRecord

    vault = RedisVault(redis_url)
    r = vault._r
    r.config_set("notify-keyspace-events", "Kt")
    events = r.pubsub()
    try:
        events.psubscribe(f"__keyspace@0__:{vault.prefix}:*")
        events.get_message(timeout=5)  # the subscription itself
        sid = "job-1/out/default"
        record = vault.recorder(sid, "default", int)
        record(Chunk(sid, 0, 1.0, [0, 1, 2, 3], None, None))  # the first run stored 4 outputs
        vault.flush()
        record(Chunk(sid, 0, 2.0, list(range(10)), None, None))  # the re-run: all 10 at once
        vault.add_status(StatusRecord("job-1", "completed", 2.0))
        vault.flush()
        order = []
        while len(order) < 3:
            m = events.get_message(timeout=5)
            assert m is not None, order
            if m["type"] == "pmessage" and m["data"] == b"xadd":
                order.append(m["channel"].decode().split(f"{vault.prefix}:", 1)[1])
        assert order == ["stream:job-1/out/default", "stream:job-1/out/default", "job:job-1:statuses"]
        assert [p.value for p in vault.datapoints(sid)] == list(range(10))
    finally:
        events.close()
        r.config_set("notify-keyspace-events", "")
        vault.close()


def test_a_worker_whose_job_was_taken_over_has_every_write_for_it_refused(redis_url):
    """The fence, step by step: once another worker holds a job's queue message, the first
    one's outputs, ends, statuses and acknowledgement are refused, and its heartbeat says so."""
    from livestack_nb.stream import Chunk
    from livestack_nb.vault.base import JobRecord, StatusRecord

    a, b = RedisVault(redis_url), RedisVault(redis_url)
    try:
        a.add_job(JobRecord("job-1", "spec", "requested"))
        a.enqueue("spec", "job-1")
        a.flush()
        a.ensure_group("spec")
        ((mid, _),) = a.take("spec", "A", 1, 0.1)
        out = "job-1/out/default"
        for vault, consumer in ((a, "A"), (b, "B")):
            vault.fence("job-1", [out], "spec", mid, consumer)
        a.recorder(out, "default", int)(Chunk(out, 0, 1.0, [10, 11], None, None))
        a.add_status(StatusRecord("job-1", "running", 1.0))
        a.flush()
        assert b.claim_stale("spec", "B", 0.0, 1)[0][0] == mid  # A went silent: B takes it over
        assert a.touch("spec", "A", [mid]) == [mid]  # A's heartbeat: no longer its job
        a.recorder(out, "default", int)(Chunk(out, 2, 2.0, [99], None, None))  # A, woken, goes on
        a.add_status(StatusRecord("job-1", "failed", 2.0, "A's late view"))
        a.end_stream(out)
        a.flush()
        assert a.ack("spec", [mid], "A") == 0
        b.recorder(out, "default", int)(Chunk(out, 0, 3.0, [10, 11, 12], None, None))
        b.add_status(StatusRecord("job-1", "running", 3.0))
        b.add_status(StatusRecord("job-1", "completed", 3.0))
        b.end_stream(out)
        b.flush()
        assert b.ack("spec", [mid], "B") == 1
        assert [p.value for p in b.datapoints(out)] == [10, 11, 12]  # 99 never stored
        assert [s.status for s in b.statuses("job-1")] == ["requested", "running", "running", "completed"]
        assert b.ended(out) and b.pending("spec") == {}
        a.enqueue("spec", "job-1")  # a resent enqueue puts the job on the queue once
        a.flush()
        assert a._r.xlen(a.queue_key("spec")) == 1
    finally:
        a.close()
        b.close()


def test_a_worker_started_while_redis_is_down_waits_for_it_and_serves(tmp_path):
    """A supervisor bringing a worker and the server back up at once: the worker waits
    (with backoff) for a server that cannot be reached yet, instead of exiting."""
    data, port = tmp_path / "data", free_port()
    data.mkdir()
    url = f"redis://127.0.0.1:{port}/0"
    log = tmp_path / "worker.log"
    pyenv = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]))
    args = [sys.executable, "-m", "livestack_nb.cli", "worker", "fault_specs:triple", "--env", url]
    with open(log, "wb") as out:
        worker = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=HERE, env=pyenv)
    try:
        wait_until(lambda: "waiting up to 60s" in log.read_text(), timeout=30, message="the worker waits")
        assert worker.poll() is None
        with _server(data, port, aof=False):
            env = ls.LiveEnv(vault=url, autostart=False)
            try:
                assert fault_specs.triple.run([1, 2], env=env, timeout=30) == [3, 6]
            finally:
                env.close()
            worker.terminate()
            assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(30)
