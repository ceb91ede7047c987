"""The sizes and delays that bound memory and batching, in one place.

Streams, inboxes, the operator and the worker all cut values into chunks of
the same bound and wait for room against the same backlog; keeping the
numbers here lets the lowest layers use them without importing the modules
that own the behaviour.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["DEFAULT_HISTORY", "FLUSH_AFTER", "MAX_CHUNK", "is_seconds"]

DEFAULT_HISTORY = 10_000

MAX_CHUNK = 4096
"""Most values in a chunk livestack-nb makes (``feed_many``'s slices, a drain
merging what queued up, a flat-map's gathered yields).

Why a bound: a fused flow walks a chunk once per spec, and the next spec reads
the values the previous one made. A few thousand of them stay in a core's
cache in between; a whole backlog (65,536 values, 2 MB of ints) does not, and
is then read from memory in the order the allocator scattered it, an order
that gets worse the longer a process runs: the cost per event grew by half
over a 10 M-event run (``bench/scale.py``). Larger chunks save nothing
measurable: what a chunk costs is paid once per 4,096 values.
"""

FLUSH_AFTER = 0.005
"""Seconds a value appended one at a time may wait in a stream's buffer before
the env's :class:`Flusher` pushes it (well under what a reader notices)."""


def is_seconds(x: Any) -> bool:
    """Whether ``x`` is a finite number of seconds (not a bool, NaN or infinity): a delay
    of NaN compares false to every bound and one of infinity never ends."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
