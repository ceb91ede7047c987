"""The units a stream carries: chunks of values, datapoints, statistics, activity.

A chunk is a list of values with one timestamp, a first sequence number and
its lineage; a :class:`Datapoint` is one value of it with its id, time and
parents, made only when asked for. :class:`Activity` counts the work in
flight in a flow with a cycle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._current import current_env
from .storage import StorageRef

if TYPE_CHECKING:
    from .env import LiveEnv
    from .lineage import Stop

__all__ = ["Activity", "Chunk", "Datapoint", "StreamStats"]


@dataclass(frozen=True, slots=True)
class Datapoint:
    """One value in a stream, with where it came from.

    Attributes
    ----------
    id:
        ``"<stream_id>:<seq>"``, unique in the env.
    seq:
        Position in the stream, from 0.
    timestamp:
        Seconds since the epoch when it was emitted.
    parents:
        Ids of the datapoints it was derived from (lineage); empty for fed input.
    """

    id: str
    stream_id: str
    seq: int
    timestamp: float
    value: Any
    parents: tuple[str, ...] = ()

    def lineage(self, env: LiveEnv | None = None) -> list[Stop]:
        """Its journey: this datapoint, then each parent, back to the value fed from
        outside, each a :class:`~livestack_nb.lineage.Stop` (stream, job and node, value).

        Resolved in ``env`` (default: the current env), from memory or a durable vault.
        """
        return (env or current_env()).lineage(self)


@dataclass(frozen=True, slots=True)
class StreamStats:
    """Counters of a stream: total ``count``, recent ``rate`` (events/s), ``last_time``."""

    count: int
    rate: float
    last_time: float | None


class _Offloaded:
    """History slot for a value that lives in the storage provider."""

    __slots__ = ("ref",)

    def __init__(self, ref: StorageRef) -> None:
        self.ref = ref


class Chunk:
    """A batch of values pushed together; see the module docstring."""

    __slots__ = ("offloaded", "parent_seqs", "parent_stream", "seq0", "stored", "stream_id", "time", "values")

    def __init__(
        self,
        stream_id: str,
        seq0: int,
        time_: float,
        values: list[Any],
        parent_stream: str | None,
        parent_seqs: Sequence[int] | None,
        stored: list[Any] | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.seq0 = seq0
        self.time = time_
        self.values = values
        self.parent_stream = parent_stream
        self.parent_seqs = parent_seqs
        self.stored = values if stored is None else stored
        self.offloaded = stored is not None

    def tail(self, skip: int) -> Chunk:
        """The same chunk without its first ``skip`` values (for trimming)."""
        c = Chunk(
            self.stream_id,
            self.seq0 + skip,
            self.time,
            self.stored[skip:],
            self.parent_stream,
            None if self.parent_seqs is None else self.parent_seqs[skip:],
        )
        c.offloaded = self.offloaded
        return c

    def parents_of(self, i: int) -> tuple[str, ...]:
        if self.parent_stream is None or self.parent_seqs is None:
            return ()
        return (f"{self.parent_stream}:{self.parent_seqs[i]}",)


class Activity:
    """Counts work in flight inside a flow with a cycle, to see when it is quiet.

    Every push into a flow stream, every value queued for a job, every end on its
    way and every job not yet reading its input adds; each finishes only after
    what it caused downstream was added, so the count is zero only when nothing
    is left to do anywhere in the flow: every job idle, waiting for input. A flow
    nested in a flow with a cycle shares its parent's count (so the parent sees
    the child's work), and each run with a cycle listens for the quiet moments.
    """

    __slots__ = ("_count", "_lock", "listeners")

    def __init__(self, on_quiet: Callable[[], None] | None = None) -> None:
        self._count = 0
        self._lock = threading.Lock()
        self.listeners: list[Callable[[], None]] = [] if on_quiet is None else [on_quiet]

    def add(self, n: int) -> None:
        with self._lock:
            self._count += n

    def done(self, n: int) -> None:
        with self._lock:
            self._count -= n
            quiet = self._count == 0
        if quiet:
            for on_quiet in list(self.listeners):
                on_quiet()

    @property
    def quiet(self) -> bool:
        return self._count == 0
