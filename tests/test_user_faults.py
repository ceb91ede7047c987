"""Faults inside user code are contained and reported where the user looks, never swallowed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, field_validator

import livestack_nb as ls
from livestack_nb.testing import collect, wait_until


def test_a_raising_subscriber_is_dropped_reported_in_the_job_logs_and_the_job_goes_on(env):
    @ls.job_spec
    def double(n: int) -> int:
        return n * 2

    job = double.start()
    good: list[Any] = []
    bad: list[Any] = []

    def explode(v: int) -> None:
        bad.append(v)
        if v == 4:
            raise RuntimeError("subscriber on fire")

    job.output().subscribe(explode)
    job.output().subscribe(good.append)
    job.feed_many([1, 2, 3])
    job.end()
    job.wait(timeout=10)
    assert job.status is ls.JobStatus.COMPLETED
    assert good == [2, 4, 6]  # the other subscriber saw everything
    assert bad == [2, 4]  # the raising one was unsubscribed after its error
    warnings = [e for e in job.logs if e.level == "WARNING"]
    assert len(warnings) == 1
    assert "subscriber of output 'default' raised" in warnings[0].message
    assert "RuntimeError: subscriber on fire" in warnings[0].message  # with its traceback
    assert job.output().subscriber_errors == 1


def test_a_raising_subscriber_in_a_flow_does_not_stop_the_next_job(env):
    @ls.job_spec
    def inc(n: int) -> int:
        return n + 1

    @ls.job_spec
    def neg(n: int) -> int:
        return -n

    flow = ls.Liveflow("faulty-reader")
    flow.connect(inc, neg)
    flow.expose(inc.input(), "in")
    flow.expose(neg.output(), "out")
    run = flow.start()
    inner = run.env.latest_job(inc)
    assert inner is not None
    inner.output().subscribe(lambda v: 1 / 0)
    run.input("in").feed_many([1, 2, 3])
    run.input("in").end()
    run.wait(timeout=10)
    assert collect(run.output("out").replay()) == [-2, -3, -4]
    assert any("ZeroDivisionError" in e.message for e in inner.logs)


def test_a_raising_init_hook_fails_the_job_with_its_traceback(env):
    spec = ls.JobSpec("needs-model", input=int, output=int)

    def init() -> None:
        raise OSError("model file missing")

    spec.define_worker(lambda n: n, init=init)
    job = spec.start()
    job.feed(1)
    job.end()
    with pytest.raises(ls.JobFailed, match="model file missing") as e:
        job.wait(timeout=10)
    assert isinstance(e.value.__cause__, OSError)
    assert job.status is ls.JobStatus.FAILED
    assert "OSError: model file missing" in (job.traceback or "")
    assert any("model file missing" in r.message for r in job.logs)
    # the env goes on running other specs
    ok = ls.JobSpec("plain", input=int, output=int)
    ok.define_worker(lambda n: n + 1)
    assert ok.run([1], timeout=10) == [2]


class Oven(BaseModel):
    spice: int = 0

    @field_validator("spice")
    @classmethod
    def check(cls, v: int) -> int:
        if v == 13:
            raise RuntimeError("unlucky")  # not a ValueError: pydantic lets it through
        if v < 0:
            raise ValueError("spice must not be negative")
        return v


@ls.job_spec
def bake(n: int, options: Oven) -> int:
    return n + options.spice


@pytest.mark.parametrize("spice", [-1, 13])
def test_an_option_validator_that_raises_is_a_livestack_error_naming_the_spec(env, spice):
    with pytest.raises(ls.LivestackError, match="bake") as e:
        bake.start(options={"spice": spice})
    assert ("negative" if spice < 0 else "unlucky") in str(e.value)
    assert bake.run([1], options={"spice": 2}, timeout=10) == [3]  # nothing was left broken


def test_a_raising_transform_fails_the_run_and_shows_the_red_node(env):
    @ls.job_spec
    def first(n: int) -> int:
        return n

    @ls.job_spec
    def second(n: int) -> int:
        return n

    flow = ls.Liveflow("bad-transform")
    flow.connect(first, second, transform=lambda n: 1 // (n - 2))
    flow.expose(first.input(), "in")
    run = flow.start()
    run.input("in").feed_many([1, 2, 3])
    run.input("in").end()
    with pytest.raises(ls.JobFailed, match="ZeroDivisionError"):
        run.wait(timeout=10)
    failed = [j for j in env.jobs() if j.status == ls.JobStatus.FAILED]
    assert failed, "the job whose input transform raised is recorded failed"
    wait_until(lambda: all(env.job(r.job_id).done for r in env.jobs()), timeout=10)


class Picky(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def check(cls, v: str) -> str:
        if v == "boom":
            raise KeyError("no such name")
        return v


def test_a_type_validator_that_raises_on_feed_names_spec_and_tag_and_loses_nothing(env):
    @ls.job_spec
    def greet(p: Picky) -> str:
        return "hi " + p.name

    job = greet.start()
    job.feed({"name": "ada"})
    with pytest.raises(ls.DataValidationError, match=r"spec 'greet', input tag 'default'.*KeyError") as e:
        job.feed({"name": "boom"})
    assert isinstance(e.value.__cause__, KeyError)
    job.feed({"name": "bob"})
    job.end()
    assert job.result(timeout=10) == ["hi ada", "hi bob"]
