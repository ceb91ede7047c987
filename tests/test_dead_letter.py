"""Dead letters: one bad value goes to the ``errors`` stream with its error, and the run goes on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

import livestack_nb as ls
import livestack_nb.widgets as lw
from livestack_nb.testing import wait_until

LINES = ["1", "2", "oops", "4", "", "6"]
BAD = ["oops", ""]


def _specs(prefix: str, on_error: str) -> dict[str, ls.JobSpec]:
    """Every form of a spec parsing lines to ints (and emitting ten times each)."""

    @ls.job_spec(name=f"{prefix}-map", on_error=on_error)
    def pmap(line: str) -> int:
        return int(line) * 10

    @ls.job_spec(name=f"{prefix}-flat", on_error=on_error)
    def pflat(line: str) -> Iterator[int]:
        n = int(line)
        yield n * 10

    @ls.job_spec(name=f"{prefix}-proc", outputs={"default": int}, on_error=on_error)
    def pproc(job: ls.LiveJob) -> None:
        for line in job.input:
            job.output.emit(int(line) * 10)

    @ls.job_spec(name=f"{prefix}-amap", on_error=on_error)
    async def pamap(line: str) -> int:
        return int(line) * 10

    @ls.job_spec(name=f"{prefix}-aflat", on_error=on_error)
    async def paflat(line: str) -> AsyncIterator[int]:
        n = int(line)
        yield n * 10

    @ls.job_spec(name=f"{prefix}-aproc", outputs={"default": int}, on_error=on_error)
    async def paproc(job: ls.LiveJob) -> None:
        async for line in job.input:
            await job.output.emit(int(line) * 10)

    return {
        "map": pmap,
        "flat-map": pflat,
        "processor": pproc,
        "async map": pamap,
        "async flat-map": paflat,
        "async processor": paproc,
    }


FORMS = ["map", "flat-map", "processor", "async map", "async flat-map", "async processor"]
GOOD = [int(x) * 10 for x in LINES if x not in BAD]


def _feed(job: ls.JobHandle, per_value: bool, tag: str = "default") -> None:
    if per_value:
        for line in LINES:
            job.input(tag).feed(line)
    else:
        job.input(tag).feed_many(LINES)
    job.end()


def _check_letters(letters: list[ls.DeadLetter], spec_name: str, node: str) -> None:
    assert [d.value for d in letters] == BAD
    assert [d.error for d in letters] == [
        "ValueError: invalid literal for int() with base 10: 'oops'",
        "ValueError: invalid literal for int() with base 10: ''",
    ]
    for d in letters:
        assert d.spec == spec_name and d.node == node and d.tag == "default"
        assert "int(line)" in d.traceback and d.traceback.rstrip().endswith(d.error)
        assert d.attempts == 1


@pytest.mark.parametrize("per_value", [False, True], ids=["feed_many", "feed"])
@pytest.mark.parametrize("form", FORMS)
def test_a_spec_with_dead_letters_sends_bad_values_there_and_goes_on(env, form, per_value):
    spec = _specs("dl", "dead_letter")[form]
    job = spec.start()
    _feed(job, per_value)
    job.wait(timeout=10)
    assert job.status is ls.JobStatus.COMPLETED
    assert sorted(job.result()) == GOOD
    if "processor" not in form:
        assert job.result() == GOOD  # map forms keep the order
    assert job.errors is not None and job.output("errors") is job.errors
    _check_letters(job.errors.values(), spec.name, spec.name)
    assert job.errors.ended
    assert env.worker(spec.name).stats.dead_letters == 2
    assert any("dead letter" in e.message for e in job.logs)
    # lineage: each dead letter points at the input it came from
    sid = job.input().stream.stream_id
    assert [d.parents for d in job.errors.datapoints()] == [(f"{sid}:2",), (f"{sid}:4",)]


@pytest.mark.parametrize("form", FORMS)
def test_a_flow_with_dead_letters_overrides_its_specs_and_gathers_their_letters(env, form):
    spec = _specs("fl", "fail")[form]  # the specs themselves would fail

    @ls.job_spec(name=f"fl-half-{form}")
    def half(x: int) -> int:
        if x == 40:
            raise ZeroDivisionError("no forties")
        return x // 2

    flow = ls.Liveflow(f"fl-{form}", on_error="dead_letter")
    flow.connect(spec, half)
    run = flow.start()
    _feed(run, per_value=False)
    run.wait(timeout=10)
    assert run.status is ls.JobStatus.COMPLETED
    assert sorted(run.result()) == sorted(x // 2 for x in GOOD if x != 40)
    letters = run.errors.values()
    assert sorted(d.node for d in letters) == sorted([spec.name, spec.name, half.name])
    _check_letters([d for d in letters if d.node == spec.name], spec.name, spec.name)
    (forty,) = [d for d in letters if d.node == half.name]
    assert forty.value == 40 and forty.error == "ZeroDivisionError: no forties"
    assert run.errors.ended
    # the graph shows the dead letters as a node fed by every job
    nodes = {n.id: n for n in run.graph.nodes}
    assert nodes["errors"].spec == "dead letters"
    into = {e.source: e.stream_id for e in run.graph.edges if e.target == "errors"}
    assert set(into) == {spec.name, half.name}
    # without the flow's policy the same run fails at the first bad line
    flow.on_error = None
    failed = flow.start()
    _feed(failed, per_value=False)
    with pytest.raises(ls.JobFailed, match="oops"):
        failed.wait(timeout=10)
    assert failed.errors is None


def test_retries_come_first_and_a_value_that_recovers_is_no_dead_letter(env):
    tries: dict[str, int] = {}

    @ls.job_spec(retries=2, retry_backoff=0, on_error="dead_letter")
    def flaky(line: str) -> int:
        tries[line] = tries.get(line, 0) + 1
        if line == "bad" or (line == "late" and tries[line] < 3):
            raise RuntimeError(f"try {tries[line]}")
        return len(line)

    job = flaky.start()
    job.feed_many(["ok", "bad", "late"])
    job.end()
    assert job.result(timeout=10) == [2, 4]
    (letter,) = job.errors.values()
    assert (letter.value, letter.error, letter.attempts) == ("bad", "RuntimeError: try 3", 3)


def test_the_flow_graph_widget_counts_dead_letters_on_edges_into_the_errors_node(comms, env):
    spec = _specs("gw", "dead_letter")["map"]

    @ls.job_spec(name="gw-neg")
    def neg(x: int) -> int:
        return -x

    flow = ls.Liveflow("gw")
    flow.connect(spec, neg)
    assert "errors" in [n["id"] for n in lw.FlowGraph(flow).shape["nodes"]]  # before any run
    run = flow.start()
    graph = lw.FlowGraph(run)
    _feed(run, per_value=True)
    run.wait(timeout=10)
    edge = "gw-map/errors->errors/errors"
    assert any(e["id"] == edge for e in graph.shape["edges"])
    wait_until(lambda: graph.state()["edges"].get(edge, {}).get("count") == 2, timeout=5)
    assert "dead letters" in graph.snapshot_html()
    single_job = spec.start()
    single = lw.FlowGraph(single_job)
    assert any(p["name"] == "errors" for p in single.shape["ports"])
    single_job.feed_many(["x", "1"])
    single_job.end()
    single_job.wait(timeout=10)
    panel = lw.JobPanel(single_job)
    assert panel.state()["outputs"] == {"default": 1, "errors": 1}
    assert "out errors: 1" in panel.snapshot_html()


def test_dead_letters_are_stored_and_read_back_from_sqlite(make_env, tmp_path):
    db = f"sqlite:///{tmp_path / 'dl.db'}"
    env = make_env(vault=db)
    spec = _specs("sq", "dead_letter")["map"]
    job = spec.start(env=env)
    _feed(job, per_value=False)
    job.wait(timeout=10)
    flow = ls.Liveflow("sq-flow", on_error="dead_letter")
    flow.add(_specs("sq2", "fail")["processor"])
    run = flow.start(env=env)
    _feed(run, per_value=False)
    run.wait(timeout=10)
    env.close()
    again = make_env(vault=db)
    back = again.job(job.job_id)
    assert back.output().values() == GOOD
    _check_letters(back.errors.values(), spec.name, spec.name)
    assert back.output("errors") is back.errors
    run_back = again.job(run.job_id)
    _check_letters(run_back.errors.values(), "sq2-proc", "sq2-proc")
    # a process that does not know the spec reads them as plain data
    other = ls.LiveEnv(vault=db)
    try:
        letters = other.job(job.job_id).errors.values()
        assert [d.value for d in letters] == BAD
    finally:
        other.close()


def test_bad_policies_are_clear_errors(env):
    def parse(line: str) -> int:
        return int(line)

    with pytest.raises(ls.LivestackError, match=r"on_error must be one of 'fail', 'skip', 'dead_letter'"):
        ls.job_spec(on_error="ignore")(parse)
    with pytest.raises(ls.LivestackError, match=r"output tag 'errors'"):

        @ls.job_spec(outputs={"default": int, "errors": str}, on_error="dead_letter")
        def two(job: ls.LiveJob) -> None:
            pass

    with pytest.raises(ls.LivestackError, match=r"flow 'x': on_error must be None .* or 'dead_letter'"):
        ls.Liveflow("x", on_error="skip")


def test_a_long_run_with_a_few_bad_lines_completes(env):
    @ls.job_spec(on_error="dead_letter")
    def parse_line(line: str) -> int:
        return int(line)

    lines = [str(i) for i in range(50_000)]
    for i in (7, 20_000, 49_999):
        lines[i] = f"#{i}"
    job = parse_line.start()
    job.feed_many(lines)
    job.end()
    job.wait(timeout=30)
    assert len(job.output()) == 50_000 - 3
    assert [d.value for d in job.errors.values()] == ["#7", "#20000", "#49999"]


def test_dead_letters_of_a_worker_process_reach_the_client_through_redis(make_env, tmp_path):
    import dead_letter_specs
    from redis_support import Worker, running_redis

    from livestack_nb.vault.redis import RedisVault

    with running_redis(tmp_path) as url:
        env = make_env(vault=url, autostart=False)
        assert isinstance(env.vault, RedisVault)
        worker = Worker("dead_letter_specs:parse_int", url)
        try:
            job = dead_letter_specs.parse_int.start(env=env)
            job.feed_many(LINES)
            job.end()
            job.wait(timeout=60)
            assert job.status is ls.JobStatus.COMPLETED
            assert job.result() == [int(x) for x in LINES if x not in BAD]
            wait_until(lambda: job.errors is not None and len(job.errors) == 2, timeout=10)
            assert [d.value for d in job.errors.values()] == BAD
            assert all(d.spec == "parse_int" and "int(line)" in d.traceback for d in job.errors.values())
        finally:
            assert worker.stop() == 0
            env.close()


def test_the_readme_dead_letter_example_runs_as_written():
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Dead letters", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "[1, 2, 4]",
        "three | ValueError: invalid literal for int() with base 10: 'three'",
    ]


def test_a_nested_flow_takes_its_parents_policy_and_its_letters_reach_the_outer_run(env):
    @ls.job_spec(name="nest-parse")
    def parse(line: str) -> int:
        return int(line)

    @ls.job_spec(name="nest-neg")
    def neg(x: int) -> int:
        return -x

    inner = ls.Liveflow("nest-inner")
    inner.connect(parse, neg)
    outer = ls.Liveflow("nest-outer", on_error="dead_letter")
    outer.connect(inner, neg.labeled("again"))
    run = outer.start()
    run.feed_many(["1", "x", "3"])
    run.end()
    run.wait(timeout=10)
    assert run.result() == [1, 3]
    assert [(d.node, d.value) for d in run.errors.values()] == [("nest-parse", "x")]
    assert {e.source for e in run.graph.edges if e.target == "errors"} == {"nest-inner", "again"}
