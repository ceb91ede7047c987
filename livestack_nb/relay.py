"""Moving a stream's values between a queue vault and a :class:`DataStream`.

Both sides of a job run elsewhere use it: the notebook follows the job's
outputs into its own streams, the worker follows the job's input into the
streams its processor reads. Values are pushed by seq, so a datapoint read
twice (a follower restarted, a stream read back and followed) is delivered
once. The vault is reached only through :class:`~livestack_nb.vault.queue.QueueVault`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .errors import LivestackError
from .job import JobStatus
from .stream import DataStream
from .vault.base import BatchRecord
from .vault.queue import QueueVault

if TYPE_CHECKING:
    from .env import LiveEnv

__all__ = ["DONE", "RemoteFailure", "drain", "follow_into", "ignore", "push_batch", "queue_vault"]

log = logging.getLogger("livestack_nb")

#: The statuses a job ends with, as the vault records them.
DONE = frozenset(s.value for s in JobStatus if s.done)


class RemoteFailure(LivestackError):
    """A job failed in another process; the message is the last line of its traceback."""


def queue_vault(env: LiveEnv) -> QueueVault:
    """The env's vault, as the queue contract (it must be one: ``queues = True``)."""
    v = env.vault
    if not v.queues or not isinstance(v, QueueVault):  # pragma: no cover - guarded by the env
        raise LivestackError(f"env {env.name!r} has no queue-capable vault")
    return cast(QueueVault, v)


def follow_into(
    vault: QueueVault, stream: DataStream, on_end: Callable[[], None] | None = None
) -> Callable[[], None]:
    """Push what the vault holds of ``stream``'s id, and what comes later, into ``stream``;
    returns a function that stops following."""
    return vault.follow_stream(stream.stream_id, stream.type.tp, lambda b: push_batch(stream, b), on_end)


def push_batch(stream: DataStream, b: BatchRecord) -> None:
    """Push the values of ``b`` that ``stream`` does not have yet (by seq)."""
    values, parents = b.values, b.parent_seqs
    have = len(stream)
    if b.seq0 + len(values) <= have or stream.ended:
        return
    if b.seq0 < have:
        k = have - b.seq0
        values = values[k:]
        parents = None if parents is None else parents[k:]
    elif b.seq0 > have:
        log.warning("stream %r: datapoints %d..%d are no longer stored", stream.stream_id, have, b.seq0 - 1)
    stream.push(values, b.parent_stream, parents)


def drain(vault: QueueVault, stream: DataStream) -> None:
    """Push everything stored of ``stream`` that it does not have yet."""
    for b in vault.batches(stream.stream_id, len(stream), None, stream.type.tp):
        push_batch(stream, b)


def ignore(_chunk: Any) -> None:
    """A chunk listener for a stream listened to only for its end."""
