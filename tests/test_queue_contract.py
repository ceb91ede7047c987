"""The queue contract (``livestack_nb.vault.queue``), with the same client and worker code
on both of its implementations: the in-process MemoryQueueServer and a real redis-server.

Each test runs a client env (``autostart=False``: its jobs go on a queue) and a worker env
served by an in-process :class:`QueueWorker` on a thread, the two envs sharing only the
vault's server, as two processes would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis_specs
from redis_support import redis_server, redis_url  # noqa: F401

import livestack_nb as ls
from livestack_nb.queue_worker import QueueWorker
from livestack_nb.testing import wait_until
from livestack_nb.vault import QueueVault
from livestack_nb.vault.memory_queue import MemoryQueueServer, MemoryQueueVault
from livestack_nb.vault.redis import RedisVault

Open = Callable[..., ls.LiveEnv]


@pytest.fixture(params=["memory", "redis"])
def open_env(request: pytest.FixtureRequest) -> Iterator[Open]:
    """``open_env(autostart=...)``: an env on this test's queue server (memory or Redis).

    The envs are closed together at the end (not one by one, as ``make_env`` does: one
    env's check for leftover threads would count the other's), and leave no thread."""
    before = set(threading.enumerate())
    envs: list[ls.LiveEnv] = []
    if request.param == "memory":
        server = MemoryQueueServer()

        def vault() -> Any:
            return server.vault()
    else:
        url = request.getfixturevalue("redis_url")

        def vault() -> Any:
            return url

    def open_(**kw: Any) -> ls.LiveEnv:
        env = ls.LiveEnv(vault=vault(), **kw)
        envs.append(env)
        return env

    yield open_
    for env in reversed(envs):
        env.close()
    wait_until(
        lambda: not [t for t in threading.enumerate() if t not in before and t.name.startswith("livestack")],
        timeout=10,
        message="no livestack thread left after the envs closed",
    )


@pytest.fixture
def serve(open_env: Open) -> Iterator[Callable[..., QueueWorker]]:
    """``serve(env, spec, **kw)``: a QueueWorker serving on a thread until the test ends
    (stopped before the envs close)."""
    running: list[tuple[threading.Event, threading.Thread]] = []

    def start(env: ls.LiveEnv, spec: ls.JobSpec, **kw: Any) -> QueueWorker:
        worker = QueueWorker(env, spec, **kw)
        stop = threading.Event()
        t = threading.Thread(
            target=worker.serve, args=(stop,), kwargs={"drain_timeout": 5}, name="livestack-serve"
        )
        t.start()
        running.append((stop, t))
        return worker

    yield start
    for stop, _t in running:
        stop.set()
    for _, t in running:
        t.join(15)
        assert not t.is_alive()


def test_both_vaults_implement_the_contract(open_env):
    env = open_env(autostart=False)
    assert env.vault.queues
    assert isinstance(env.vault, QueueVault)
    assert isinstance(env.vault, (MemoryQueueVault, RedisVault))


def test_a_job_fed_per_value_and_in_batches_runs_on_the_worker(open_env, serve):
    client = open_env(autostart=False)
    worker = serve(open_env(), redis_specs.slow_square)
    job = redis_specs.slow_square.start(env=client)
    seen: list[int] = []
    job.output().subscribe(seen.append)
    job.feed(1)
    job.feed_many([2, 3])
    wait_until(lambda: seen == [1, 4, 9], timeout=20)  # live, before the input has ended
    assert job.status is ls.JobStatus.RUNNING
    job.feed(4)
    job.end()
    job.wait(timeout=20)
    assert job.result() == [1, 4, 9, 16] and seen == [1, 4, 9, 16]
    assert [s.value for s, _ in job.statuses] == ["requested", "running", "completed"]
    wait_until(lambda: worker.completed == 1, timeout=10)
    assert [j.status for j in client.jobs()] == ["completed"]
    wait_until(lambda: client.vault.pending("slow_square") == {}, timeout=10)  # acknowledged


def test_a_processor_spec_and_a_failure_come_back_to_the_client(open_env, serve):
    client = open_env(autostart=False)
    worker_env = open_env()
    serve(worker_env, redis_specs.squares_one_by_one)
    serve(worker_env, redis_specs.picky)
    squares = redis_specs.squares_one_by_one.start(env=client)
    squares.feed_many([1, 2, 3])
    squares.end()
    assert squares.result(timeout=20) == [1, 4, 9]
    bad = redis_specs.picky.start(env=client)
    bad.feed_many([1, -2, 3])
    bad.end()
    with pytest.raises(ls.JobFailed, match="negative: -2"):
        bad.wait(timeout=20)
    assert bad.traceback is not None and "ValueError: negative: -2" in bad.traceback


def test_a_cancel_from_the_client_stops_the_job_in_the_worker(open_env, serve):
    client = open_env(autostart=False)
    worker_env = open_env()
    serve(worker_env, redis_specs.slow_square)
    job = redis_specs.slow_square.start({"delay": 0.05}, env=client)
    job.feed_many(range(1000))
    wait_until(lambda: len(job.output()) >= 2, timeout=20)
    job.cancel()
    assert job.status is ls.JobStatus.CANCELLED
    wait_until(lambda: worker_env.vault.job(job.job_id).status == "cancelled", timeout=20)
    assert len(job.output()) < 1000


def test_a_malformed_message_is_rejected_and_the_worker_goes_on(open_env, serve):
    client = open_env(autostart=False)
    worker = serve(open_env(), redis_specs.shout)
    vault = client.vault
    if isinstance(vault, MemoryQueueVault):
        vault.put_message("shout", {"garbage": "x"})
        vault.put_message("shout", {"job": "no-such-job"})
    else:
        vault.ensure_group("shout")
        vault._r.xadd(vault.queue_key("shout"), {"garbage": "x"})
        vault._r.xadd(vault.queue_key("shout"), {"job": "no-such-job"})
    job = redis_specs.shout.start(env=client)
    job.feed_many(["a", "b"])
    job.end()
    assert job.result(timeout=20) == ["A", "B"]
    wait_until(lambda: worker.rejected == 2, timeout=10)
    reasons = [r["reason"] for r in vault.rejected()]
    assert reasons == ["it has no 'job' field", "no job 'no-such-job' is recorded"]
    wait_until(lambda: vault.pending("shout") == {}, timeout=10)  # the rejected ones acknowledged too


def test_a_job_whose_worker_went_silent_is_taken_over_and_run_once_more(open_env, serve):
    """A message taken by a worker that never heartbeats is claimed after its lease by a
    live one; the job runs there from its stored input, and the client sees each output once."""
    client = open_env(autostart=False)
    worker_env = open_env()
    job = redis_specs.shout.start(env=client)
    job.feed_many(["a", "b", "c"])
    job.end()
    ghost = worker_env.vault
    ghost.ensure_group("shout")
    wait_until(lambda: ghost.take("shout", "ghost", 10, 0.05) != [], timeout=10)  # taken, never run
    worker = serve(worker_env, redis_specs.shout, lease=0.3)
    assert job.result(timeout=20) == ["A", "B", "C"]
    wait_until(lambda: worker.completed == 1, timeout=10)


def test_a_job_taken_over_too_often_is_failed_not_handed_on(open_env, serve):
    client = open_env(autostart=False)
    worker_env = open_env()
    job = redis_specs.shout.start(env=client)
    job.feed("a")
    vault = worker_env.vault
    vault.ensure_group("shout")
    wait_until(lambda: vault.take("shout", "ghost-0", 1, 0.05) != [], timeout=10)
    for i in range(1, 3):  # two more silent workers take it over in turn
        wait_until(lambda i=i: vault.claim_stale("shout", f"ghost-{i}", 0.01, 1) != [], timeout=10)
    serve(worker_env, redis_specs.shout, lease=0.05, max_deliveries=2)
    with pytest.raises(ls.JobFailed, match="taken over 3 times"):
        job.wait(timeout=20)


def test_a_client_gone_while_feeding_fails_its_job(open_env, serve):
    """The client lease: once the process feeding a job stops holding it (here: its lease
    dropped, or its vault closed, as a killed notebook's would be), the worker fails the
    job, "client gone", and records why."""
    feeder = open_env(autostart=False)
    worker_env = open_env()
    serve(worker_env, redis_specs.shout, lease=0.3)
    job = redis_specs.shout.start(env=feeder)
    job.feed("a")
    wait_until(lambda: len(job.output()) == 1, timeout=20)
    if isinstance(feeder.vault, RedisVault):
        feeder.vault._leases.clear()  # no more renewals, and the key gone at once
        feeder.vault._r.delete(feeder.vault.lease_key(job.job_id))
    else:
        feeder.vault.close()
    record = worker_env.vault

    def failed() -> bool:
        rec = record.job(job.job_id)
        return rec is not None and rec.status == "failed"

    wait_until(failed, timeout=20)
    assert "client gone" in (record.statuses(job.job_id)[-1].detail or "")


def test_a_second_client_feeds_and_reads_the_same_job(open_env, serve):
    first = open_env(autostart=False)
    second = open_env(autostart=False)
    serve(open_env(), redis_specs.shout)
    job = redis_specs.shout.start(env=first)
    job.feed("a")
    # The job's record reaches the server with the writer's next batch (a few ms
    # later); handing its id to another process comes after that in real use.
    first.flush()
    other = second.job(job.job_id)  # a handle in another "process": it feeds and reads too
    other.feed_many(["b", "c"])
    wait_until(lambda: len(other.output()) == 3, timeout=20)
    other.end()
    assert sorted(job.result(timeout=20)) == ["A", "B", "C"]
    assert sorted(other.result(timeout=20)) == ["A", "B", "C"]
    assert first.vault.ended(job.input().stream.stream_id)  # the input ended for everyone
    with pytest.raises(ls.JobClosedError):
        other.feed("d")
