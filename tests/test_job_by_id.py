"""Jobs found, fed and read by id from another process (Livestack's ``feedJobInput({jobId})``):
with Redis any process feeds a queued job; with SQLite another process reads, and is told why
it cannot feed; values read back are typed once the spec's module is imported."""

# ruff: noqa: F811 - the fixtures imported from redis_support are test parameters
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import redis_specs
from pizzeria import Order, bake
from redis_support import ROOT, TESTS, Worker, redis_server, redis_url, workers  # noqa: F401

import livestack_nb as ls

# Defined the same way here and in the process that runs the job: as a module would.
bake_by_id = bake.derive("bake-by-id")


def _python(code: str, **kw: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(TESTS) + os.pathsep + str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=TESTS,
        env=env,
        **kw,  # type: ignore[arg-type]
    )


def test_with_redis_two_processes_feed_one_job_by_id_and_each_value_is_processed_once(
    make_env, redis_url, workers
):
    env = make_env(vault=redis_url, autostart=False)
    workers.append(Worker("redis_specs:slow_square", redis_url))
    job = redis_specs.slow_square.start(env=env, job_id="squares-1")
    job.feed_many(range(0, 50))
    other = _python(
        "import livestack_nb as ls, redis_specs, sys\n"
        f"env = ls.LiveEnv(vault={redis_url!r}, autostart=False)\n"
        "h = env.job('squares-1')\n"
        "for x in range(50, 100):\n"
        "    h.feed(x)\n"
        "env.flush()\n"
        "print('fed', h.status, flush=True)\n"
        "print(sorted(h.output()) == sorted(x * x for x in range(150)), flush=True)\n"
        "print(h.status, flush=True)\n"
        "env.close()\n"
    )
    assert other.stdout is not None
    for x in range(100, 150):  # both feed at once
        job.feed(x)
    line = other.stdout.readline()
    assert line.startswith("fed "), line + other.stderr.read()
    job.end()
    job.wait(timeout=60)
    assert sorted(job.output().values()) == sorted(x * x for x in range(150))  # each once
    out, err = other.communicate(timeout=60)
    assert other.returncode == 0, err
    assert out.split() == ["True", "completed"]
    with pytest.raises(ls.LivestackError, match="job id 'squares-1' is taken"):
        redis_specs.slow_square.start(env=env, job_id="squares-1")


def test_with_redis_an_input_ended_by_one_process_is_closed_for_the_other(make_env, redis_url, workers):
    env = make_env(vault=redis_url, autostart=False)
    workers.append(Worker("redis_specs:slow_square", redis_url))
    job = redis_specs.slow_square.start(env=env, job_id="squares-2")
    job.feed(3)
    job.end()
    job.wait(timeout=60)
    again = make_env(vault=redis_url, autostart=False)
    handle = again.job("squares-2")  # ended: a read-only handle, typed by the imported spec
    assert handle.output().values() == [9]
    with pytest.raises(ls.JobClosedError):
        handle.feed(4)


SQLITE_JOB = """\
import sys, threading
import livestack_nb as ls
from pizzeria import bake
bake_by_id = bake.derive("bake-by-id")
env = ls.LiveEnv(vault="sqlite:///" + sys.argv[1])
with env:
    job = bake_by_id.start(job_id="bake-7")
    job.feed({"pizza": "margherita"})
    env.flush()
    print("started", flush=True)
    sys.stdin.readline()  # stays open until told
    job.end()
    job.wait(timeout=10)
env.close()
"""


def test_with_sqlite_another_process_reads_a_job_by_id_and_is_told_why_it_cannot_feed_it(make_env, tmp_path):
    db = tmp_path / "k.db"
    env = dict(os.environ, PYTHONPATH=str(TESTS) + os.pathsep + str(ROOT))
    first = subprocess.Popen(
        [sys.executable, "-c", SQLITE_JOB, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=TESTS,
        env=env,
    )
    try:
        assert first.stdout is not None and first.stdin is not None
        assert first.stdout.readline() == "started\n"
        reader = make_env(vault=f"sqlite:///{db}")
        handle = reader.job("bake-7")
        assert handle.status is ls.JobStatus.RUNNING
        with pytest.raises(ls.JobClosedError, match=r"runs there.*cannot be fed from here.*Redis"):
            handle.feed({"pizza": "funghi"})
        first.stdin.write("\n")
        first.stdin.flush()
        assert first.wait(timeout=30) == 0
    finally:
        if first.poll() is None:
            first.kill()
    # typed values: the module defining the spec (pizzeria) is imported in this process,
    # and this env was made after that import
    later = make_env(vault=f"sqlite:///{db}")
    done = later.job("bake-7")
    assert done.status is ls.JobStatus.COMPLETED
    assert done.output().values() == ["12in margherita, spice 0"]
    (order,) = done.input().stream.values()
    assert order == Order(pizza="margherita")


def test_with_redis_two_envs_starting_one_job_id_at_once_one_is_refused(make_env, redis_url):
    import threading

    envs = [make_env(vault=redis_url, autostart=False) for _ in range(2)]
    results: list[str] = []
    barrier = threading.Barrier(2)

    def start(env: ls.LiveEnv) -> None:
        barrier.wait()
        try:
            redis_specs.slow_square.start(env=env, job_id="race-1")
            results.append("started")
        except ls.LivestackError as e:
            results.append(str(e))

    threads = [threading.Thread(target=start, args=(e,)) for e in envs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results)[-1] == "started" and "job id 'race-1' is taken" in sorted(results)[0], results
    # a start refused for its options leaves the id free
    with pytest.raises(ls.DataValidationError):
        redis_specs.slow_square.start({"delay": "slow"}, env=envs[0], job_id="race-2")
    redis_specs.slow_square.start(env=envs[0], job_id="race-2").cancel()
    envs[0].close()  # first: its reader thread started after the second env was made
