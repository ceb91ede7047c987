"""Jobs: the caller's JobHandle and the worker's LiveJob."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from pizzeria import Order, Oven, assemble, bake

import livestack_nb as ls
from livestack_nb.testing import wait_until

# --- the caller's side: JobHandle -------------------------------------------------


def test_running_a_job_from_a_cell(env):
    job = bake.start(options={"spice": 2})  # JobHandle; returns at once, the job runs in the background
    job.feed({"pizza": "margherita"})  # validated into Order
    job.end()  # no more input
    assert isinstance(job.output(), ls.DataStream)
    job.wait(timeout=10)
    assert job.result() == ["12in margherita, spice 2"]
    assert job.status is ls.JobStatus.COMPLETED
    assert job.options == Oven(spice=2)
    assert job.spec is bake


def test_start_returns_at_once_while_the_job_waits_for_input(env):
    release = threading.Event()

    @ls.job_spec
    def slow(n: int) -> int:
        release.wait(5)
        return n

    t0 = time.perf_counter()
    job = slow.start()
    job.feed(1)
    assert time.perf_counter() - t0 < 1.0
    assert job.status in (ls.JobStatus.REQUESTED, ls.JobStatus.RUNNING)
    release.set()
    job.end()
    assert job.result(timeout=5) == [1]


def test_job_ids_are_unique_strings(env):
    ids = {bake.start().job_id for _ in range(5)}
    assert len(ids) == 5
    assert all(isinstance(i, str) and i for i in ids)


def test_status_history_is_append_only_and_ordered(env):
    job = bake.start()
    job.end()
    job.wait(timeout=10)
    statuses = [s for s, _ in job.statuses]
    times = [t for _, t in job.statuses]
    assert statuses[0] is ls.JobStatus.REQUESTED
    assert ls.JobStatus.RUNNING in statuses
    assert statuses[-1] is ls.JobStatus.COMPLETED
    assert times == sorted(times)
    assert ls.JobStatus.COMPLETED == "completed"
    assert [s.value for s in ls.JobStatus] == ["requested", "running", "completed", "failed", "cancelled"]


def test_feed_many_keeps_order(env):
    job = bake.start()
    job.feed_many({"pizza": p} for p in "abc")
    job.end()
    assert job.result(timeout=10) == ["12in a, spice 0", "12in b, spice 0", "12in c, spice 0"]


def test_await_job_from_asyncio(env):
    job = bake.start()
    job.feed(Order(pizza="funghi"))
    job.end()

    async def main() -> list[str]:
        await job
        return job.result()

    assert asyncio.run(main()) == ["12in funghi, spice 0"]


def test_feeding_other_tags_and_reading_other_outputs(env):
    job = assemble.start()
    job.input("sauce").feed("tomato")
    job.input("dough").feed({"flour": "spelt"})
    job.input("dough").end()
    job.input("sauce").end()
    job.wait(timeout=10)
    assert job.output("log").values() == ["spelt+tomato"]


def test_logs_are_kept_on_the_handle(env):
    job = assemble.start()
    job.input("dough").feed({})
    job.end()
    job.wait(timeout=10)
    entries = [e for e in job.logs if e.message == "got dough"]
    assert len(entries) == 1
    assert entries[0].level == "INFO"
    assert isinstance(entries[0].time, float)


def test_cancel_stops_a_running_job_and_ends_its_outputs(env):
    @ls.job_spec
    def echo(n: int) -> int:
        return n

    job = echo.start()
    job.feed(1)
    wait_until(lambda: job.output().values() == [1], timeout=5)
    job.cancel()
    wait_until(lambda: job.status is ls.JobStatus.CANCELLED, timeout=5)
    wait_until(lambda: job.output().ended, timeout=5)


# --- the worker's side: LiveJob -------------------------------------------------------


def test_live_job_parts_outside_a_flow(env):
    seen: dict[str, object] = {}

    @ls.job_spec(inputs={"default": int}, outputs={"default": int}, options=Oven)
    def inspect(job: ls.LiveJob):
        seen.update(
            options=job.options,
            spec=job.spec.name,
            nodes=len(job.graph.nodes),
            job_id=job.job_id,
            env=job.env,
            storage=job.storage,
        )
        job.logger.warning("looked around")
        for n in job.input:
            job.output.emit(n)

    handle = inspect.start(options={"spice": 3})
    handle.feed(7)
    handle.end()
    assert handle.result(timeout=10) == [7]
    assert seen["options"] == Oven(spice=3)
    assert seen["spec"] == "inspect"
    assert seen["nodes"] == 0
    assert seen["job_id"] == handle.job_id
    assert seen["env"] is env
    assert isinstance(seen["storage"], ls.StorageProvider)
    assert any(e.level == "WARNING" and e.message == "looked around" for e in handle.logs)


def test_live_job_graph_has_nodes_inside_a_flow(env):
    graphs: list[tuple[int, int]] = []

    @ls.job_spec
    def first(n: int) -> int:
        return n + 1

    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    def second(job: ls.LiveJob):
        graphs.append((len(job.graph.nodes), len(job.graph.edges)))
        for n in job.input:
            job.output.emit(n * 10)

    flow = ls.Liveflow("graph-seen")
    flow.connect(first, second)
    assert flow.run([1, 2], timeout=10) == [20, 30]
    nodes, edges = graphs[0]
    assert nodes >= 2
    assert edges >= 1


def test_input_merge_sync(env):
    @ls.job_spec(inputs={"a": int, "b": int}, outputs={"default": str})
    def merger(job: ls.LiveJob):
        for tag, value in job.input.merge("a", "b"):
            job.output.emit(f"{tag}{value}")

    job = merger.start()
    job.input("a").feed(1)
    job.input("b").feed(2)
    job.input("a").feed(3)
    job.end()
    out = job.result(timeout=10)
    assert sorted(out) == ["a1", "a3", "b2"]
    assert out.index("a1") < out.index("a3")


def test_async_iteration_of_default_input(env):
    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    async def adder(job: ls.LiveJob):
        async for n in job.input:
            await job.output.emit(n + 100)

    assert adder.run([1, 2, 3], timeout=10) == [101, 102, 103]


def test_invoke_runs_a_child_job_and_records_it(env):
    @ls.job_spec
    def square(n: int) -> int:
        return n * n

    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    def parent(job: ls.LiveJob):
        for n in job.input:
            for child_value in job.invoke(square, n):
                job.output.emit(child_value + 1)

    handle = parent.start()
    handle.feed(3)
    handle.end()
    assert handle.result(timeout=10) == [10]
    children = [info for info in env.jobs() if info.spec == "square"]
    assert len(children) == 1
    assert children[0].parent_id == handle.job_id
    child = env.job(children[0].job_id)
    assert child.status is ls.JobStatus.COMPLETED
    assert child.output().values() == [9]
    assert all(dp.parents for dp in child.output().datapoints())


def test_invoke_in_async_processor_is_awaitable(env):
    @ls.job_spec
    def square(n: int) -> int:
        return n * n

    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    async def parent(job: ls.LiveJob):
        async for n in job.input:
            for value in await job.invoke(square, n):
                await job.output.emit(value)

    assert parent.run([2, 4], timeout=10) == [4, 16]


def test_a_failing_child_fails_its_parent(env):
    @ls.job_spec
    def burnt(n: int) -> int:
        return n // 0

    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    def parent(job: ls.LiveJob):
        for n in job.input:
            job.output.emit(sum(job.invoke(burnt, n)))

    handle = parent.start()
    handle.feed(1)
    handle.end()
    with pytest.raises(ls.JobFailed) as info:
        handle.wait(timeout=10)
    child_failure = info.value.__cause__
    assert isinstance(child_failure, ls.JobFailed)
    assert isinstance(child_failure.__cause__, ZeroDivisionError)
    assert {(i.spec, i.status) for i in env.jobs()} == {("parent", "failed"), ("burnt", "failed")}
