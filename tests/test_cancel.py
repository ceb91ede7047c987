"""Cancelling a job whose sync processor is busy in its own code.

Python cannot stop a thread from outside, so a cancel reaches a processor at its
next call into its job (reading input, emitting, logging): there it raises
``ls.JobCancelled``. One that never calls in is reported, and keeps its thread
(no other job gets it) until it returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

import livestack_nb as ls
from livestack_nb.testing import wait_until

BUSY = "cancelled while its processor runs its own code"


class Busy:
    """A processor that takes one value, then loops in its own code until released,
    then (``then``) reads, emits, logs or just returns; what it raised is kept."""

    def __init__(self, then: str) -> None:
        self.then = then
        self.looping = threading.Event()
        self.release = threading.Event()
        self.raised: BaseException | None = None
        self.returned = threading.Event()

    def __call__(self, job: ls.LiveJob) -> None:
        try:
            reader = iter(job.input)
            first = next(reader)
            self.looping.set()
            while not self.release.is_set():  # busy: no call into the job
                pass
            if self.then == "read":
                next(reader)
            elif self.then == "emit":
                job.output.emit(first)
            elif self.then == "log":
                job.logger.info("done looping")
        except BaseException as e:
            self.raised = e
            raise
        finally:
            self.returned.set()


@pytest.fixture
def busy_spec(env: ls.LiveEnv) -> Iterator[Callable[[str], tuple[ls.JobSpec, Busy]]]:
    """Makes specs of one thread whose processor is a :class:`Busy`; every loop is
    released at teardown, even after a failed assertion (before the env closes)."""
    made: list[Busy] = []

    def make(then: str) -> tuple[ls.JobSpec, Busy]:
        busy = Busy(then)
        made.append(busy)
        spec = ls.JobSpec(f"busy-{then}", input=int, output=int)
        spec.define_worker(busy, concurrency=1)
        return spec, busy

    yield make
    for busy in made:
        busy.release.set()


def _messages(job: ls.JobHandle) -> list[str]:
    return [e.message for e in job.logs]


@pytest.mark.parametrize("then", ["read", "emit", "log"])
def test_a_cancelled_processor_gets_job_cancelled_at_its_next_read_emit_or_log(env, busy_spec, then):
    spec, busy = busy_spec(then)
    job = spec.start()
    job.feed(1)
    job.feed(2)
    assert busy.looping.wait(10)
    job.cancel()
    assert job.status is ls.JobStatus.CANCELLED  # at once, while the processor still runs
    worker = env.worker(spec.name)
    assert worker.stats.busy_after_cancel == 1
    assert any(m.startswith(BUSY) for m in _messages(job))
    busy.release.set()
    assert busy.returned.wait(10)
    assert isinstance(busy.raised, ls.JobCancelled)
    assert not isinstance(busy.raised, Exception)  # `except Exception` in a processor lets it through
    wait_until(lambda: worker.stats.busy_after_cancel == 0, timeout=5)
    assert "done looping" not in _messages(job)  # the call raised instead of logging
    assert any("its processor returned" in m and "its thread is free" in m for m in _messages(job))
    assert job.output().values() == []
    # its one thread is free: the next job runs (the loop is released, so it goes straight on)
    assert spec.run([3, 4], timeout=10) == ([3] if then == "emit" else [])


def test_a_processor_that_never_calls_in_is_reported_and_keeps_its_thread_until_it_returns(env, busy_spec):
    spec, busy = busy_spec("return")
    job = spec.start()
    job.feed(1)
    assert busy.looping.wait(10)
    job.cancel()
    job.wait(timeout=1)  # the job has ended: its caller is not held
    worker = env.worker(spec.name)
    assert worker.stats.busy_after_cancel == 1 and worker.stats.running == 0
    assert any(m.startswith(BUSY) for m in _messages(job))
    # its thread is not given to the next job, which says what it waits for
    after = spec.start()
    after.feed(5)
    after.end()
    with pytest.raises(ls.WaitTimeout):
        after.wait(timeout=0.5)
    assert after.status is ls.JobStatus.REQUESTED
    assert any("waiting for a thread: 1 of the worker's 1 are held" in m for m in _messages(after))
    busy.release.set()  # the processor returns on its own...
    after.wait(timeout=10)  # ...and only then does the next job get the thread
    assert after.status is ls.JobStatus.COMPLETED
    assert busy.raised is None
    assert worker.stats.busy_after_cancel == 0
    assert any("its processor returned" in m for m in _messages(job))


def test_env_close_returns_within_its_timeout_with_a_processor_that_never_returns(env, busy_spec):
    spec, busy = busy_spec("return")
    job = spec.start()
    job.feed(1)
    assert busy.looping.wait(10)
    t0 = time.monotonic()
    env.close(timeout=1.0)
    took = time.monotonic() - t0
    assert took < 2.0, f"env.close(timeout=1) took {took:.1f}s"
    assert job.status is ls.JobStatus.CANCELLED
    assert any(m.startswith(BUSY) for m in _messages(job))
    assert [t for t in threading.enumerate() if t.name == "livestack-busy-return_0"]  # left running
    busy.release.set()
    assert busy.returned.wait(10)  # and the env fixture sees its thread end


def test_a_processor_cancelling_its_own_job_ends_it_though_a_subscriber_raises(env):
    """The library logs the subscriber's failure to the job while it cancels it: that
    record must not raise the cancellation into the cancel itself."""

    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    def quitter(job: ls.LiveJob) -> None:
        for x in job.input:
            job.output.emit(x)
            job.cancel()

    job = quitter.start()
    job.output().subscribe(on_completed=lambda: 1 / 0)
    job.feed(1)
    job.wait(timeout=10)
    assert job.status is ls.JobStatus.CANCELLED
    assert any("ZeroDivisionError" in e.message for e in job.logs)
