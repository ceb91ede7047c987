"""Specs served by worker processes in the Redis tests (``livestack-nb worker redis_specs:NAME``)."""

from __future__ import annotations

import time

from pydantic import BaseModel

import livestack_nb as ls


class Pace(BaseModel):
    delay: float = 0.0


@ls.job_spec
def slow_square(x: int, options: Pace) -> int:
    """Squares, taking ``delay`` seconds per value (so a test can kill a worker mid-job)."""
    if options.delay:
        time.sleep(options.delay)
    return x * x


@ls.job_spec
def shout(text: str) -> str:
    return text.upper()


@ls.job_spec
def picky(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x


@ls.job_spec
def pid_of(x: int, options: Pace) -> int:
    """Which process ran it (after ``delay`` seconds)."""
    import os

    if options.delay:
        time.sleep(options.delay)
    return os.getpid()


@ls.job_spec(inputs={"default": int}, outputs={"default": int}, options=Pace)
def squares_one_by_one(job: ls.LiveJob) -> None:
    """Emits each square as it goes (a processor), ``delay`` seconds apart."""
    for x in job.input:
        time.sleep(job.options.delay)
        job.output.emit(x * x)


@ls.job_spec(worker_params={"region": "none"})
def region_of(x: int, worker_params: dict) -> str:
    """Which region the worker serving it was started for (``--param region=...``)."""
    return f"{x}@{worker_params['region']}"
