"""What a durable vault writes: ephemeral tags and a flow's ``store=`` choice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import livestack_nb as ls
from livestack_nb.testing import wait_until

LINES = [f"{i},name-{i % 97},{i / 7:.3f}" for i in range(20_000)]


def _size(path: Path) -> int:
    return sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}"))


def _specs(prefix: str, ephemeral: bool | list[str] = ()) -> tuple[ls.JobSpec, ls.JobSpec]:
    @ls.job_spec(name=f"{prefix}-parse", ephemeral=ephemeral)
    def parse(line: str) -> dict[str, float]:
        a, _, c = line.split(",")
        return {"a": int(a), "c": float(c)}

    @ls.job_spec(name=f"{prefix}-pick")
    def pick(d: dict[str, float]) -> int | None:
        return int(d["a"]) if d["a"] % 100 == 0 else None

    return parse, pick


def _run(flow: ls.Liveflow, env: ls.LiveEnv) -> ls.JobHandle:
    run = flow.start(env=env)
    seen: list[int] = []
    run.output().subscribe(seen.append)
    run.feed_many(LINES)
    run.end()
    run.wait(timeout=30)
    assert seen == list(range(0, 20_000, 100))  # live readers see everything, whatever is stored
    return run


def _stored(env: ls.LiveEnv, stream: ls.DataStream) -> int:
    return env.vault.count(stream.stream_id)


@pytest.mark.parametrize(
    ("store", "inputs", "middle", "outputs"),
    [
        ("all", True, True, True),
        ("exposed", True, False, True),
        ("outputs", False, False, True),
        ("none", False, False, False),
    ],
)
def test_a_flows_store_choice_decides_which_streams_are_written(
    make_env, tmp_path, store, inputs, middle, outputs
):
    db = tmp_path / "flow.db"
    env = make_env(vault=f"sqlite:///{db}")
    parse, pick = _specs(f"st-{store}")
    flow = ls.Liveflow(f"st-{store}", store=store)
    flow.connect(parse, pick)
    run = _run(flow, env)
    middle_stream = env.job(run.graph.node(parse.name).job_id).output()
    assert len(middle_stream) == 20_000  # in memory all the same (history bound: 10,000)
    assert _stored(env, run.input().stream) == (20_000 if inputs else 0)
    assert _stored(env, middle_stream) == (20_000 if middle else 0)
    assert _stored(env, run.output()) == (200 if outputs else 0)
    env.close()
    again = make_env(vault=f"sqlite:///{db}")
    back = again.job(run.job_id)
    assert back.status is ls.JobStatus.COMPLETED  # statuses and jobs are recorded whatever is stored
    assert back.output().values() == (list(range(0, 20_000, 100)) if outputs else [])
    assert {r.spec for r in again.jobs()} >= {parse.name, pick.name, flow.name}


def test_storing_exposed_outputs_only_keeps_the_file_small(make_env, tmp_path):
    sizes = {}
    for store in ("all", "outputs"):
        db = tmp_path / f"{store}.db"
        env = make_env(vault=f"sqlite:///{db}")
        parse, pick = _specs(f"size-{store}")
        flow = ls.Liveflow(f"size-{store}", store=store)
        flow.connect(parse, pick)
        _run(flow, env)
        env.close()
        sizes[store] = _size(db)
    assert sizes["outputs"] * 10 < sizes["all"], sizes


def test_an_ephemeral_tag_is_live_and_in_memory_but_never_written(make_env, tmp_path):
    db = tmp_path / "eph.db"
    env = make_env(vault=f"sqlite:///{db}")

    @ls.job_spec(outputs={"raw": str, "default": int}, ephemeral=["raw", "out:default"])
    def split(job: ls.LiveJob) -> None:
        for line in job.input:
            job.output("raw").emit(line)
            job.output.emit(len(line))

    @ls.job_spec(ephemeral=["out:default"])
    def shout(line: str) -> str:
        return line.upper()

    job = split.start(env=env)
    raw: list[str] = []
    job.output("raw").subscribe(raw.append)
    job.feed_many(["ab", "cde"])
    job.end()
    job.wait(timeout=10)
    assert raw == ["ab", "cde"] and job.output("raw").values() == ["ab", "cde"]
    assert _stored(env, job.output("raw")) == 0 and _stored(env, job.output()) == 0
    assert _stored(env, job.input().stream) == 2  # the input tag was not named
    other = shout.start(env=env)
    other.feed("hi")
    other.end()
    assert other.result(timeout=10) == ["HI"]
    assert _stored(env, other.input().stream) == 1 and _stored(env, other.output()) == 0
    env.close()
    again = make_env(vault=f"sqlite:///{db}")
    back = again.job(job.job_id)
    assert back.status is ls.JobStatus.COMPLETED
    assert back.input().stream.values() == ["ab", "cde"]
    assert back.output("raw").values() == [] and back.output().values() == []


def test_an_ephemeral_spec_in_a_flow_writes_nothing_of_its_own(make_env, tmp_path):
    env = make_env(vault=f"sqlite:///{tmp_path / 'flow-eph.db'}")
    parse, pick = _specs("eph-flow", ephemeral=True)
    flow = ls.Liveflow("eph-flow")
    flow.connect(parse, pick)
    run = _run(flow, env)
    middle = env.job(run.graph.node(parse.name).job_id).output()
    assert _stored(env, middle) == 0  # parse's output
    assert _stored(env, run.input().stream) == 0  # parse's input, exposed by default
    assert _stored(env, run.output()) == 200  # pick's output


def test_bad_store_choices_are_clear_errors():
    with pytest.raises(ls.LivestackError, match=r"store must be one of 'all', 'exposed', 'outputs', 'none'"):
        ls.Liveflow("bad-store", store="intermediate")
    with pytest.raises(ls.LivestackError, match=r"ephemeral names unknown tag\(s\) \['in:raw', 'nope'\]"):
        ls.JobSpec("eph-bad", input=int, outputs={"raw": int}, ephemeral=["nope", "in:raw"])
    both = ls.JobSpec("eph-both", input=int, output=int, ephemeral=["default"])
    assert both.ephemeral == {"in:default", "out:default"}
    with pytest.raises(ls.LivestackError, match=r"ephemeral must be True, False or a list of tag names"):
        ls.JobSpec("eph-bad2", input=int, output=int, ephemeral="default")


def test_the_memory_vault_is_unchanged_by_store_choices(make_env):
    env = make_env()
    parse, pick = _specs("mem", ephemeral=True)
    flow = ls.Liveflow("mem", store="none")
    flow.connect(parse, pick)
    run = _run(flow, env)
    wait_until(lambda: run.output().values() == list(range(0, 20_000, 100)), timeout=5)


def test_the_readme_example_of_what_is_stored_runs_as_written():
    import re
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## What is stored", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    code += "\nassert parse_flow.store == 'outputs' and tokens.ephemeral == {'out:default'}\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
