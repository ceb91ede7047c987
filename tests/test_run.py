"""One-shot runs (Livestack's ``enqueueAndGetResult``) and jobs chosen by id
(``enqueueJob({jobId})``): every output, named tags, clear errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

import livestack_nb as ls


@ls.job_spec(inputs={"default": int}, outputs={"default": int})
async def async_source(job: ls.LiveJob) -> None:
    job.output.emit(1)  # before reading any input
    async for _ in job.input:
        pass


@ls.job_spec(inputs={"default": int}, outputs={"default": int})
def sync_source(job: ls.LiveJob) -> None:
    job.output.emit(1)
    for _ in job.input:
        pass


@ls.job_spec
def double(x: int) -> int:
    return 2 * x


@ls.job_spec
def spread(x: int) -> Iterator[int]:
    yield from range(x)


class Dough(BaseModel):
    flour: int


@ls.job_spec(inputs={"dough": Dough, "sauce": str}, outputs={"pizza": str, "log": str})
def assemble(job: ls.LiveJob) -> None:
    doughs: list[Dough] = []
    sauces: list[str] = []
    for tag, v in job.input.merge():
        (doughs if tag == "dough" else sauces).append(v)
        job.output("log").emit(f"got {tag}")
    for d, s in zip(doughs, sauces, strict=False):
        job.output("pizza").emit(f"{d.flour}g with {s}")


@ls.job_spec(inputs={"text": str}, outputs={"upper": str})
def shout(job: ls.LiveJob) -> None:
    for t in job.input("text"):
        job.output("upper").emit(t.upper())


def test_run_of_a_source_spec_never_loses_its_first_outputs(env):
    # the outputs are subscribed before the job can run; this failed in most runs of the
    # async source when run() subscribed after start()
    for spec, n in ((async_source, 300), (sync_source, 300)):
        results = [spec.run([], timeout=10) for _ in range(n)]
        assert results == [[1]] * n, spec.name


def test_invoke_of_a_source_spec_never_loses_its_first_outputs(env):
    @ls.job_spec(inputs={"default": int}, outputs={"default": list})
    def caller(job: ls.LiveJob) -> None:
        for _ in job.input:
            job.output.emit(job.invoke(async_source, inputs=[]))

    assert caller.run(range(100), timeout=30) == [[1]] * 100


def test_run_feeds_and_returns_the_only_named_tags(env):
    assert shout.run(["a", "b"], timeout=10) == ["A", "B"]
    flow = ls.Liveflow("named-run")
    flow.connect(double, spread)
    flow.expose(double.input(), "in")
    flow.expose(spread.output(), "out")
    assert flow.run([1, 2], timeout=10) == [0, 1, 0, 1, 2, 3]
    assert double.run([], timeout=10) == []


def test_run_takes_values_by_tag_for_several_inputs(env):
    got = assemble.run({"dough": [{"flour": 200}], "sauce": ["tomato"]}, output="pizza", timeout=10)
    assert got == ["200g with tomato"]
    assert assemble.run({"dough": [{"flour": 1}]}, output="log", timeout=10) == ["got dough"]
    assert double.run({"default": [1, 2]}, timeout=10) == [2, 4]


def test_an_ambiguous_run_names_the_tags(env):
    with pytest.raises(ls.LivestackError, match=r"output tags \['log', 'pizza'\].*name the tag"):
        assemble.run({"sauce": ["x"]}, timeout=10)
    with pytest.raises(ls.LivestackError, match=r"input tags \['dough', 'sauce'\].*name the tag"):
        assemble.run(["x"], output="pizza", timeout=10)
    with pytest.raises(ls.LivestackError, match=r"input tag\(s\) \['crust'\].*are \['dough', 'sauce'\]"):
        assemble.run({"crust": [1]}, output="pizza", timeout=10)
    with pytest.raises(ls.LivestackError, match="has no output tag 'box'"):
        assemble.run({"sauce": ["x"]}, output="box", timeout=10)
    with pytest.raises(ls.LivestackError, match="takes a list of values"):
        double.run(5, timeout=10)  # type: ignore[arg-type]
    assert not [j for j in env.jobs() if j.status == "running"]  # nothing left behind


def test_feed_and_output_on_a_flow_with_one_exposed_input_and_output(env):
    flow = ls.Liveflow("one-port")
    flow.connect(double, spread)
    flow.expose(double.input(), "orders")
    flow.expose(spread.output(), "boxes")
    run = flow.start()
    run.feed(2)
    run.feed_many([1])
    run.end()
    run.wait(timeout=10)
    assert run.output().values() == [0, 1, 2, 3, 0, 1]
    assert run.output() is run.output("boxes")
    job = assemble.start()
    with pytest.raises(ls.LivestackError, match=r"feed\(\) cannot choose among its input tags"):
        job.feed({"flour": 1})
    job.cancel()


def test_a_job_started_with_an_id_is_found_fed_and_read_by_it(env):
    job = double.start(job_id="order-42")
    assert job.job_id == "order-42"
    same = env.job("order-42")  # another cell
    same.feed_many([1, 2])
    same.end()
    assert list(env.job("order-42").output()) == [2, 4]
    with pytest.raises(ls.LivestackError, match=r"job id 'order-42' is taken.*spec 'double' \(completed\)"):
        double.start(job_id="order-42")
    with pytest.raises(ls.LivestackError, match="job id 'a/b'"):
        double.start(job_id="a/b")
    with pytest.raises(ls.LivestackError, match="non-empty string"):
        double.start(job_id="")
    assert double.run([3], job_id="order-43", timeout=10) == [6]
    assert env.job("order-43").status is ls.JobStatus.COMPLETED


def test_a_job_id_taken_by_an_earlier_process_on_a_sqlite_file_is_refused(make_env, tmp_path):
    db = tmp_path / "k.db"
    code = (
        "import livestack_nb as ls\n"
        f"env = ls.LiveEnv(vault='sqlite:///{db}')\n"
        "with env:\n"
        "    s = ls.JobSpec('double', input=int, output=int)\n"
        "    s.define_worker(lambda x: 2 * x)\n"
        "    j = s.start(job_id='order-7'); j.feed(1); j.end(); j.wait(timeout=10)\n"
        "env.close()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    env = make_env(vault=f"sqlite:///{db}")
    with pytest.raises(ls.LivestackError, match="job id 'order-7' is taken"):
        double.start(job_id="order-7", env=env)
    env.register(double)
    assert env.job("order-7").output().values() == [2]


def test_a_source_spec_as_an_operator_loses_none_of_its_first_outputs(env):
    import reactivex

    for _ in range(200):
        got: list[int] = []
        reactivex.empty().pipe(async_source.op()).subscribe(got.append)
        env.latest_job(async_source).wait(timeout=10)  # type: ignore[union-attr]
        assert got == [1]


def test_a_flow_with_several_exposed_inputs_runs_by_tag(env):
    flow = ls.Liveflow("by-tag")
    flow.add(assemble)
    flow.expose(assemble.input("dough"), "dough")
    flow.expose(assemble.input("sauce"), "sauce")
    flow.expose(assemble.output("pizza"), "pizza")
    got = flow.run({"dough": [{"flour": 1}, {"flour": 2}], "sauce": ["a", "b"]}, timeout=10)
    assert got == ["1g with a", "2g with b"]
    with pytest.raises(ls.LivestackError, match=r"input tags \['dough', 'sauce'\]"):
        flow.run([{"flour": 1}], timeout=10)


def test_a_flow_run_started_with_an_id_is_fed_and_read_by_it_from_another_cell(env):
    flow = ls.Liveflow("by-id-flow")
    flow.connect(double, spread)
    flow.expose(double.input(), "orders")
    flow.expose(spread.output(), "boxes")
    flow.start(job_id="shift-1")
    run = env.job("shift-1")  # another cell
    run.feed(2)
    run.end()
    assert list(run.output()) == [0, 1, 2, 3]
    with pytest.raises(ls.LivestackError, match="job id 'shift-1' is taken"):
        flow.start(job_id="shift-1")
