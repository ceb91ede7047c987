"""The one retry policy every way of running a processor uses (``_retry.RetryPolicy``),
and the one backlog a feeder is held on (``_inbox.Backlog``)."""

from __future__ import annotations

import threading

import livestack_nb as ls
from livestack_nb._inbox import MAX_BACKLOG, Backlog
from livestack_nb._retry import DROP, FAIL, RETRY, RetryPolicy
from livestack_nb.testing import wait_until
from livestack_nb.worker import WorkerStats


def _job(env: ls.LiveEnv, on_error: str) -> ls.LiveJob:
    @ls.job_spec(name=f"policy-{on_error}", retries=2, retry_backoff=0.01, on_error=on_error)
    def policy(x: int) -> int:
        return x

    return env.make_job(policy, policy.validate_options(None))


def test_retries_then_fails_counting_each_retry(env):
    job = _job(env, "fail")
    assert job.spec.worker_def is not None
    stats = WorkerStats()
    policy = RetryPolicy(job.spec.worker_def, stats)
    point = ("default", 7, ("s", 0))
    assert [policy.decide(job, ValueError("x"), n, point) for n in (1, 2, 3)] == [RETRY, RETRY, FAIL]
    assert stats.retries == 2 and stats.skipped == 0
    assert [policy.delay(n) for n in (1, 2, 3)] == [0.01, 0.02, 0.04]


def test_skips_or_dead_letters_a_datapoint_but_never_drops_a_failure_tied_to_none(env):
    skip = _job(env, "skip")
    assert skip.spec.worker_def is not None
    stats = WorkerStats()
    policy = RetryPolicy(skip.spec.worker_def, stats)
    assert policy.decide(skip, ValueError("x"), 3, ("default", 7, ("s", 0))) == DROP
    assert policy.decide(skip, ValueError("x"), 3, None) == FAIL
    assert stats.skipped == 1

    dead = _job(env, "dead_letter")
    assert dead.spec.worker_def is not None
    policy = RetryPolicy(dead.spec.worker_def, stats)
    assert policy.decide(dead, ValueError("bad"), 3, ("default", 7, ("s", 0))) == DROP
    assert stats.dead_letters == 1
    errors = dead._life.errors
    assert errors is not None
    errors.flush()
    (letter,) = errors.values()
    assert letter.value == 7 and "bad" in letter.error


def test_a_backlog_holds_a_feeder_past_the_bound_until_half_is_taken():
    cond = threading.Condition(threading.Lock())
    room = Backlog(cond)
    released = threading.Event()

    def feeder() -> None:
        with cond:
            room.queued += MAX_BACKLOG + 1
            room.hold(lambda: False)
        released.set()

    t = threading.Thread(target=feeder, name="user-feeder")  # not a livestack thread: it may wait
    t.start()
    wait_until(lambda: room.blocked == 1, timeout=5)
    assert not released.is_set()
    with cond:
        room.taken(MAX_BACKLOG // 2 + 1)
    wait_until(released.is_set, timeout=5)
    t.join(5)
    assert room.blocked == 0 and room.queued == MAX_BACKLOG // 2
