"""The Redis vault's job queues: consumer groups, takeover, fences and leases.

A spec's queue is a Redis stream with one consumer group (:data:`GROUP`);
a message is pending for the worker that read it until that worker
acknowledges it, and a worker silent past its lease has its messages taken
over (``XAUTOCLAIM``). A worker's writes for a job are *fenced* by its
message (see ``FENCE`` in :mod:`._redis_lua`). A lease is a key kept alive
by the reader thread while this process holds it. This is the Redis side of
the contract in :mod:`.queue`; :mod:`livestack_nb.remote` and
:mod:`livestack_nb.queue_worker` are its users.

A mixin of :class:`~livestack_nb.vault.redis.RedisVault`, which owns the
connection and the state set up in its ``__init__``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._redis_entries import Enqueue, Lease, as_str, as_text
from ._redis_lua import GROUP
from ._redis_part import RedisPart
from .queue import Message

__all__ = ["RedisQueues"]

log = logging.getLogger("livestack_nb")


class RedisQueues(RedisPart):
    """The queue operations of the Redis vault (see the module docstring)."""

    if TYPE_CHECKING:  # what else of the vault this part uses (see RedisVault.__init__)
        client_lease: float
        _groups: set[str]
        _fences: dict[str, tuple[str, str, str]]
        _next_seq: dict[str, int]
        _leases: dict[str, float]
        _leases_renewed: float
        _touch_script: Any
        _ack_script: Any

        def _ensure_reader(self) -> None: ...

    # -- job queues (see livestack_nb.remote) --------------------------------------------

    def enqueue(self, spec: str, job_id: str) -> None:
        """Put ``job_id`` on ``spec``'s queue, after everything recorded before."""
        self._put(Enqueue(spec, job_id))

    def ensure_group(self, spec: str) -> None:
        """Create the queue of ``spec`` and its consumer group if missing."""
        import redis

        if spec in self._groups:
            return
        try:
            self._r.xgroup_create(self.queue_key(spec), GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._groups.add(spec)

    def take(self, spec: str, consumer: str, count: int, block: float) -> list[Message]:
        """Up to ``count`` new messages of ``spec``'s queue for ``consumer`` (waits ``block`` s)."""
        got = self._r.xreadgroup(
            GROUP, consumer, {self.queue_key(spec): ">"}, count=count, block=max(1, int(block * 1000))
        )
        return [(as_str(i), f) for _, entries in got or () for i, f in entries if f is not None]

    def claim_stale(self, spec: str, consumer: str, idle: float, count: int) -> list[Message]:
        """Take over up to ``count`` messages whose consumer has been silent ``idle`` s (XAUTOCLAIM)."""
        res = self._r.xautoclaim(self.queue_key(spec), GROUP, consumer, int(idle * 1000), "0-0", count=count)
        entries = res[1] if len(res) > 1 else []
        return [(as_str(i), f) for i, f in entries if f is not None]

    def deliveries(self, spec: str, message_id: str) -> int:
        """How often a pending message was delivered (read or taken over); 0 if not pending."""
        got = self._r.xpending_range(self.queue_key(spec), GROUP, min=message_id, max=message_id, count=1)
        return int(got[0]["times_delivered"]) if got else 0

    def touch(self, spec: str, consumer: str, ids: Sequence[str]) -> list[str]:
        """Heartbeat: reset the idle time of messages ``consumer`` is working on.

        Returns the ids that are no longer ``consumer``'s (another worker took them
        over while this one was silent): it must stop their jobs, and record nothing.
        """
        if not ids:
            return []
        lost = self._touch_script(keys=[self.queue_key(spec)], args=[consumer, *ids])
        return [as_str(i) for i in lost or ()]

    def fence(
        self, job_id: str, stream_ids: Sequence[str], spec: str, message_id: str, consumer: str
    ) -> None:
        """Write the statuses of ``job_id`` and the entries and ends of ``stream_ids`` only
        while ``message_id`` is ``consumer``'s (see ``FENCE``), until :meth:`unfence`."""
        fence = (self.queue_key(spec), message_id, consumer)
        for key in (job_id, *stream_ids):
            self._fences[key] = fence

    def fresh(self, stream_ids: Sequence[str]) -> None:
        """Streams known to hold nothing yet (the outputs of a job on its first delivery):
        their first entries need no round trip of their own (see :meth:`_segments`)."""
        for sid in stream_ids:
            self._next_seq.setdefault(sid, 0)

    def unfence(self, job_id: str, stream_ids: Sequence[str]) -> None:
        """Drop a fence (after a flush: what was recorded under it has been written)."""
        for key in (job_id, *stream_ids):
            self._fences.pop(key, None)

    def hold(self, key: str, ttl: float) -> Callable[[], None]:
        """Keep ``key`` alive (renewed every ``ttl / 3`` s) until the returned function is called.

        A lease other processes can watch: once this process dies or is
        cut off, the key expires ``ttl`` seconds after its last renewal.
        """
        self._leases[key] = ttl
        self._put(Lease(key, ttl))  # set in order: before a job queued after it is visible
        self._ensure_reader()

        def release() -> None:
            self._leases.pop(key, None)

        return release

    def held(self, keys: Sequence[str]) -> list[bool]:
        """Whether each of ``keys`` exists (a lease still held)."""
        pipe = self._r.pipeline(transaction=False)
        for k in keys:
            pipe.exists(k)
        return [bool(x) for x in pipe.execute()]

    def _renew_leases(self) -> None:
        leases = dict(self._leases)
        if not leases:
            return
        now = time.monotonic()
        if now - self._leases_renewed < min(leases.values()) / 3:
            return
        pipe = self._r.pipeline(transaction=False)
        for key, ttl in leases.items():
            pipe.set(key, "1", px=max(1, int(ttl * 1000)))
        pipe.execute()
        self._leases_renewed = now

    def ack(self, spec: str, ids: Sequence[str], consumer: str | None = None) -> int:
        """The messages are done with (their jobs ended, or they were reported); how many were
        acknowledged.

        With ``consumer``, only those still pending for it: a worker that was silent
        past its lease must not acknowledge the message another worker took over (that
        would fence the new owner off its own job).
        """
        if not ids:
            return 0
        if consumer is None:
            return int(self._r.xack(self.queue_key(spec), GROUP, *ids))
        return int(self._ack_script(keys=[self.queue_key(spec)], args=[consumer, *ids]))

    def heartbeat(self, consumer: str, spec: str, ttl: float) -> None:
        """Say that worker ``consumer`` of ``spec`` is alive for the next ``ttl`` s."""
        self._r.set(self.k("worker", consumer), spec, px=max(1, int(ttl * 1000)))

    def reject(
        self, spec: str, message_id: str, fields: Mapping[Any, Any], reason: str, consumer: str
    ) -> None:
        """Report a malformed queue message (log and record it), then acknowledge it."""
        shown = {as_text(k)[:100]: as_text(v)[:200] for k, v in list(fields.items())[:20]}
        log.error("queue of spec %r: message %s rejected: %s (%r)", spec, message_id, reason, shown)
        report = {
            "spec": spec,
            "message_id": message_id,
            "fields": shown,
            "reason": reason,
            "worker": consumer,
            "time": time.time(),
        }
        self._r.rpush(self.k("rejected"), json.dumps(report))
        self.ack(spec, [message_id])

    def rejected(self) -> list[dict[str, Any]]:
        """The malformed queue messages reported so far, oldest first."""
        return [json.loads(x) for x in self._r.lrange(self.k("rejected"), 0, -1)]

    def pending(self, spec: str) -> dict[str, int]:
        """Messages delivered and not yet acknowledged, per consumer."""
        self.ensure_group(spec)
        info = self._r.xpending(self.queue_key(spec), GROUP)
        return {as_str(c["name"]): int(c["pending"]) for c in info.get("consumers", [])}

    def reset_group(self, spec: str) -> None:
        """Forget that ``spec``'s group exists (the server lost it): made again on next use."""
        self._groups.discard(spec)

    def lease_key(self, job_id: str) -> str:
        """The key the process feeding ``job_id`` keeps alive while its input is open."""
        return self.k("lease", job_id)

    def hold_lease(self, job_id: str) -> Callable[[], None]:
        """Hold the client lease of ``job_id`` (``client_lease`` s) until released."""
        return self.hold(self.lease_key(job_id), self.client_lease)

    def leases_held(self, job_ids: Sequence[str]) -> list[bool]:
        """Whether some process holds the client lease of each of ``job_ids``."""
        return self.held([self.lease_key(j) for j in job_ids])
