"""``spec.derive`` (a new spec from an old one) and per-worker parameters (Livestack's
``instanceParams``), distinct from job options, in every spec form and in a worker process."""

# ruff: noqa: F811 - the fixtures imported from redis_support are test parameters
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis_specs
from pydantic import BaseModel
from redis_support import Worker, redis_server, redis_url, workers  # noqa: F401

import livestack_nb as ls


class Oven(BaseModel):
    spice: int = 0
    size: int = 12


@ls.job_spec(name="oven")
def bake(pizza: str, options: Oven) -> str:
    return f"{options.size}in {pizza}, spice {options.spice}"


def test_derive_makes_a_new_spec_with_other_option_defaults(env):
    hot = bake.derive("hot-bake", options={"spice": 5})
    assert hot.name == "hot-bake" and hot.inputs == bake.inputs and hot.outputs == bake.outputs
    assert issubclass(hot.options_model, Oven)
    assert hot.run(["funghi"], timeout=10) == ["12in funghi, spice 5"]
    assert hot.run(["funghi"], {"spice": 1, "size": 9}, timeout=10) == ["9in funghi, spice 1"]
    assert bake.run(["funghi"], timeout=10) == ["12in funghi, spice 0"]  # the old one is unchanged
    assert env.spec("hot-bake") is hot
    flow = ls.Liveflow("two-ovens")  # both in one flow
    flow.connect(bake, hot)
    assert flow.run(["x"], timeout=10) == ["12in 12in x, spice 0, spice 5"]


def test_derive_refuses_bad_names_and_defaults_naming_the_field(env):
    with pytest.raises(ls.LivestackError, match="needs a new, non-empty name"):
        bake.derive("oven")
    with pytest.raises(
        ls.LivestackError, match=r"unknown option\(s\) \['heat'\]; its options are \['size', 'spice'\]"
    ):
        bake.derive("b2", options={"heat": 1})
    with pytest.raises(ls.DataValidationError, match=r"spec 'b3'.*field 'spice'"):
        bake.derive("b3", options={"spice": "very"})
    with pytest.raises(ls.LivestackError, match="cannot be derived"):
        ls.Liveflow("f").add(bake).derive("g")


def test_a_spec_without_a_worker_derives_an_interface(env):
    iface = ls.JobSpec("remote-bake", input=str, output=str, options=Oven)
    derived = iface.derive("remote-hot", options={"spice": 2})
    assert derived.worker_def is None
    assert derived.validate_options(None) == derived.options_model(spice=2)


class Site(BaseModel):
    region: str = "eu"


def test_worker_params_reach_every_form_and_are_not_job_options(env):
    @ls.job_spec(worker_params={"model": "small"})
    def label(x: int, options: Oven, worker_params: dict) -> str:
        return f"{x}:{worker_params['model']}:{options.spice}"

    @ls.job_spec(worker_params=Site(region="us"))
    def spread(x: int, worker_params: Site) -> Iterator[str]:
        for i in range(x):
            yield f"{i}@{worker_params.region}"

    @ls.job_spec(inputs={"default": int}, outputs={"default": str}, worker_params={"gpu": 1})
    def proc(job: ls.LiveJob) -> None:
        for x in job.input:
            job.output.emit(f"{x} on gpu {job.worker_params['gpu']}")

    @ls.job_spec(inputs={"default": int}, outputs={"default": str}, worker_params={"gpu": 2})
    async def aproc(job: ls.LiveJob) -> None:
        async for x in job.input:
            await asyncio.sleep(0)
            await job.output.emit(f"{x} on gpu {job.worker_params['gpu']}")

    assert label.run([1], {"spice": 3}, timeout=10) == ["1:small:3"]
    assert spread.run([2], timeout=10) == ["0@us", "1@us"]
    assert proc.run([7], timeout=10) == ["7 on gpu 1"]
    assert aproc.run([7], timeout=10) == ["7 on gpu 2"]
    # per job: the options vary, the worker's params do not
    assert label.run([1], {"spice": 4}, timeout=10) == ["1:small:4"]
    # a worker definition with other params (another machine, another GPU)
    proc.define_worker(proc.worker_def.processor, worker_params={"gpu": 3})  # type: ignore[union-attr]
    assert proc.run([7], timeout=10) == ["7 on gpu 3"]
    with pytest.raises(ls.LivestackError, match="worker_params must be a dict or a pydantic model, not int"):
        proc.define_worker(proc.worker_def.processor, worker_params=3)  # type: ignore[union-attr, arg-type]


def test_a_worker_process_takes_its_params_from_the_command_line(make_env, redis_url, workers):
    env = make_env(vault=redis_url, autostart=False)
    workers.append(Worker("redis_specs:region_of", redis_url, "--param", "region=north"))
    assert redis_specs.region_of.run([1, 2], env=env, timeout=60) == ["1@north", "2@north"]
