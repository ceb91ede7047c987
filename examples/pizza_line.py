"""The recipe of notebook 08, in a module of its own so that other processes can import it.

A worker process started with ``livestack-nb worker pizza_line:bake`` (from
this directory) imports this module and serves the spec it names; the
notebook imports the same module, so the notebook that orders and the
processes that bake agree on the recipe and its types.
"""

from __future__ import annotations

import os
import time

from pydantic import BaseModel

import livestack_nb as ls

#: Which oven (worker process) this is: the notebook starts each worker with
#: its own ``OVEN``, so every pizza says where it was baked.
OVEN = os.environ.get("OVEN", "-")


class Order(BaseModel):
    pizza: str
    table: int


class Pace(BaseModel):
    seconds: float = 0.0  # how long each pizza stays in the oven


class Baked(BaseModel):
    pizza: str
    table: int
    oven: str


@ls.job_spec(inputs={"default": Order}, outputs={"default": Baked}, options=Pace)
def bake(job: ls.LiveJob) -> None:
    """Bakes an order's pizzas one at a time, each out of the oven as soon as it is done."""
    for order in job.input:
        time.sleep(job.options.seconds)
        job.output.emit(Baked(pizza=order.pizza, table=order.table, oven=OVEN))
