"""The wiring type rule: an output feeds an input of the same type or a supertype; models
only by class (same or subclass), never by matching field names; refused when written, with
both ends and their types named."""

# ruff: noqa: UP007, UP045 - typing.Optional and Union are what is tested, with X | Y
from __future__ import annotations

from typing import Any, Optional, Union

import pandas as pd
import pytest
from pydantic import BaseModel

import livestack_nb as ls


class Dough(BaseModel):
    pizza: str
    size: int = 12


class Order(BaseModel):  # the same fields as Dough: still another type
    pizza: str
    size: int = 12


class ThickDough(Dough):
    crust: str = "thick"


def _spec(name: str, inp: Any, out: Any) -> ls.JobSpec:
    spec = ls.JobSpec(name, input=inp, output=out)
    spec.define_worker(lambda x: x)
    return spec


def test_a_model_does_not_feed_another_model_with_the_same_fields(env):
    knead = _spec("knead", dict, Dough)
    bake = _spec("bake-order", Order, Order)
    flow = ls.Liveflow("wrong-model")
    with pytest.raises(ls.WiringError) as e:
        flow.connect(knead, bake)
    msg = str(e.value)
    assert "cannot connect knead.output('default') (Dough) to bake-order.input('default') (Order)" in msg
    assert "pass transform= to convert them" in msg
    # converting explicitly is allowed, and runs
    flow.connect(knead, bake, transform=lambda d: Order(**d.model_dump()))
    flow.expose(knead.input(), "in")
    flow.expose(bake.output(), "out")
    assert flow.run([{"pizza": "funghi"}], timeout=10) == [Order(pizza="funghi")]


def test_a_flows_exposed_model_output_is_checked_like_a_specs(env):
    knead = _spec("knead2", dict, Dough)
    inner = ls.Liveflow("dough-maker").add(knead)
    inner.expose(knead.input(), "orders")
    inner.expose(knead.output(), "ready")
    outer = ls.Liveflow("kitchen")
    with pytest.raises(ls.WiringError, match=r"dough-maker.output\('ready'\) \(Dough\) to .*\(Order\)"):
        outer.connect(inner.output("ready"), _spec("bake2", Order, str))


def test_a_subclass_feeds_its_base_and_runs(env):
    flow = ls.Liveflow("subclass")
    flow.connect(_spec("thick", dict, ThickDough), _spec("oven", Dough, Dough))
    assert flow.run([{"pizza": "x"}], timeout=10) == [ThickDough(pizza="x")]
    with pytest.raises(ls.WiringError, match=r"\(Dough\) to .*\(ThickDough\)"):
        ls.Liveflow("base-into-sub").connect(_spec("d", dict, Dough), _spec("t", ThickDough, str))


@pytest.mark.parametrize(
    ("out", "inp", "fits"),
    [
        (dict, Order, True),  # untyped dicts: checked per value
        (dict[str, Any], Order, True),
        (Optional[Dough], Dough, False),  # None would not fit
        (Dough, Optional[Dough], True),
        (Union[ThickDough, Dough], Dough, True),
        (Union[Dough, Order], Dough, False),
        (Dough, Union[Order, Dough], True),
        (list[Dough], list[Order], False),
        (list[ThickDough], list[Dough], True),
        (list, list[int], True),
        (dict[str, int], dict[str, float], True),
        (Dough | None, Dough | None, True),
        (ThickDough | Dough, Dough, True),
        (tuple[int, str], list[int], False),
        (pd.DataFrame, pd.DataFrame, True),
        (pd.DataFrame, Order, False),
        (dict, pd.DataFrame, False),
        (int, float, True),
        (str, int, False),
    ],
    ids=str,
)
def test_the_wiring_rule_on_unions_optionals_containers_and_dataframes(env, out, inp, fits):
    src, dst = _spec("src", Any, out), _spec("dst", inp, Any)
    flow = ls.Liveflow("rule")
    if fits:
        flow.connect(src, dst)
    else:
        with pytest.raises(ls.WiringError, match=r"cannot connect src.output.* to dst.input"):
            flow.connect(src, dst)


def test_a_dataframe_flows_between_specs_typed_as_dataframes(env):
    @ls.job_spec
    def table(n: int) -> pd.DataFrame:
        return pd.DataFrame({"x": range(n)})

    @ls.job_spec
    def total(df: pd.DataFrame) -> int:
        return int(df["x"].sum())

    flow = ls.Liveflow("frames")
    flow.connect(table, total)
    assert flow.run([3, 4], timeout=10) == [3, 6]
