"""The queue contract in one process: a :class:`MemoryQueueServer` and a vault per env.

A complete implementation of :class:`~livestack_nb.vault.queue.QueueVault`,
not a recording of calls: the tests run the same client and worker code
(:mod:`livestack_nb.remote`, :mod:`livestack_nb.queue_worker`) against it
as against Redis, so a fault in that glue shows without a server, and a
difference between the two is a bug in one of them.

It has the Redis vault's shape: one :class:`MemoryQueueServer` holds what a
server would (records, streams, queues with pending messages and delivery
counts, leases), and each env opens its own :class:`MemoryQueueVault` on it,
as each process opens its own Redis connection. What belongs to a process
stays in its vault: its fences, the leases it holds, its followers (called
on the vault's own delivery thread, in order, like the Redis reader thread).
Closing a vault is a process going away: the leases it held lapse at once.

Its rules are the Redis scripts' rules: a job is recorded once, a stream
takes an entry only at its next seq (a shared stream takes it at its end),
an ended stream takes nothing more, a job ends once, and a fenced write is
dropped unless its queue message is still the writer's.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .base import (
    BatchRecord,
    DatapointRecord,
    JobRecord,
    StatusRecord,
    StreamRecord,
    ValidationFailureRecord,
    Vault,
)
from .memory import MemoryVault
from .queue import Message

if TYPE_CHECKING:
    from .queue import QueueVault

__all__ = ["MemoryQueueServer", "MemoryQueueVault"]

log = logging.getLogger("livestack_nb")

_ENDS = frozenset({"completed", "failed", "cancelled"})


def _batch(r: DatapointRecord) -> BatchRecord:
    parent = r.parents[0].rsplit(":", 1) if r.parents else None
    return BatchRecord(
        r.stream_id,
        r.seq,
        r.time,
        [r.value],
        parent[0] if parent else None,
        [int(parent[1])] if parent else None,
    )


class _Follower:
    """One follow of one vault: called on that vault's delivery thread while active."""

    __slots__ = ("active", "deliver", "on_batch", "on_end", "on_status")

    def __init__(
        self,
        deliver: Callable[[Callable[[], None]], None],
        on_batch: Callable[[BatchRecord], None] | None = None,
        on_end: Callable[[], None] | None = None,
        on_status: Callable[[StatusRecord], None] | None = None,
    ) -> None:
        self.active = True
        self.deliver = deliver
        self.on_batch = on_batch
        self.on_end = on_end
        self.on_status = on_status

    def batches(self, records: Sequence[DatapointRecord]) -> None:
        on_batch = self.on_batch
        if on_batch is None or not records:
            return

        def call() -> None:
            for r in records:
                if self.active:
                    on_batch(_batch(r))

        self.deliver(call)

    def end(self) -> None:
        on_end = self.on_end
        if on_end is not None:
            self.deliver(lambda: on_end() if self.active else None)

    def status(self, rec: StatusRecord) -> None:
        on_status = self.on_status
        if on_status is not None:
            self.deliver(lambda: on_status(rec) if self.active else None)


class MemoryQueueServer:
    """What a Redis server holds, kept in this process; open a vault on it per env."""

    def __init__(self, *, client_lease: float = 30.0) -> None:
        self.client_lease = client_lease
        self.lock = threading.Condition(threading.RLock())
        self.records = MemoryVault(max_datapoints=10_000_000)
        self.next_seq: dict[str, int] = {}
        self.ended: dict[str, str] = {}
        self.stream_followers: dict[str, list[_Follower]] = {}
        self.status_followers: dict[str, list[_Follower]] = {}
        self.queues: dict[str, deque[str]] = {}
        self.messages: dict[str, tuple[str, dict[str, str]]] = {}  # id -> (spec, fields)
        self.pending: dict[str, list[Any]] = {}  # id -> [consumer, last touched (monotonic), deliveries]
        self.queued: set[str] = set()
        self.remote: set[str] = set()
        self.claimed: set[str] = set()
        self.leases: dict[str, int] = {}  # job id -> how many vaults hold its lease
        self.workers: dict[str, tuple[str, float]] = {}  # consumer -> (spec, expiry)
        self.rejected: list[dict[str, Any]] = []
        self.ids = itertools.count(1)

    def vault(self) -> MemoryQueueVault:
        """A vault on this server (one per env, as one Redis connection per process)."""
        return MemoryQueueVault(self)


class MemoryQueueVault(Vault):
    """One env's vault on a :class:`MemoryQueueServer` (see the module docstring)."""

    durable = True  # every datapoint goes to the server: other envs follow it there
    queues = True

    def __init__(self, server: MemoryQueueServer) -> None:
        self.server = server
        self.client_lease = server.client_lease
        self._fences: dict[str, tuple[str, str]] = {}  # job or stream id -> (message id, consumer)
        self._shared: set[str] = set()
        self._held: dict[str, int] = {}
        self._followers: list[_Follower] = []
        self._lost: list[Callable[[str], None]] = []
        self._closed = False
        self._deliveries: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._deliver_loop, name="livestack-memory-queue", daemon=True)
        self._thread.start()

    # -- delivery to followers, in order, on this vault's thread ---------------------------

    def _deliver(self, call: Callable[[], None]) -> None:
        self._deliveries.put(call)

    def _deliver_loop(self) -> None:
        while True:
            call = self._deliveries.get()
            if call is None:
                return
            try:
                call()
            except Exception:
                log.exception("memory queue vault: a follower failed")

    def _fenced_off(self, key: str) -> bool:
        """Whether this vault's write of ``key`` is refused (its message is no longer its own)."""
        fence = self._fences.get(key)
        if fence is None:
            return False
        p = self.server.pending.get(fence[0])
        return p is None or p[0] != fence[1]

    # -- the Vault contract ---------------------------------------------------------------

    def add_job(self, record: JobRecord) -> None:
        srv = self.server
        with srv.lock:
            if srv.records.job(record.job_id) is not None:
                return  # recorded once (a worker making the job a client recorded)
            srv.records.add_job(record)
            first = srv.records.statuses(record.job_id)[0]
            for f in srv.status_followers.get(record.job_id, ()):
                f.status(first)

    def add_status(self, record: StatusRecord) -> None:
        srv = self.server
        with srv.lock:
            job = srv.records.job(record.job_id)
            if job is None or self._fenced_off(record.job_id):
                return
            if record.status in _ENDS and job.status in _ENDS:
                return  # a job ends once
            srv.records.add_status(record)
            for f in srv.status_followers.get(record.job_id, ()):
                f.status(record)

    def statuses(self, job_id: str) -> list[StatusRecord]:
        with self.server.lock:
            return self.server.records.statuses(job_id)

    def jobs(self) -> list[JobRecord]:
        with self.server.lock:
            return self.server.records.jobs()

    def job(self, job_id: str) -> JobRecord | None:
        with self.server.lock:
            return self.server.records.job(job_id)

    def claim_job_id(self, job_id: str) -> bool:
        srv = self.server
        with srv.lock:
            if job_id in srv.claimed or srv.records.job(job_id) is not None:
                return False
            srv.claimed.add(job_id)
            return True

    def add_stream(self, record: StreamRecord) -> None:
        with self.server.lock:
            known = self.server.records.streams(record.job_id)
            if not any(s.direction == record.direction and s.tag == record.tag for s in known):
                self.server.records.add_stream(record)

    def streams(self, job_id: str) -> list[StreamRecord]:
        with self.server.lock:
            return sorted(self.server.records.streams(job_id), key=lambda s: (s.direction, s.tag))

    def add_datapoints(self, records: Sequence[DatapointRecord]) -> None:
        if not records:
            return
        srv = self.server
        sid = records[0].stream_id
        with srv.lock:
            if sid in srv.ended or self._fenced_off(sid):
                return
            nxt = srv.next_seq.get(sid, 0)
            if sid in self._shared:  # several writers: at the stream's end, whatever their seqs
                kept = [
                    DatapointRecord(sid, nxt + i, r.time, r.value, r.parents) for i, r in enumerate(records)
                ]
            else:  # what is stored already (a job run again) is dropped
                kept = [r for r in records if r.seq >= nxt]
            if not kept:
                return
            srv.records.add_datapoints(kept)
            srv.next_seq[sid] = kept[-1].seq + 1
            for f in srv.stream_followers.get(sid, ()):
                f.batches(kept)

    def datapoints(self, stream_id: str, after: int = -1, limit: int | None = None) -> list[DatapointRecord]:
        with self.server.lock:
            return self.server.records.datapoints(stream_id, after, limit)

    def count(self, stream_id: str) -> int:
        with self.server.lock:
            return self.server.next_seq.get(stream_id, 0)

    def add_child(self, parent_id: str, child_id: str) -> None:
        with self.server.lock:
            self.server.records.add_child(parent_id, child_id)

    def children(self, job_id: str) -> list[str]:
        with self.server.lock:
            return self.server.records.children(job_id)

    def add_validation_failure(self, record: ValidationFailureRecord) -> None:
        with self.server.lock:
            self.server.records.add_validation_failure(record)

    def validation_failures(self, job_id: str | None = None) -> list[ValidationFailureRecord]:
        with self.server.lock:
            return self.server.records.validation_failures(job_id)

    def close(self) -> None:
        """This env (a process) goes away: its followers stop, the leases it held lapse."""
        if self._closed:
            return
        self._closed = True
        srv = self.server
        with srv.lock:
            for f in self._followers:
                f.active = False
            for job_id, n in self._held.items():
                srv.leases[job_id] = srv.leases.get(job_id, 0) - n
            self._held.clear()
            srv.lock.notify_all()
        self._deliveries.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(5)

    # -- streams across envs --------------------------------------------------------------

    def share(self, stream_id: str) -> None:
        self._shared.add(stream_id)

    def end_stream(self, stream_id: str, error: str | None = None) -> None:
        srv = self.server
        with srv.lock:
            if stream_id in srv.ended or self._fenced_off(stream_id):
                return
            srv.ended[stream_id] = error or ""
            for f in srv.stream_followers.get(stream_id, ()):
                f.end()

    def ended(self, stream_id: str) -> bool:
        with self.server.lock:
            return stream_id in self.server.ended

    def _follow(self, table: dict[str, list[_Follower]], key: str, f: _Follower) -> Callable[[], None]:
        table.setdefault(key, []).append(f)
        self._followers.append(f)

        def stop() -> None:
            f.active = False
            with self.server.lock:
                if f in table.get(key, ()):
                    table[key].remove(f)

        return stop

    def follow_stream(
        self,
        stream_id: str,
        value_type: Any,
        on_batch: Callable[[BatchRecord], None] | None,
        on_end: Callable[[], None] | None,
    ) -> Callable[[], None]:
        srv = self.server
        f = _Follower(self._deliver, on_batch=on_batch, on_end=on_end)
        with srv.lock:  # what is stored, then what comes: nothing missed, nothing twice
            f.batches(srv.records.datapoints(stream_id))
            if stream_id in srv.ended:
                f.end()
            return self._follow(srv.stream_followers, stream_id, f)

    def follow_statuses(self, job_id: str, on_status: Callable[[StatusRecord], None]) -> Callable[[], None]:
        srv = self.server
        f = _Follower(self._deliver, on_status=on_status)
        with srv.lock:
            for rec in srv.records.statuses(job_id):
                f.status(rec)
            return self._follow(srv.status_followers, job_id, f)

    # -- jobs on queues ---------------------------------------------------------------------

    def mark_remote(self, job_id: str) -> None:
        with self.server.lock:
            self.server.remote.add(job_id)

    def is_remote(self, job_id: str) -> bool:
        with self.server.lock:
            return job_id in self.server.remote

    def enqueue(self, spec: str, job_id: str) -> None:
        srv = self.server
        with srv.lock:
            if job_id in srv.queued:
                return  # on its queue once
            srv.queued.add(job_id)
            mid = f"{next(srv.ids)}-0"
            srv.messages[mid] = (spec, {"job": job_id})
            srv.queues.setdefault(spec, deque()).append(mid)
            srv.lock.notify_all()

    def ensure_group(self, spec: str) -> None:
        with self.server.lock:
            self.server.queues.setdefault(spec, deque())

    def reset_group(self, spec: str) -> None:
        """Nothing to forget: this server never loses its queues."""

    def take(self, spec: str, consumer: str, count: int, block: float) -> list[Message]:
        srv = self.server
        deadline = time.monotonic() + block
        with srv.lock:
            q = srv.queues.setdefault(spec, deque())
            while not q and not self._closed and (left := deadline - time.monotonic()) > 0:
                srv.lock.wait(left)
            out: list[Message] = []
            while q and len(out) < count:
                mid = q.popleft()
                srv.pending[mid] = [consumer, time.monotonic(), 1]
                out.append((mid, dict(srv.messages[mid][1])))
            return out

    def claim_stale(self, spec: str, consumer: str, idle: float, count: int) -> list[Message]:
        srv = self.server
        now = time.monotonic()
        with srv.lock:
            out: list[Message] = []
            for mid, p in srv.pending.items():
                if len(out) >= count:
                    break
                if srv.messages[mid][0] == spec and now - p[1] >= idle:
                    p[0], p[1], p[2] = consumer, now, p[2] + 1
                    out.append((mid, dict(srv.messages[mid][1])))
            return out

    def deliveries(self, spec: str, message_id: str) -> int:
        with self.server.lock:
            p = self.server.pending.get(message_id)
            return int(p[2]) if p is not None else 0

    def touch(self, spec: str, consumer: str, ids: Sequence[str]) -> list[str]:
        srv = self.server
        now = time.monotonic()
        lost = []
        with srv.lock:
            for mid in ids:
                p = srv.pending.get(mid)
                if p is None or p[0] != consumer:
                    lost.append(mid)
                else:
                    p[1] = now
        return lost

    def ack(self, spec: str, ids: Sequence[str], consumer: str | None = None) -> int:
        srv = self.server
        n = 0
        with srv.lock:
            for mid in ids:
                p = srv.pending.get(mid)
                if p is not None and (consumer is None or p[0] == consumer):
                    del srv.pending[mid]
                    n += 1
        return n

    def reject(
        self, spec: str, message_id: str, fields: Mapping[Any, Any], reason: str, consumer: str
    ) -> None:
        log.error("queue of spec %r: message %s rejected: %s", spec, message_id, reason)
        with self.server.lock:
            self.server.rejected.append(
                {"spec": spec, "message_id": message_id, "reason": reason, "worker": consumer}
            )
        self.ack(spec, [message_id])

    def rejected(self) -> list[dict[str, Any]]:
        """The malformed queue messages reported so far, oldest first (as the Redis vault's)."""
        with self.server.lock:
            return list(self.server.rejected)

    def pending(self, spec: str) -> dict[str, int]:
        """Messages of ``spec`` delivered and not yet acknowledged, per consumer (as the Redis
        vault's)."""
        srv = self.server
        with srv.lock:
            out: dict[str, int] = {}
            for mid, p in srv.pending.items():
                if srv.messages[mid][0] == spec:
                    out[p[0]] = out.get(p[0], 0) + 1
            return out

    def put_message(self, spec: str, fields: Mapping[str, str]) -> str:
        """Put a raw message on ``spec``'s queue (a test's malformed one); returns its id."""
        srv = self.server
        with srv.lock:
            mid = f"{next(srv.ids)}-0"
            srv.messages[mid] = (spec, dict(fields))
            srv.queues.setdefault(spec, deque()).append(mid)
            srv.lock.notify_all()
            return mid

    def heartbeat(self, consumer: str, spec: str, ttl: float) -> None:
        with self.server.lock:
            self.server.workers[consumer] = (spec, time.monotonic() + ttl)

    # -- fences ---------------------------------------------------------------------------

    def fence(
        self, job_id: str, stream_ids: Sequence[str], spec: str, message_id: str, consumer: str
    ) -> None:
        for key in (job_id, *stream_ids):
            self._fences[key] = (message_id, consumer)

    def fresh(self, stream_ids: Sequence[str]) -> None:
        """A hint Redis uses to save a round trip; nothing to save here."""

    def unfence(self, job_id: str, stream_ids: Sequence[str]) -> None:
        for key in (job_id, *stream_ids):
            self._fences.pop(key, None)

    # -- leases ---------------------------------------------------------------------------

    def hold_lease(self, job_id: str) -> Callable[[], None]:
        srv = self.server
        with srv.lock:
            srv.leases[job_id] = srv.leases.get(job_id, 0) + 1
            self._held[job_id] = self._held.get(job_id, 0) + 1
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with srv.lock:
                if self._held.get(job_id, 0) > 0:
                    self._held[job_id] -= 1
                    srv.leases[job_id] = srv.leases.get(job_id, 0) - 1

        return release

    def leases_held(self, job_ids: Sequence[str]) -> list[bool]:
        with self.server.lock:
            return [self.server.leases.get(j, 0) > 0 for j in job_ids]

    # -- the server losing its data: this one never does ------------------------------------

    def on_lost(self, callback: Callable[[str], None]) -> Callable[[], None]:
        self._lost.append(callback)

        def stop() -> None:
            if callback in self._lost:
                self._lost.remove(callback)

        return stop

    def check_epoch(self, *, wait: bool = False) -> bool:
        return True

    def __repr__(self) -> str:
        return f"MemoryQueueVault(server={id(self.server):#x})"


if TYPE_CHECKING:

    def _implements_the_queue_contract(vault: MemoryQueueVault) -> QueueVault:
        return vault  # mypy checks MemoryQueueVault against QueueVault here
