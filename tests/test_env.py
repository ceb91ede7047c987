"""LiveEnv: selecting an env, listing jobs, durability with sqlite, closing cleanly."""

from __future__ import annotations

import threading

from pizzeria import bake

import livestack_nb as ls
from livestack_nb.testing import fresh_env


def test_with_env_selects_it(env):
    assert ls.current_env() is env
    job = bake.start()
    assert any(info.job_id == job.job_id for info in env.jobs())


def test_nested_with_restores_the_outer_env(env, make_env):
    assert ls.current_env() is env
    inner = ls.LiveEnv()
    try:
        with inner:
            assert ls.current_env() is inner
        assert ls.current_env() is env
    finally:
        inner.close()


def test_use_env_selects_an_env_until_undone():
    other = ls.LiveEnv()
    try:
        with ls.use_env(other):
            assert ls.current_env() is other
            assert bake.run([{"pizza": "z"}], timeout=10) == ["12in z, spice 0"]
            assert [i.spec for i in other.jobs()] == ["bake"]
        assert ls.current_env() is not other
    finally:
        other.close()


def test_start_with_explicit_env(env, make_env):
    other = make_env()
    job = bake.start(env=env)
    assert any(info.job_id == job.job_id for info in env.jobs())
    assert not any(info.job_id == job.job_id for info in other.jobs())


def test_jobs_and_job_lookup(env):
    job = bake.start()
    job.feed({"pizza": "capricciosa"})
    job.end()
    job.wait(timeout=10)
    (info,) = [i for i in env.jobs() if i.job_id == job.job_id]
    assert info.status == ls.JobStatus.COMPLETED
    assert info.spec == "bake"
    again = env.job(job.job_id)
    assert isinstance(again, ls.JobHandle)
    assert again.output().values() == ["12in capricciosa, spice 0"]


def test_spec_lookup_by_name(env):
    bake.run([{"pizza": "x"}], timeout=10)
    assert env.spec("bake").name == "bake"


def test_close_is_idempotent_and_leaves_no_threads():
    before = set(threading.enumerate())
    e = ls.LiveEnv()
    with e:
        assert bake.run([{"pizza": "x"}], timeout=10) == ["12in x, spice 0"]
    e.close()
    e.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("livestack") and t not in before]


def test_fresh_env_helper():
    with fresh_env() as e:
        assert ls.current_env() is e
        assert bake.run([{"pizza": "y"}], timeout=10) == ["12in y, spice 0"]


def test_the_status_feed_tells_every_change_and_survives_a_failing_listener(env, caplog):
    from livestack_nb.status_feed import StatusChange

    @ls.job_spec
    def echo(x: int) -> int:
        return x

    seen: list[StatusChange] = []

    def bad(_change: StatusChange) -> None:
        raise RuntimeError("a listener that raises")

    stop_bad = env.status_feed.listen(bad)
    stop = env.status_feed.listen(seen.append)
    job = echo.start()
    job.feed(1)
    job.end()
    job.wait(timeout=10)
    assert [(c.job_id, c.spec, c.status) for c in seen] == [
        (job.job_id, "echo", "running"),
        (job.job_id, "echo", "completed"),
    ]
    assert "a status listener failed" in caplog.text
    stop()
    stop_bad()
    stop()  # twice is harmless
    assert len(env.status_feed) == 0
