"""The helpers shipped in livestack_nb.testing behave as documented."""

from __future__ import annotations

import pytest
import reactivex

import livestack_nb as ls
from livestack_nb.testing import collect, fresh_env, livestack_threads, virtual_clock, wait_until


def test_wait_until_returns_the_first_truthy_value_and_times_out_clearly():
    calls = iter([0, 0, 7])
    assert wait_until(lambda: next(calls), timeout=1) == 7
    with pytest.raises(ls.WaitTimeout, match=r"oven is hot did not hold within 0\.05s"):
        wait_until(lambda: False, timeout=0.05, message="oven is hot")


def test_collect_returns_values_and_reraises_errors():
    assert collect(reactivex.of(1, 2, 3)) == [1, 2, 3]
    with pytest.raises(ValueError, match="burnt"):
        collect(reactivex.throw(ValueError("burnt")))


def test_fresh_env_is_selected_then_closed_leaving_no_thread():
    with fresh_env() as env:
        assert ls.current_env() is env

        @ls.job_spec
        def slow_oven(job: ls.LiveJob):
            for x in job.input:
                job.output.emit(x)

        job = slow_oven.start()
        job.feed(1)
        wait_until(lambda: job.output().values() == [1])
    assert env.closed
    assert job.status is ls.JobStatus.CANCELLED
    assert wait_until(lambda: not livestack_threads(), timeout=5)


def test_virtual_clock_stamps_datapoints_and_statuses():
    with fresh_env(), virtual_clock(start=100.0) as clock:

        @ls.job_spec
        def plate(x: int) -> int:
            return x

        job = plate.start()
        job.feed(1)
        wait_until(lambda: len(job.output()) == 1)
        clock.advance(2.5)
        job.feed(2)
        job.end()
        job.wait(5)
        assert [d.timestamp for d in job.output().datapoints()] == [100.0, 102.5]
        assert job.statuses[0][1] == 100.0
        with pytest.raises(ValueError):
            clock.advance(-1)
