"""The specs the fault suite runs in worker processes: one of every form.

Each takes ``int`` values and a ``delay`` (seconds per value, so a fault can
land mid-job), and computes something the checker can redo in plain Python
(:data:`EXPECTED`). The processors keep state across values (a running sum,
a count), so a value processed twice or out of order changes every output
after it, not only one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

from pydantic import BaseModel

import livestack_nb as ls


class Pace(BaseModel):
    delay: float = 0.0


@ls.job_spec
def double_some(x: int, options: Pace) -> int | None:
    """Map, sync; filters too (``None`` emits nothing)."""
    if options.delay:
        time.sleep(options.delay)
    return None if x % 5 == 4 else 2 * x


@ls.job_spec
async def triple(x: int, options: Pace) -> int:
    """Map, async."""
    if options.delay:
        await asyncio.sleep(options.delay)
    return 3 * x


@ls.job_spec
def spread(x: int, options: Pace) -> Iterator[int]:
    """Flat-map, sync: two outputs per value."""
    yield x
    if options.delay:
        time.sleep(options.delay)
    yield x + 1000


@ls.job_spec
async def mirror(x: int, options: Pace) -> AsyncIterator[int]:
    """Flat-map, async: two outputs per value."""
    yield x
    if options.delay:
        await asyncio.sleep(options.delay)
    yield -x


@ls.job_spec(inputs={"default": int}, outputs={"default": int, "odd": int}, options=Pace)
def running_sum(job: ls.LiveJob) -> None:
    """Processor, sync, two output tags: the running sum, and each odd value."""
    total = 0
    for x in job.input:
        if job.options.delay:
            time.sleep(job.options.delay)
        total += x
        job.output.emit(total)
        if x % 2:
            job.output("odd").emit(x)


@ls.job_spec(inputs={"default": int}, outputs={"default": int}, options=Pace)
async def numbered(job: ls.LiveJob) -> None:
    """Processor, async: each value with its position."""
    n = 0
    async for x in job.input:
        if job.options.delay:
            await asyncio.sleep(job.options.delay)
        await job.output.emit(n * 100_000 + x)
        n += 1


def _running(xs: list[int]) -> list[int]:
    out, total = [], 0
    for x in xs:
        total += x
        out.append(total)
    return out


EXPECTED: dict[str, Callable[[list[int]], dict[str, list[int]]]] = {
    "double_some": lambda xs: {"default": [2 * x for x in xs if x % 5 != 4]},
    "triple": lambda xs: {"default": [3 * x for x in xs]},
    "spread": lambda xs: {"default": [y for x in xs for y in (x, x + 1000)]},
    "mirror": lambda xs: {"default": [y for x in xs for y in (x, -x)]},
    "running_sum": lambda xs: {"default": _running(xs), "odd": [x for x in xs if x % 2]},
    "numbered": lambda xs: {"default": [i * 100_000 + x for i, x in enumerate(xs)]},
}
"""Per spec: the outputs of each tag, in order, for the input ``xs`` (plain Python)."""

SPECS: dict[str, ls.JobSpec] = {
    "double_some": double_some,
    "triple": triple,
    "spread": spread,
    "mirror": mirror,
    "running_sum": running_sum,
    "numbered": numbered,
}
