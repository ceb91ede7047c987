"""Bounded memory across runs: an env keeps its last ``keep_jobs`` finished jobs
(a flow run with its jobs counting as one) and forgets older ones."""

# ruff: noqa: F811 - the fixtures imported from redis_support are test parameters

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from redis_support import redis_server, redis_url  # noqa: F401 - fixtures

import livestack_nb as ls
import livestack_nb.widgets as lw
from livestack_nb.job import LiveJob
from livestack_nb.testing import wait_until


@contextmanager
def no_cycle_collector() -> Iterator[None]:
    """What is freed here is freed by reference counting alone (as between the collector's rare runs)."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _flow(name: str) -> ls.Liveflow:
    @ls.job_spec(name=f"{name}-double")
    def double(x: int) -> int:
        return 2 * x

    @ls.job_spec(name=f"{name}-inc")
    def inc(x: int) -> int:
        return x + 1

    flow = ls.Liveflow(name)
    flow.connect(double, inc)
    return flow


def _run(flow: ls.JobSpec, env: ls.LiveEnv, values: list[int]) -> ls.JobHandle:
    run = flow.start(env=env)
    run.feed_many(values)
    run.end()
    run.wait(timeout=10)
    return run


def test_an_env_keeps_its_last_finished_runs_and_forgets_older_ones(make_env):
    env = make_env(keep_jobs=3)
    flow = _flow("keep3")
    ids = [_run(flow, env, [1, 2, 3]).job_id for _ in range(8)]
    kept = ids[-3:]
    for job_id in kept:
        assert env.job(job_id).output().values() == [3, 5, 7]
    # a run counts as one with its jobs: 3 runs of a 2-spec flow are 9 jobs
    assert len(env._jobs) == 9
    assert [r.job_id for r in env.jobs() if r.spec == "keep3"] == kept  # the memory vault forgot them too
    with pytest.raises(ls.LivestackError, match=r"forgotten \(keep_jobs=3\).*durable vault"):
        env.job(ids[0])
    assert env.latest_job(flow).job_id == ids[-1]


def test_a_held_handle_keeps_working_after_its_job_is_forgotten(make_env, comms):
    env = make_env(keep_jobs=1)
    flow = _flow("held")
    run = _run(flow, env, [1, 2])
    graph = lw.FlowGraph(run)
    panel = lw.JobPanel(run)
    _run(flow, env, [5])
    _run(flow, env, [6])
    with pytest.raises(ls.LivestackError):
        env.job(run.job_id)
    assert run.status is ls.JobStatus.COMPLETED
    assert run.output().values() == [3, 5]
    state = graph.state()
    assert state["status"] == "completed"
    assert state["nodes"]["held-inc"]["status"] == "completed"
    assert state["edges"]["held-double/default->held-inc/default"]["count"] == 2
    assert panel.state()["status"] == "completed"
    assert "completed" in panel.snapshot_html()
    run.wait(timeout=1)  # still answers
    assert run.result() == [3, 5]


def test_running_jobs_are_never_forgotten(make_env):
    env = make_env(keep_jobs=0)

    @ls.job_spec
    def echo(x: int) -> int:
        return x

    slow = echo.start(env=env)
    slow.feed(1)
    for _ in range(5):
        _run(echo, env, [2])
    assert env.job(slow.job_id).output().values() == [1]
    slow.end()
    slow.wait(timeout=10)
    with pytest.raises(ls.LivestackError, match="keep_jobs=0"):
        env.job(slow.job_id)


def _loop() -> ls.Liveflow:
    @ls.job_spec(name="free-step")
    def step(x: int) -> int | None:
        return x - 1 if x > 0 else None

    @ls.job_spec(name="free-pass")
    def through(x: int) -> int:
        return x

    flow = ls.Liveflow("free-loop")
    flow.connect(through, step)
    flow.connect(step, through)
    flow.expose(through.input(), "default")
    flow.expose(step.output(), "default")
    return flow


@pytest.mark.parametrize(
    "form", ["map", "flat", "processor", "async map", "async processor", "flow", "cycle"]
)
def test_a_forgotten_job_is_freed_without_the_cycle_collector(make_env, form):
    @ls.job_spec(name="free-map")
    def fmap(x: int) -> int:
        return x + 1

    @ls.job_spec(name="free-flat")
    def fflat(x: int):  # type: ignore[no-untyped-def]
        yield x
        yield x

    @ls.job_spec(name="free-proc")
    def fproc(job: ls.LiveJob) -> None:
        for x in job.input:
            job.logger.info("got %s", x)
            job.output.emit(x)

    @ls.job_spec(name="free-amap")
    async def famap(x: int) -> int:
        return x

    @ls.job_spec(name="free-aproc")
    async def faproc(job: ls.LiveJob) -> None:
        async for x in job.input:
            await job.output.emit(x)

    spec = {
        "map": fmap,
        "flat": fflat,
        "processor": fproc,
        "async map": famap,
        "async processor": faproc,
        "flow": _flow("free-flow"),
        "cycle": _loop(),
    }[form]
    env = make_env(keep_jobs=0)
    _run(spec, env, [1])  # warm up the worker
    with no_cycle_collector():
        run = spec.start(env=env)
        family = [j for j in env._jobs.values() if run.job_id in (j.job_id, j.parent_id)]
        assert len(family) == (3 if form in ("flow", "cycle") else 1)
        jobs = [weakref.ref(j) for j in family]
        streams = [weakref.ref(s) for j in family for s in [*j._inputs.values(), *j._outputs.values()]]
        del family
        run.feed_many(list(range(100 if form != "cycle" else 20)))
        run.end()
        run.wait(timeout=10)
        assert len(run.output()) > 0
        del run
        # the flow's own jobs end just before it: all of them are forgotten with it
        wait_until(lambda: all(j() is None for j in jobs), timeout=5, message="forgotten jobs freed")
        assert all(s() is None for s in streams)
        assert not [o for o in gc.get_objects() if isinstance(o, LiveJob) and o.spec is spec]


def test_a_durable_vault_still_finds_forgotten_jobs(make_env, tmp_path):
    env = make_env(vault=f"sqlite:///{tmp_path / 'kept.db'}", keep_jobs=1)
    flow = _flow("durable-keep")
    first = _run(flow, env, [1, 2, 3]).job_id
    _run(flow, env, [4])
    _run(flow, env, [5])
    assert first not in env._jobs
    again = env.job(first)
    assert again.status is ls.JobStatus.COMPLETED
    assert again.output().values() == [3, 5, 7]
    assert next(r.job_id for r in env.jobs() if r.spec == "durable-keep") == first


def test_keep_jobs_none_keeps_everything_and_bad_values_are_refused(make_env):
    env = make_env(keep_jobs=None)
    flow = _flow("keepall")
    ids = [_run(flow, env, [1]).job_id for _ in range(5)]
    assert all(env.job(i).output().values() == [3] for i in ids)
    for bad in (-1, 1.5, "10"):
        with pytest.raises(ls.LivestackError, match=r"keep_jobs must be None or an int >= 0"):
            ls.LiveEnv(keep_jobs=bad)  # type: ignore[arg-type]


def test_a_queue_worker_serving_many_jobs_holds_none_of_them(redis_url):
    """What ``livestack-nb worker`` runs: every served job is forgotten and freed once acknowledged."""
    import threading

    import redis_specs

    from livestack_nb.remote import QueueWorker

    # Two envs whose reader threads start at different times: closed here, not by make_env,
    # whose check of leftover threads would count the other env's.
    client = ls.LiveEnv(vault=redis_url, autostart=False)
    worker_env = ls.LiveEnv(vault=redis_url)
    worker = QueueWorker(worker_env, redis_specs.shout, concurrency=4)
    stop = threading.Event()
    serving = threading.Thread(target=worker.serve, args=(stop,), name="livestack-test-serve")
    serving.start()
    try:
        with no_cycle_collector():
            for _ in range(4):
                jobs = [redis_specs.shout.start(env=client) for _ in range(25)]
                for j in jobs:
                    j.feed_many(["a", "b"])
                    j.end()
                for j in jobs:
                    assert j.result(timeout=30) == ["A", "B"]
            wait_until(lambda: worker.completed == 100, timeout=30)
            wait_until(lambda: not worker_env._jobs, timeout=10, message="the worker env holds no job")

            def held() -> int:
                return sum(1 for o in gc.get_objects() if isinstance(o, LiveJob) and o.env is worker_env)

            # Freed by reference counting, not the collector. The vault's reader thread
            # keeps its last follower (a job's status) in a local until it reads again:
            # one job at most, however many were served.
            wait_until(lambda: held() <= 1, timeout=10, message="every served job freed")
            assert len(client._jobs) == 100  # the client keeps its last keep_jobs=100
    finally:
        stop.set()
        serving.join(10)
        worker_env.close()
        client.close()
