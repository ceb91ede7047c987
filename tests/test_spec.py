"""JobSpec: the forms of @job_spec, its tags and types, options, and run()."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from pizzeria import Dough, Order, Oven, Pizza, assemble, bake
from pydantic import BaseModel

import livestack_nb as ls


def test_map_spec_name_tags_and_types_come_from_the_function():
    assert isinstance(bake, ls.JobSpec)
    assert bake.name == "bake"
    assert bake.inputs == {"default": Order}
    assert bake.outputs == {"default": str}
    assert bake.options_model is Oven


def test_map_spec_runs_with_validated_input_and_options(env):
    out = bake.run([Order(pizza="margherita"), {"pizza": "hawaii", "size": 16}], options={"spice": 2})
    assert out == ["12in margherita, spice 2", "16in hawaii, spice 2"]


def test_options_default_and_model_instance(env):
    assert bake.run([{"pizza": "x"}]) == ["12in x, spice 0"]
    assert bake.run([{"pizza": "x"}], options=Oven(spice=5)) == ["12in x, spice 5"]


def test_decorator_arguments_override_name(env):
    @ls.job_spec(name="shout")
    def loud(text: str) -> str:
        return text.upper()

    assert loud.name == "shout"
    assert loud.run(["a", "b"]) == ["A", "B"]


def test_map_returning_none_filters(env):
    @ls.job_spec
    def evens(n: int) -> int | None:
        return n if n % 2 == 0 else None

    assert evens.run(range(7)) == [0, 2, 4, 6]


def test_generator_is_a_flat_map(env):
    @ls.job_spec
    def repeat(n: int) -> Iterator[int]:
        yield from [n] * n

    assert repeat.outputs == {"default": int}
    assert repeat.run([1, 0, 3]) == [1, 3, 3, 3]


def test_async_generator_is_a_flat_map(env):
    @ls.job_spec
    async def split(text: str) -> AsyncIterator[str]:
        for word in text.split():
            yield word

    assert split.run(["a b", "c"]) == ["a", "b", "c"]


def test_sync_processor_with_state_across_datapoints(env):
    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    def running_total(job: ls.LiveJob):
        total = 0
        for n in job.input:
            total += n
            job.output.emit(total)

    assert running_total.run([1, 2, 3, 4]) == [1, 3, 6, 10]


def test_processor_recognised_by_parameter_name_job(env):
    @ls.job_spec(inputs={"default": int}, outputs={"default": int})
    def doubler(job):
        for n in job.input:
            job.output("default").emit(n * 2)

    assert doubler.run([1, 2]) == [2, 4]


def test_async_processor_with_several_tags_assembles_pizzas(env):
    assert assemble.name == "assemble"
    assert assemble.inputs == {"dough": Dough, "sauce": str}
    assert assemble.outputs == {"pizza": Pizza, "log": str}

    job = assemble.start()
    job.input("dough").feed({"flour": "rye"})
    job.input("sauce").feed("tomato")
    job.input("dough").feed(Dough())
    job.input("sauce").feed("pesto")
    job.end()
    job.wait(timeout=10)
    assert job.output("pizza").values() == [
        Pizza(dough="rye", sauce="tomato"),
        Pizza(dough="00", sauce="pesto"),
    ]
    assert job.output("log").values() == ["rye+tomato", "00+pesto"]


def test_spec_without_processor_is_an_interface_with_ports():
    spec = ls.JobSpec("bake", input=Order, output=str, options=Oven)
    assert spec.name == "bake"
    assert spec.inputs == {"default": Order}
    assert spec.outputs == {"default": str}
    assert spec.options_model is Oven


def test_redefining_a_spec_name_replaces_it(env):
    @ls.job_spec(name="cell")
    def first(n: int) -> int:
        return n

    assert first.run([1], timeout=10) == [1]

    @ls.job_spec(name="cell")  # the same cell, run again after an edit
    def second(n: int) -> int:
        return -n

    assert env.spec("cell") is second
    assert second.run([1], timeout=10) == [-1]


def test_types_local_to_the_defining_function_are_understood(env):
    # This module uses postponed annotations, as many test files and libraries do.
    class Topping(BaseModel):
        name: str

    @ls.job_spec
    def sprinkle(topping: Topping) -> str:
        return topping.name

    assert sprinkle.inputs == {"default": Topping}
    assert sprinkle.run([{"name": "basil"}], timeout=10) == ["basil"]


def test_an_annotation_naming_no_visible_type_is_a_clear_error(env):
    def define():
        @ls.job_spec
        def broken(x: NoSuchType) -> str:  # noqa: F821
            return str(x)

    with pytest.raises(ls.LivestackError, match=r"'broken'.*'NoSuchType'.*input="):
        define()
