"""Specs the Redis benchmark's worker processes serve (``livestack-nb worker redis_bench_specs:NAME``)."""

from __future__ import annotations

import livestack_nb as ls


@ls.job_spec
def inc(x: int) -> int:
    """The cheapest map: what is measured is the trip through Redis and the worker."""
    return x + 1


@ls.job_spec
def burn(n: int) -> int:
    """CPU-bound: a pure-Python loop of ``n`` steps (holds the GIL throughout)."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total
