"""Every error path: validation, wiring, failure, timeouts, closed inputs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from pizzeria import Order, Pizza, assemble, bake, box, pizzeria_flow
from support import Recorder

import livestack_nb as ls
from livestack_nb.testing import wait_until


def test_error_hierarchy():
    for error in (ls.DataValidationError, ls.WiringError, ls.JobFailed, ls.WaitTimeout, ls.JobClosedError):
        assert issubclass(error, ls.LivestackError)
    assert issubclass(ls.LivestackError, Exception)
    assert issubclass(ls.DataValidationError, ValueError)
    assert issubclass(ls.WaitTimeout, TimeoutError)


# --- DataValidationError -------------------------------------------------------------


def test_bad_feed_names_spec_tag_and_field_and_loses_nothing(env):
    job = bake.start()
    with pytest.raises(ls.DataValidationError) as info:
        job.feed({"pizza": "margherita", "size": "huge"})
    err = info.value
    assert (err.spec, err.tag, err.field) == ("bake", "default", "size")
    for word in ("bake", "default", "size"):
        assert word in str(err)
    job.feed({"pizza": "margherita"})
    job.end()
    assert job.result(timeout=10) == ["12in margherita, spice 0"]


def test_a_wholly_wrong_value_has_no_field(env):
    job = bake.start()
    with pytest.raises(ls.DataValidationError) as info:
        job.feed("just a string")
    assert (info.value.spec, info.value.tag, info.value.field) == ("bake", "default", None)
    job.cancel()


def test_bad_feed_on_another_tag(env):
    job = assemble.start()
    with pytest.raises(ls.DataValidationError) as info:
        job.input("dough").feed({"flour": ["not", "a", "string"]})
    assert (info.value.spec, info.value.tag, info.value.field) == ("assemble", "dough", "flour")
    with pytest.raises(ls.DataValidationError) as info:
        job.input("sauce").feed(42)
    assert (info.value.spec, info.value.tag) == ("assemble", "sauce")
    job.cancel()


def test_bad_options_are_rejected(env):
    with pytest.raises(ls.DataValidationError) as info:
        bake.start(options={"spice": "lots"})
    assert info.value.spec == "bake"
    assert info.value.field == "spice"


def test_bad_emit_fails_the_job_clearly(env):
    @ls.job_spec
    def sloppy(sauce: str) -> Pizza:
        return {"dough": "00", "sauce": ["not", "a", "string"]}  # type: ignore[return-value]

    job = sloppy.start()
    job.feed("tomato")
    job.end()
    with pytest.raises(ls.JobFailed) as info:
        job.wait(timeout=10)
    cause = info.value.__cause__
    assert isinstance(cause, ls.DataValidationError)
    assert (cause.spec, cause.tag, cause.field) == ("sloppy", "default", "sauce")
    assert job.status is ls.JobStatus.FAILED
    assert job.output().ended


# --- WiringError -------------------------------------------------------------------


def test_incompatible_types_name_both_ends_and_types():
    flow = ls.Liveflow("bad-types")
    with pytest.raises(ls.WiringError) as info:
        flow.connect(bake, assemble.input("dough"))  # str cannot feed Dough
    message = str(info.value)
    for part in ("bake", "assemble", "dough", "str", "Dough"):
        assert part in message


def test_unknown_tag_names_the_tags_that_exist():
    flow = ls.Liveflow("bad-tag")
    with pytest.raises(ls.WiringError) as info:
        flow.connect(bake, assemble.input("cheese"))
    message = str(info.value)
    for part in ("cheese", "assemble", "dough", "sauce"):
        assert part in message
    with pytest.raises(ls.WiringError) as info:
        flow.connect(assemble.output("crust"), box)
    for part in ("crust", "pizza", "log"):
        assert part in str(info.value)


def test_transform_allows_otherwise_incompatible_types(env):
    flow = ls.Liveflow("adapted")
    flow.connect(bake, assemble.input("sauce"))  # str -> str is fine
    flow.connect(bake, assemble.input("dough"), transform=lambda s: {"flour": s})
    flow.expose(bake.input(), "orders")
    flow.expose(assemble.output("pizza"), "pizzas")
    run = flow.start()
    run.input("orders").feed(Order(pizza="x"))
    run.end()
    run.wait(timeout=10)
    baked = "12in x, spice 0"
    assert run.output("pizzas").values() == [Pizza(dough=baked, sauce=baked)]


def test_unknown_exposure_tag():
    flow = ls.Liveflow("bad-expose")
    with pytest.raises(ls.WiringError):
        flow.expose(bake.output("nope"), "out")


# --- JobFailed and retries -----------------------------------------------------------


def _burn(n: int) -> int:
    return n // 0


def test_job_failed_keeps_cause_and_traceback(env):
    @ls.job_spec
    def oven(n: int) -> int:
        return _burn(n)

    job = oven.start()
    job.feed(1)
    job.end()
    with pytest.raises(ls.JobFailed) as info:
        job.wait(timeout=10)
    err = info.value
    assert err.job_id == job.job_id
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert err.__cause__.__traceback__ is not None
    assert "_burn" in err.traceback and "ZeroDivisionError" in err.traceback
    assert job.error is err.__cause__
    assert "_burn" in job.traceback
    with pytest.raises(ls.JobFailed):
        job.result(timeout=10)


def test_failure_ends_outputs_so_nothing_downstream_hangs(env):
    @ls.job_spec
    def oven(n: int) -> int:
        return _burn(n)

    job = oven.start()
    rec = Recorder(job.output())
    job.feed(1)  # no end(): the failure alone ends the output
    rec.wait_done(10)
    assert rec.completed or rec.error is not None
    assert job.output().ended


def test_retries_then_failure(env):
    attempts: list[int] = []

    @ls.job_spec(retries=3, retry_backoff=0.0)
    def stubborn(n: int) -> int:
        attempts.append(n)
        raise OSError("gas off")

    job = stubborn.start()
    job.feed(8)
    job.end()
    with pytest.raises(ls.JobFailed) as info:
        job.wait(timeout=10)
    assert attempts == [8, 8, 8, 8]
    assert isinstance(info.value.__cause__, OSError)


# --- WaitTimeout ---------------------------------------------------------------------


def test_wait_timeout_then_the_job_goes_on(env):
    release = threading.Event()

    @ls.job_spec
    def slow(n: int) -> int:
        release.wait(5)
        return n

    job = slow.start()
    job.feed(1)
    job.end()
    with pytest.raises(ls.WaitTimeout):
        job.wait(timeout=0.05)
    with pytest.raises(TimeoutError):
        job.result(timeout=0.05)
    release.set()
    assert job.result(timeout=10) == [1]


# --- feeding after end ---------------------------------------------------------------


def test_feeding_after_end_raises(env):
    job = bake.start()
    job.end()
    with pytest.raises(ls.JobClosedError):
        job.feed({"pizza": "late"})
    job.wait(timeout=10)
    with pytest.raises(ls.JobClosedError):
        job.feed({"pizza": "later"})


def test_ending_one_tag_leaves_the_others_open(env):
    job = assemble.start()
    job.input("dough").end()
    with pytest.raises(ls.JobClosedError):
        job.input("dough").feed({})
    job.input("sauce").feed("tomato")
    job.input("sauce").end()
    job.wait(timeout=10)
    assert job.output("pizza").values() == []


def test_wait_until_returns_the_value_or_times_out():
    assert wait_until(lambda: 7, timeout=0.05) == 7
    with pytest.raises(ls.WaitTimeout):
        wait_until(lambda: False, timeout=0.05)


def test_unknown_tags_on_a_handle_name_the_existing_ones(env):
    job = assemble.start()
    with pytest.raises(ls.LivestackError, match="sauce"):
        job.input("cheese").feed("x")
    with pytest.raises(ls.LivestackError, match="pizza"):
        job.output("crust")
    job.cancel()


def test_async_processor_failure_fails_the_job(env):
    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    async def fussy(job: ls.LiveJob):
        async for n in job.input:
            if n > 1:
                raise KeyError(n)
            await job.output.emit(n)

    job = fussy.start()
    job.feed_many([1, 2])
    job.end()
    with pytest.raises(ls.JobFailed) as info:
        job.wait(timeout=10)
    assert isinstance(info.value.__cause__, KeyError)
    assert job.output().values() == [1]


def test_flat_map_failure_midway_fails_the_job(env):
    @ls.job_spec
    def countdown(n: int) -> Iterator[int]:
        for i in range(n, -1, -1):
            yield 10 // i

    job = countdown.start()
    job.feed(2)
    job.end()
    with pytest.raises(ls.JobFailed) as info:
        job.wait(timeout=10)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert job.output().ended


def test_feeding_a_flow_run_after_end_raises(env):
    run = pizzeria_flow().start()
    run.end()
    with pytest.raises(ls.JobClosedError):
        run.input("orders").feed({"pizza": "late"})
    run.wait(timeout=10)
    assert run.output("boxes").values() == []


def test_awaiting_a_failed_job_raises(env):
    @ls.job_spec
    def oven(n: int) -> int:
        return _burn(n)

    job = oven.start()
    job.feed(1)
    job.end()

    async def main() -> None:
        await job

    with pytest.raises(ls.JobFailed) as info:
        asyncio.run(main())
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert [s for s, _ in job.statuses][-1] is ls.JobStatus.FAILED
    (record,) = env.jobs()
    assert record.status == ls.JobStatus.FAILED


def test_a_raising_transform_fails_the_flow_run(env):
    flow = ls.Liveflow("bad-transform")
    flow.connect(bake, box, transform=lambda s: s[1000])
    run = flow.start()
    run.feed({"pizza": "x"})
    with pytest.raises(ls.JobFailed) as info:
        run.wait(timeout=10)
    assert isinstance(info.value.__cause__, IndexError)


def test_a_transform_giving_the_wrong_type_names_the_receiving_spec(env):
    flow = ls.Liveflow("wrong-transform")
    flow.connect(bake, box, transform=lambda s: ["not", "a", "string"])
    run = flow.start()
    run.feed({"pizza": "x"})
    with pytest.raises(ls.JobFailed) as info:
        run.wait(timeout=10)
    cause = info.value.__cause__
    assert isinstance(cause, ls.DataValidationError)
    assert (cause.spec, cause.tag) == ("box", "default")
