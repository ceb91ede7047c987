"""Strict tags: pydantic's lax mode turns ``"yes"`` into ``True`` for a ``bool`` tag;
pydantic's own strict types (``StrictBool``, ``Annotated[X, Strict()]``, a model with
``ConfigDict(strict=True)``) used as tag types refuse it, naming the spec, tag and value."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Strict, StrictBool, StrictInt

import livestack_nb as ls


def test_a_lax_bool_tag_takes_yes_as_true(env):
    @ls.job_spec
    def basil(b: bool) -> bool:
        return b

    assert basil.run(["yes", 1, "off"]) == [True, True, False]


def test_a_strict_bool_tag_refuses_yes_per_value_and_in_a_batch(env):
    @ls.job_spec(inputs={"basil": StrictBool, "dough": str}, outputs={"default": str})
    def top(job: ls.LiveJob):
        for tag, v in job.input.merge("basil", "dough"):
            job.output.emit(f"{tag}={v!r}")

    assert repr(top) == "<JobSpec 'top' in(basil: strict bool, dough: str) out(default: str)>"
    job = top.start()
    with pytest.raises(ls.DataValidationError) as e:
        job.input("basil").feed("yes")
    assert (e.value.spec, e.value.tag) == ("top", "basil")
    assert str(e.value) == (
        "spec 'top', input tag 'basil' expects strict bool: Input should be a valid boolean; got 'yes'"
    )
    with pytest.raises(ls.DataValidationError, match=r"tag 'basil' expects strict bool.*got 1$"):
        job.input("basil").feed(1)
    with pytest.raises(ls.DataValidationError, match=r"tag 'basil' expects strict bool.*got 'no'$"):
        job.input("basil").feed_many([True, "no", False])
    assert len(job.input("basil").stream) == 0  # the refused batch fed nothing
    job.input("basil").feed_many([True, False])
    job.input("basil").feed(True)
    job.end()
    job.wait(timeout=10)
    assert job.result() == ["basil=True", "basil=False", "basil=True"]


def test_a_strict_annotation_on_a_map_keeps_its_strictness(env):
    @ls.job_spec
    def double(n: StrictInt) -> Annotated[int, Strict()]:
        return n * 2

    assert double.run([1, 2]) == [2, 4]
    job = double.start()
    refused = r"spec 'double', input tag 'default' expects strict int.*got '3'"
    with pytest.raises(ls.DataValidationError, match=refused):
        job.feed("3")
    with pytest.raises(ls.DataValidationError, match=r"expects strict int.*got True"):
        job.feed_many([1, True])
    job.cancel()

    @ls.job_spec
    def halve(n: int) -> StrictInt:
        return n / 2  # type: ignore[return-value]  # a float where a strict int is promised

    with pytest.raises(ls.JobFailed, match=r"output tag 'default' expects strict int.*got 1\.5"):
        halve.run([3])


def test_a_strict_model_refuses_a_string_for_its_int_field(env):
    class Order(BaseModel):
        model_config = ConfigDict(strict=True)
        pizza: str
        size: int = 12

    @ls.job_spec
    def bake(o: Order) -> str:
        return f"{o.size}in {o.pizza}"

    assert bake.run([{"pizza": "funghi", "size": 10}]) == ["10in funghi"]
    job = bake.start()
    with pytest.raises(ls.DataValidationError, match=r"field 'size': Input should be a valid integer.*'12'"):
        job.feed({"pizza": "funghi", "size": "12"})
    job.cancel()


def test_a_flow_wires_a_bool_output_into_a_strict_bool_input_and_refuses_a_str(env):
    @ls.job_spec
    def positive(n: int) -> bool:
        return n > 0

    @ls.job_spec
    def say(b: StrictBool) -> str:
        return "yes" if b else "no"

    @ls.job_spec
    def word(n: int) -> str:
        return str(n)

    flow = ls.Liveflow("strict_wiring")
    flow.connect(positive, say)
    run = flow.start()
    run.feed_many([1, -1, 2])
    run.end()
    run.wait(timeout=10)
    assert run.output().values() == ["yes", "no", "yes"]

    bad = ls.Liveflow("strict_wrong")
    with pytest.raises(ls.WiringError, match=r"str.*strict bool"):
        bad.connect(word, say)


def test_a_strict_tag_survives_a_sqlite_vault(make_env, tmp_path):
    env = make_env(vault=f"sqlite:///{tmp_path / 'k.db'}")
    with env:

        @ls.job_spec
        def keep(b: StrictBool) -> StrictBool:
            return b

        job = keep.start()
        job.feed_many([True, False])
        with pytest.raises(ls.DataValidationError, match="expects strict bool"):
            job.feed("true")
        job.end()
        job.wait(timeout=10)
        env.flush()
        assert job.result() == [True, False]


def test_a_form_for_a_strict_tag_shows_the_plain_control_and_feeds_a_true_bool(env, comms):
    spec = ls.JobSpec("strict_form", input=StrictBool, output=StrictBool)
    spec.define_worker(lambda v: v)
    job = spec.start()
    form = ls.widgets.JobInput(job)
    assert {p: type(f.control).__name__ for p, f in form.form.fields.items()} == {"value": "Checkbox"}
    assert form.submit(value=True)
    form.end_button.click()
    job.wait(timeout=10)
    assert job.result() == [True]


def test_a_flat_map_and_an_async_map_keep_their_strict_tags(env):
    from collections.abc import Iterator

    @ls.job_spec
    def spread(n: StrictInt) -> Iterator[StrictInt]:
        yield from range(n)
        if n == 3:
            yield "three"  # type: ignore[misc]  # not an int: refused on the way out

    @ls.job_spec
    async def yes_no(b: StrictBool) -> str:
        return "yes" if b else "no"

    assert spread.run([2]) == [0, 1]
    with pytest.raises(ls.JobFailed, match=r"output tag 'default' expects strict int.*got 'three'"):
        spread.run([3])
    assert yes_no.run([True, False]) == ["yes", "no"]
    job = yes_no.start()
    with pytest.raises(ls.DataValidationError, match=r"spec 'yes_no', input tag 'default' expects strict"):
        job.feed_many([True, 0])
    job.cancel()


def test_a_sqlite_vault_records_a_strict_tags_type_by_its_name(make_env, tmp_path):
    import sqlite3

    db = tmp_path / "names.db"
    env = make_env(vault=f"sqlite:///{db}")
    with env:

        @ls.job_spec
        def keep_strict(b: StrictBool) -> StrictBool:
            return b

        job = keep_strict.start()
        job.feed(True)
        job.end()
        job.wait(timeout=10)
        env.flush()
    with sqlite3.connect(db) as con:
        names = {row[0] for row in con.execute("SELECT type FROM streams")}
    assert names == {"strict bool"}
