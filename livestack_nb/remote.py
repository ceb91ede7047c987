"""Jobs that run in another process: the notebook's side and the worker's side.

Why a module of its own: an env with a Redis vault and ``autostart=False`` is
a pure client. ``spec.start()`` records the job and puts it on the spec's
queue; what the notebook feeds is written to the job's input stream in
Redis; a worker process (``livestack-nb worker module:spec``) takes the job
from the queue, runs it with an ordinary in-process :class:`LiveWorker`, and
its outputs and statuses flow back. This module is the glue on both sides;
the vault (:mod:`livestack_nb.vault.redis`) only moves entries.

Who owns a job's statuses: the process that runs it. The client mirrors them
(``LiveJob.detached``: it records none itself), except a cancel asked for by
the caller, which it records and the running worker obeys.

At-least-once, seen exactly once: a queue message is acknowledged only after
its job has ended and that is in Redis. A worker that dies leaves its
messages pending; once they have been idle for ``lease`` seconds (a live
worker refreshes them every ``lease / 3``), another worker takes them over
(``XAUTOCLAIM``) and runs the job again from its stored input. Outputs are
stored by seq, so what the earlier run already stored is dropped, and a
reader sees each output once; the job's end is written only after all of
its outputs are in Redis. This assumes the processor emits the same
outputs for the same input, in order (a deterministic processor). A job
taken over more than ``max_deliveries`` times (each worker that ran it went
silent) is recorded failed rather than handed on for ever.

A worker that was only stalled (stopped, swapping, starved of CPU) past its
lease and then wakes has lost the job: every write it makes for it is
*fenced* (refused by Redis unless its queue message is still that worker's),
and its next heartbeat finds the job gone and stops its copy, recording
nothing. So it neither adds to nor overwrites the new owner's work.

The client's lease: a job's input stays open until the process that started
it ends it. That process renews a lease key (``{prefix}:lease:{job}``,
``client_lease`` seconds, 30 by default) while any input of the job is
open; a worker running a job whose lease has expired with input still open
fails it, "client gone", and frees its slot (the notebook was killed, or its
machine cut off, while feeding).

The server losing its data: a Redis server restarted with persistence
(``appendonly yes``) keeps everything, and both sides carry on once it is
back (writes are resent, readers retry, with backoff). One restarted
without it has lost every job it held: each waiting client's job fails with
a :class:`~livestack_nb.LivestackError` saying so, and each worker drops its
copies (nothing to record them in); a server unreachable for longer than
``reconnect_timeout`` is given up the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from .errors import LivestackError
from .job import JobStatus, LiveJob
from .spec import JobSpec
from .stream import DataStream
from .vault.base import StatusRecord

if TYPE_CHECKING:
    from .env import LiveEnv
    from .named import NamedStream
    from .vault.redis import RedisVault

__all__ = ["QueueWorker", "prepare_remote"]

log = logging.getLogger("livestack_nb")

_DONE = {s.value for s in JobStatus if s.done}


class RemoteFailure(LivestackError):
    """A job failed in another process; the message is the last line of its traceback."""


def _vault(env: LiveEnv) -> RedisVault:
    from .vault.redis import RedisVault

    v = env.vault
    if not isinstance(v, RedisVault):  # pragma: no cover - guarded by the env
        raise LivestackError(f"env {env.name!r} has no queue-capable vault")
    return v


def _follow_into(
    vault: RedisVault, stream: DataStream, on_end: Callable[[], None] | None = None
) -> Callable[[], None]:
    """Push what the vault holds of ``stream``'s id, and what comes later, into ``stream``.

    Datapoints are pushed by seq: one already in ``stream`` is skipped, so a
    datapoint is delivered once however often it is read.
    """
    sid, tp = stream.stream_id, stream.type.tp

    def handle(entries: list[tuple[str, dict[Any, Any]]]) -> None:
        for entry_id, fields in entries:
            if entry_id.startswith("1-"):
                if on_end is not None:
                    on_end()
                continue
            for b in vault.decode(sid, fields, tp):
                _push(stream, b.seq0, b.values, b.parent_stream, b.parent_seqs)

    return vault.follow(vault.stream_key(sid), handle)


def _push(stream: DataStream, seq0: int, values: list[Any], parent_stream: str | None, parents: Any) -> None:
    have = len(stream)
    if seq0 + len(values) <= have or stream.ended:
        return
    if seq0 < have:
        k = have - seq0
        values = values[k:]
        parents = None if parents is None else parents[k:]
    elif seq0 > have:
        log.warning("stream %r: datapoints %d..%d are no longer stored", stream.stream_id, have, seq0 - 1)
    stream.push(values, parent_stream, parents)


def _ignore(_chunk: Any) -> None:
    pass


def _input_ended(vault: RedisVault, stream_id: str, error: BaseException | None) -> None:
    vault.end_stream(stream_id, None if error is None else str(error))


def _drain(vault: RedisVault, stream: DataStream) -> None:
    """Push everything stored of ``stream`` that it does not have yet."""
    for b in vault.batches(stream.stream_id, len(stream), None, stream.type.tp):
        _push(stream, b.seq0, b.values, b.parent_stream, b.parent_seqs)


def share_named(env: LiveEnv, stream: NamedStream) -> None:
    """Make a named stream live across every process on the env's Redis server.

    What this process publishes is appended at the stream's end in Redis (by
    a hidden writer: several processes append to one stream); the stream
    itself follows Redis from the first value, so every process sees every
    value once, in the server's order, its own included.
    """
    vault = _vault(env)
    sid = stream.stream_id
    vault.share(sid)
    writer = DataStream(
        sid,
        stream.tag,
        stream.type,
        history=1,
        storage=env.storage,
        large_value_threshold=env.large_value_threshold,
    )
    env._attach_archive(writer, record=True)

    def write(values: list[Any]) -> None:
        writer.push(values)

    stream._write = write

    def end_remote(error: BaseException | None) -> None:
        vault.end_stream(sid, None if error is None else str(error))

    stream._end_remote = end_remote
    env._attach_archive(stream, record=False)
    _follow_into(vault, stream, on_end=stream.end)


# -- the client's side ----------------------------------------------------------------


def prepare_remote(
    env: LiveEnv, spec: JobSpec, options: Any, *, job_id: str | None, parent_id: str | None
) -> tuple[LiveJob, Callable[[], None]]:
    """Record a job of ``spec`` and return it with a launcher that puts it on the queue.

    The job's input streams write through to Redis (the vault is durable);
    its output streams and status mirror what the worker records.
    """
    vault = _vault(env)
    job = env.make_job(spec, options, job_id=job_id, parent_id=parent_id)
    job.detached = True
    for s in job._outputs.values():
        env._attach_archive(s, record=False)
    for s in job._inputs.values():
        # the worker learns the input ended from an end marker after the stored values
        s.listen_chunks(_ignore, partial(_input_ended, vault, s.stream_id))
    for s in job._inputs.values():
        vault.share(s.stream_id)  # another process may feed it too (env.job(job_id))
    mirror = _Mirror(env, vault, job)
    job.on_cancel.append(mirror.cancelled_here)
    lease = _ClientLease(vault, job)
    for s in job._inputs.values():
        s.listen_chunks(_ignore, lease.input_ended)
    job.add_done_callback(lambda _j: lease.release())

    def launch() -> None:
        mirror.start()
        vault.mark_remote(job.job_id)
        lease.hold()
        vault.enqueue(spec.name, job.job_id)

    return job, launch


def lease_key(vault: RedisVault, job_id: str) -> str:
    """The key the process feeding ``job_id`` keeps alive while its input is open."""
    return vault.k("lease", job_id)


class _ClientLease:
    """Held from a job's launch until every input of it has ended (or the job has)."""

    def __init__(self, vault: RedisVault, job: LiveJob) -> None:
        self.vault = vault
        self.job = job
        self.open = len(job._inputs)
        self.lock = threading.Lock()
        self.released = False
        self._release: Callable[[], None] | None = None

    def hold(self) -> None:
        with self.lock:  # held while it is taken: a release meanwhile waits, then drops it
            if self.released or self.open <= 0:
                return
            self._release = self.vault.hold(lease_key(self.vault, self.job.job_id), self.vault.client_lease)

    def input_ended(self, _error: BaseException | None) -> None:
        with self.lock:
            self.open -= 1
            last = self.open <= 0
        if last:
            self.release()

    def release(self) -> None:
        """Stop renewing; the key expires on its own (the end of input is written first)."""
        with self.lock:
            self.released = True
            release, self._release = self._release, None
        if release is not None:
            release()


def reattach_remote(env: LiveEnv, spec: JobSpec, options: Any, record: Any) -> LiveJob:
    """A handle, in another process, on a queued job that has not ended: fed and read here.

    What it feeds is appended to the job's input streams in Redis (shared:
    several processes may feed one job, each value stored once, in the order
    the server took them); its outputs and statuses mirror what the worker
    records, from the first. The input ends for everyone when any process
    ends it; this process's feeders see that end.
    """
    vault = _vault(env)
    links = vault.streams(record.job_id)
    ins: dict[str, DataStream] = {}
    outs: dict[str, DataStream] = {}
    for link in links:
        if link.direction == "in":
            ins[link.tag] = env.new_stream(link.stream_id, link.tag, spec.in_tags[link.tag], fused=False)
            vault.share(link.stream_id)
        else:
            s = env.new_stream(link.stream_id, link.tag, spec.out_tags[link.tag], fused=True)
            env._attach_archive(s, record=False)
            outs[link.tag] = s
    job = LiveJob(
        spec,
        env,
        options,
        job_id=record.job_id,
        parent_id=record.parent_id,
        input_streams=ins,
        output_streams=outs,
        owned_inputs=list(ins),
    )
    job.detached = True
    mirror = _Mirror(env, vault, job)
    for s in ins.values():
        s.listen_chunks(_ignore, partial(_input_ended, vault, s.stream_id))
        mirror.stops.append(vault.follow(vault.stream_key(s.stream_id), partial(_end_seen, s)))
    job.on_cancel.append(mirror.cancelled_here)
    mirror.start()
    # this process feeds it now: it holds the client lease too, while the input is open here
    lease = _ClientLease(vault, job)
    for s in ins.values():
        s.listen_chunks(_ignore, lease.input_ended)
    job.add_done_callback(lambda _j: lease.release())
    lease.hold()
    return job


def _end_seen(stream: DataStream, entries: list[tuple[str, dict[Any, Any]]]) -> None:
    """Another process ended an input this one feeds: end it here too (feeding it then raises)."""
    for entry_id, _ in entries:
        if entry_id.startswith("1-"):
            stream.end()


class _Mirror:
    """Keeps a client's job in step with the worker that runs it."""

    def __init__(self, env: LiveEnv, vault: RedisVault, job: LiveJob) -> None:
        self.env = env
        self.vault = vault
        self.job = job
        self.mirroring = False
        self.runs = 0  # "running" records seen: one per worker that took the job
        self.stops: list[Callable[[], None]] = []

    def start(self) -> None:
        for s in self.job._outputs.values():
            self.stops.append(_follow_into(self.vault, s))
        self.stops.append(self.vault.follow(self.vault.status_key(self.job.job_id), self.on_statuses))
        self.stops.append(self.vault.on_lost(self.lost))

    def lost(self, why: str) -> None:
        """The server lost this job (or is gone): fail it here, saying so."""
        job = self.job
        if job.status.done:
            return
        self.stop()
        self.mirroring = True
        try:
            job.failure_note = "its Redis server lost it"
            job.fail(LivestackError(f"job {job.job_id} of spec {job.spec.name!r} is lost: {why}"))
        finally:
            self.mirroring = False

    def stop(self) -> None:
        for stop in self.stops:
            stop()
        self.stops.clear()

    def cancelled_here(self) -> None:
        if self.mirroring:
            return
        self.stop()
        self.vault.add_status(
            StatusRecord(self.job.job_id, "cancelled", time.time(), "cancelled by the caller")
        )

    def on_statuses(self, entries: list[tuple[str, dict[Any, Any]]]) -> None:
        from .vault.redis import _status

        job = self.job
        for _, fields in entries:
            rec = _status(job.job_id, fields)
            if job.status.done:
                return
            if rec.status == "running":
                self.runs += 1  # the status stream is followed once, each record seen once
                if self.runs == 1:
                    job.mark_running()
                else:
                    job._retaken(rec.time)  # another worker took it over: a run more
            elif rec.status in _DONE:
                # The worker recorded the outputs before the status: read them all first.
                for s in job._outputs.values():
                    _drain(self.vault, s)
                self.stop()
                self.apply_end(rec)
                return

    def apply_end(self, rec: StatusRecord) -> None:
        job = self.job
        self.mirroring = True
        try:
            if rec.status == "completed":
                job.complete()
            elif rec.status == "cancelled":
                job.cancel()
            else:
                detail = rec.detail or ""
                last = detail.strip().splitlines()[-1] if detail.strip() else "no traceback was recorded"
                job.failure_note = "in a worker process"
                job.fail(RemoteFailure(last))
                job.traceback = detail or None
        finally:
            self.mirroring = False


# -- the worker's side ------------------------------------------------------------------


class QueueWorker:
    """Runs the jobs of one spec that any process put on its Redis queue.

    Parameters
    ----------
    env:
        An env with a Redis vault (and ``autostart=True``): the jobs run on its
        in-process worker of ``spec``.
    spec:
        The spec whose queue this worker serves; it needs a worker definition.
    concurrency:
        How many jobs this process runs at once.
    lease:
        Seconds without a heartbeat after which another worker takes this
        one's jobs over; heartbeats are sent every ``lease / 3``.
    name:
        The consumer name in the queue's group (default: host, pid, random).
    max_deliveries:
        A job taken over more often than this (every worker that ran it went
        silent: a processor that kills its process, or runs out of memory) is
        recorded failed instead of being handed to the next worker.
    """

    def __init__(
        self,
        env: LiveEnv,
        spec: JobSpec,
        *,
        concurrency: int = 4,
        lease: float = 10.0,
        name: str | None = None,
        max_deliveries: int = 5,
    ) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise LivestackError(f"concurrency must be an int >= 1, not {concurrency!r}")
        if lease <= 0:
            raise LivestackError(f"lease must be > 0 seconds, not {lease!r}")
        if spec.worker_def is None:
            raise LivestackError(f"spec {spec.name!r} has no worker: define one with spec.define_worker(...)")
        self.env = env
        self.vault = _vault(env)
        self.spec = spec
        self.concurrency = concurrency
        self.lease = lease
        self.max_deliveries = max_deliveries
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self._inflight: dict[str, LiveJob] = {}  # message id -> job
        self._lock = threading.Condition()
        self.completed = 0
        self.rejected = 0
        self.taken_over = 0  # jobs this worker lost to another (it had been silent past its lease)
        self.clients_gone = 0  # jobs failed because the process feeding them stopped renewing its lease
        self.lost = 0  # jobs the server lost (it restarted without its data)
        self._unheld: set[str] = set()  # jobs whose client lease was missing at the last heartbeat
        env.register(spec)

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._inflight)

    def serve(self, stop: threading.Event, *, drain_timeout: float = 30.0) -> None:
        """Take and run jobs until ``stop`` is set, then let running jobs finish.

        Jobs still running ``drain_timeout`` seconds after ``stop`` are left
        unacknowledged (another worker takes them over) and not recorded as
        cancelled.
        """
        vault, spec = self.vault, self.spec.name
        vault.ensure_group(spec)
        stop_lost = vault.on_lost(self._server_lost)
        try:
            self._serve(stop, drain_timeout)
        finally:
            stop_lost()

    def _serve(self, stop: threading.Event, drain_timeout: float) -> None:
        vault, spec = self.vault, self.spec.name
        beat_every = self.lease / 3
        next_beat = 0.0
        backoff = 0.0  # seconds to wait before reading the queue again (0: it answers)
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                self._heartbeat()
                next_beat = now + beat_every
            free = self.concurrency - self.running
            if free <= 0:
                with self._lock:
                    self._lock.wait(min(0.1, beat_every))
                continue
            try:
                messages = [
                    m for m in vault.claim_stale(spec, self.name, self.lease, free) if self._may_retry(*m)
                ]
                claimed = {m[0] for m in messages}
                if len(messages) < free:
                    block = min(0.2, beat_every)
                    messages += vault.take(spec, self.name, free - len(messages), block)
            except Exception as e:  # Redis restarting or unreachable: keep trying (backoff), do not die
                if not backoff:
                    log.warning(
                        "worker %s: reading the queue of %r failed (%s); retrying", self.name, spec, e
                    )
                backoff = min(1.0, beat_every, max(0.05, backoff * 2))
                stop.wait(backoff)
                if "NOGROUP" in str(e):  # a server that lost its data: make the queue again
                    vault._groups.discard(spec)
                    with contextlib.suppress(Exception):
                        vault.check_epoch()
                        vault.ensure_group(spec)
                continue
            if backoff:
                backoff = 0.0
                log.warning("worker %s: the queue of %r answers again", self.name, spec)
            for message_id, fields in messages:
                with self._lock:
                    if message_id in self._inflight:
                        continue  # its own message, reclaimed after a late heartbeat: it runs here already
                try:
                    self._handle(message_id, fields, first=message_id not in claimed)
                except Exception as e:  # one bad message must not stop the worker
                    log.exception("worker %s: message %s could not be handled", self.name, message_id)
                    self.rejected += 1
                    with contextlib.suppress(Exception):
                        vault.reject(spec, message_id, fields, f"{type(e).__name__}: {e}", self.name)
        deadline = time.monotonic() + drain_timeout
        with self._lock:
            while self._inflight and time.monotonic() < deadline:
                self._lock.wait(min(0.1, beat_every))
                if time.monotonic() >= next_beat:
                    self._lock.release()
                    try:
                        self._heartbeat()
                    finally:
                        self._lock.acquire()
                    next_beat = time.monotonic() + beat_every
            left = list(self._inflight.values())
        for job in left:
            job.detached = True  # not cancelled for the record: another worker will run it
            job.logger.warning("left for another worker: this one stopped")

    def _may_retry(self, message_id: str, fields: dict[Any, Any]) -> bool:
        """Whether a message taken over from a silent worker is run again (else its job fails)."""
        vault, spec = self.vault, self.spec.name
        n = vault.deliveries(spec, message_id)
        if n <= self.max_deliveries:
            return True
        raw = fields.get(b"job", fields.get("job"))
        job_id = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        record = vault.job(job_id) if raw is not None else None
        if record is None or record.spec != spec:
            return True  # not a job of ours: reported as malformed when handled
        if record.status not in _DONE:
            why = (
                f"{RemoteFailure.__name__}: job {job_id} was taken over {n - 1} times; every worker that "
                "ran it went silent without ending it (did its processor kill or exhaust its process?)"
            )
            log.error("worker %s: %s", self.name, why)
            vault.add_status(StatusRecord(job_id, "failed", time.time(), why))
            vault.flush()
        vault.ack(spec, [message_id])
        return False

    def _heartbeat(self) -> None:
        with self._lock:
            ids = list(self._inflight)
        try:
            lost = self.vault.touch(self.spec.name, self.name, ids)
            self.vault.heartbeat(self.name, self.spec.name, self.lease)
        except Exception as e:  # a missed beat is not fatal; the next one may go through
            log.warning("worker %s: heartbeat failed: %s", self.name, e)
            return
        if lost and not self.vault.check_epoch(wait=True):
            return  # not taken over: the server lost everything (its callbacks dropped the jobs)
        for message_id in lost:
            with self._lock:
                job = self._inflight.get(message_id)
            if job is not None and not job.status.done:
                self.taken_over += 1
                self._drop(job, "taken over by another worker: this one was silent past its lease")
        try:
            self._check_clients()
        except Exception as e:
            log.warning("worker %s: checking the client leases failed: %s", self.name, e)

    def _drop(self, job: LiveJob, why: str) -> None:
        """Stop this process's copy of ``job`` and record nothing (its record is not ours)."""
        job.detached = True
        job.logger.warning("%s; stopping here, recording nothing", why)
        with contextlib.suppress(Exception):
            job.cancel()

    def _check_clients(self) -> None:
        """Fail the jobs whose input is open while the process feeding them is gone."""
        with self._lock:
            jobs = [j for j in self._inflight.values() if not j.status.done]
        waiting = [(j, [s for s in j._inputs.values() if not s.ended]) for j in jobs]
        waiting = [(j, open_) for j, open_ in waiting if open_]
        if not waiting:
            return
        vault = self.vault
        keys = [lease_key(vault, j.job_id) for j, _ in waiting]
        missing = {
            job.job_id: (job, open_)
            for (job, open_), held in zip(waiting, vault.held(keys), strict=True)
            if not held
        }
        # Failed only when found missing at two heartbeats in a row: a lease renewed late
        # (its client just got its server back, say) is not taken for a dead client.
        gone = [missing[i] for i in missing if i in self._unheld]
        self._unheld = set(missing)
        if not gone or not vault.check_epoch(wait=True):
            return  # every client is there, or the server lost the leases with everything else
        for job, open_ in gone:
            still_open = [s for s in open_ if not vault.ended(s.stream_id)]
            if not still_open or job.status.done:
                continue  # ended meanwhile: the end marker is on its way to the follower
            tags = ", ".join(repr(s.tag) for s in still_open)
            self.clients_gone += 1
            job.fail(
                LivestackError(
                    f"client gone: the process that started job {job.job_id} stopped renewing its "
                    f"lease (client_lease) before ending its input {tags}; its input can never end"
                )
            )

    def _server_lost(self, why: str) -> None:
        """The server lost its data (or is gone): drop every job in flight here."""
        with self._lock:
            jobs = list(self._inflight.values())
        for job in jobs:
            if not job.status.done:
                self.lost += 1
                self._drop(job, f"lost with the server's data ({why})")
        self.vault._groups.discard(self.spec.name)

    def _handle(self, message_id: str, fields: dict[Any, Any], *, first: bool = False) -> None:
        """Run the job of a queue message; ``first``: its first delivery (no worker ran it before)."""
        vault, spec = self.vault, self.spec
        try:
            raw = fields.get(b"job", fields.get("job"))
            if raw is None:
                raise ValueError("it has no 'job' field")
            job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            record = vault.job(job_id)
            if record is None:
                raise ValueError(f"no job {job_id!r} is recorded")
            if record.spec != spec.name:
                raise ValueError(f"job {job_id!r} is of spec {record.spec!r}, not {spec.name!r}")
            options = spec.validate_options(record.options or {})
        except (ValueError, UnicodeDecodeError, LivestackError) as e:
            self.rejected += 1
            vault.reject(spec.name, message_id, fields, str(e), self.name)
            return
        if record.status in _DONE:
            # It ended; what its worker did not get to write before it died was the ends
            # of its outputs (written after the status) and the acknowledgement.
            for link in vault.streams(job_id):
                if link.direction == "out":
                    vault.end_stream(link.stream_id)
            vault.flush()
            vault.ack(spec.name, [message_id])
            return
        job = self.env.make_job(spec, options, job_id=job_id, parent_id=record.parent_id)
        outs = [s.stream_id for s in job._outputs.values()]
        vault.fence(job_id, outs, spec.name, message_id, self.name)
        if first:
            vault.fresh(outs)  # nothing of it is stored yet: its outputs need no check first
        launch = self.env._worker_for(spec).attach(job)
        stops: list[Callable[[], None]] = []
        for s in job._inputs.values():
            self.env._attach_archive(s, record=False)  # what feeds it is already in Redis
            stops.append(_follow_into(vault, s, on_end=s.end))
        stops.append(vault.follow(vault.status_key(job_id), lambda entries: self._on_statuses(job, entries)))
        with self._lock:
            self._inflight[message_id] = job

        def done(j: LiveJob) -> None:
            for stop in stops:
                stop()
            if not j.detached:
                for s in j._outputs.values():
                    vault.end_stream(s.stream_id)
                try:
                    vault.flush()
                    if vault.ack(spec.name, [message_id], self.name):
                        self.completed += 1
                    else:  # what it recorded was refused: the new owner's record stands
                        self.taken_over += 1
                        j.logger.warning(
                            "taken over by another worker before it ended here; nothing recorded"
                        )
                except Exception as e:
                    log.error(
                        "worker %s: job %s ended but could not be acknowledged: %s", self.name, j.job_id, e
                    )
            else:
                with contextlib.suppress(Exception):
                    vault.flush()  # what it wrote under the fence went first
            vault.unfence(j.job_id, outs)
            self.env._forget(j)
            with self._lock:
                self._inflight.pop(message_id, None)
                self._lock.notify_all()

        job.add_done_callback(done)
        job.logger.info("taken from the queue by worker %s", self.name)
        launch()

    def _on_statuses(self, job: LiveJob, entries: list[tuple[str, dict[Any, Any]]]) -> None:
        """A cancel from the caller (or an end recorded by another worker) stops the job here."""
        from .vault.redis import _status

        for _, fields in entries:
            rec = _status(job.job_id, fields)
            if rec.status in _DONE and not job.status.done:
                with self._lock:
                    mine = [m for m, j in self._inflight.items() if j is job]
                job.detached = True  # recorded already, by whoever ended it
                job.logger.info("ended elsewhere (%s); stopping here", rec.status)
                with contextlib.suppress(Exception):
                    job.cancel()
                # whoever ended it recorded that: nothing is left to do for the message
                with contextlib.suppress(Exception):
                    self.vault.ack(self.spec.name, mine, self.name)
                return
