"""The pizzeria from the design's examples, shared by several test files."""

from __future__ import annotations

from pydantic import BaseModel

import livestack_nb as ls


class Order(BaseModel):
    pizza: str
    size: int = 12


class Oven(BaseModel):  # job options = the spec's parameters
    spice: int = 0


@ls.job_spec  # name "bake"; input tag "default": Order; output tag "default": str
def bake(order: Order, options: Oven) -> str:
    return f"{order.size}in {order.pizza}, spice {options.spice}"


class Dough(BaseModel):
    flour: str = "00"


class Pizza(BaseModel):
    dough: str
    sauce: str


@ls.job_spec(inputs={"dough": Dough, "sauce": str}, outputs={"pizza": Pizza, "log": str})
async def assemble(job: ls.LiveJob):
    doughs: list[Dough] = []
    sauces: list[str] = []
    async for tag, item in job.input.merge("dough", "sauce"):
        job.logger.info("got %s", tag)
        (doughs if tag == "dough" else sauces).append(item)
        while doughs and sauces:
            dough, sauce = doughs.pop(0), sauces.pop(0)
            await job.output("pizza").emit(Pizza(dough=dough.flour, sauce=sauce))
            await job.output("log").emit(f"{dough.flour}+{sauce}")


@ls.job_spec
def knead(order: Order) -> Order:
    return order


@ls.job_spec
def box(pizza: str) -> str:
    return f"box({pizza})"


@ls.job_spec
def taste(pizza: str) -> str:
    return f"tasted {pizza}"


def pizzeria_flow() -> ls.Liveflow:
    """The design's flow, imperative form."""
    flow = ls.Liveflow("pizzeria")
    flow.connect(knead, bake)  # default tags; or bake.input("dough")
    flow.connect(bake.output(), box, transform=lambda s: s.upper())
    flow.connect(bake, taste)
    flow.connect(bake, taste.labeled("second-taster"))  # the same spec twice: labels
    flow.expose(knead.input(), "orders")
    flow.expose(box.output(), "boxes")
    return flow
