"""Jobs that run in another process: the notebook's side and the worker's side.

Why a module of its own: an env with a Redis vault and ``autostart=False`` is
a pure client. ``spec.start()`` records the job and puts it on the spec's
queue; what the notebook feeds is written to the job's input stream in
Redis; a worker process (``livestack-nb worker module:spec``) takes the job
from the queue, runs it with an ordinary in-process :class:`LiveWorker`, and
its outputs and statuses flow back. This module is the notebook's side;
:mod:`livestack_nb.queue_worker` the worker's; both work against the queue
contract (:mod:`livestack_nb.vault.queue`), which the Redis vault
implements, and only move entries through it.

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

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from .errors import LivestackError
from .job import LiveJob
from .queue_worker import QueueWorker
from .relay import DONE, RemoteFailure, drain, follow_into, ignore, queue_vault
from .spec import JobSpec
from .stream import DataStream
from .vault.base import StatusRecord
from .vault.queue import QueueVault

if TYPE_CHECKING:
    from .env import LiveEnv
    from .named import NamedStream

__all__ = ["QueueWorker", "RemoteFailure", "prepare_remote", "reattach_remote", "share_named"]


def _input_ended(vault: QueueVault, stream_id: str, error: BaseException | None) -> None:
    vault.end_stream(stream_id, None if error is None else str(error))


def share_named(env: LiveEnv, stream: NamedStream) -> None:
    """Make a named stream live across every process on the env's Redis server.

    What this process publishes is appended at the stream's end in Redis (by
    a hidden writer: several processes append to one stream); the stream
    itself follows Redis from the first value, so every process sees every
    value once, in the server's order, its own included.
    """
    vault = queue_vault(env)
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
    env.attach_archive(writer, record=True)

    def write(values: list[Any]) -> None:
        writer.push(values)

    def end_remote(error: BaseException | None) -> None:
        vault.end_stream(sid, None if error is None else str(error))

    stream.write_through(write, end_remote)
    env.attach_archive(stream, record=False)
    follow_into(vault, stream, on_end=stream.end)


def prepare_remote(
    env: LiveEnv, spec: JobSpec, options: Any, *, job_id: str | None, parent_id: str | None
) -> tuple[LiveJob, Callable[[], None]]:
    """Record a job of ``spec`` and return it with a launcher that puts it on the queue.

    The job's input streams write through to Redis (the vault is durable);
    its output streams and status mirror what the worker records.
    """
    vault = queue_vault(env)
    job = env.make_job(spec, options, job_id=job_id, parent_id=parent_id)
    job.detached = True
    for s in job._outputs.values():
        env.attach_archive(s, record=False)
    for s in job._inputs.values():
        # the worker learns the input ended from an end marker after the stored values
        s.listen_chunks(ignore, partial(_input_ended, vault, s.stream_id))
    for s in job._inputs.values():
        vault.share(s.stream_id)  # another process may feed it too (env.job(job_id))
    mirror = _Mirror(env, vault, job)
    job.on_cancel.append(mirror.cancelled_here)
    lease = _ClientLease(vault, job)
    for s in job._inputs.values():
        s.listen_chunks(ignore, lease.input_ended)
    job.add_done_callback(lambda _j: lease.release())

    def launch() -> None:
        mirror.start()
        vault.mark_remote(job.job_id)
        lease.hold()
        vault.enqueue(spec.name, job.job_id)

    return job, launch


class _ClientLease:
    """Held from a job's launch until every input of it has ended (or the job has)."""

    def __init__(self, vault: QueueVault, job: LiveJob) -> None:
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
            self._release = self.vault.hold_lease(self.job.job_id)

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
    vault = queue_vault(env)
    links = vault.streams(record.job_id)
    ins: dict[str, DataStream] = {}
    outs: dict[str, DataStream] = {}
    for link in links:
        if link.direction == "in":
            ins[link.tag] = env.new_stream(link.stream_id, link.tag, spec.in_tags[link.tag], fused=False)
            vault.share(link.stream_id)
        else:
            s = env.new_stream(link.stream_id, link.tag, spec.out_tags[link.tag], fused=True)
            env.attach_archive(s, record=False)
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
        s.listen_chunks(ignore, partial(_input_ended, vault, s.stream_id))
        # another process may end it: end it here too (feeding it then raises)
        mirror.stops.append(vault.follow_stream(s.stream_id, s.type.tp, None, s.end))
    job.on_cancel.append(mirror.cancelled_here)
    mirror.start()
    # this process feeds it now: it holds the client lease too, while the input is open here
    lease = _ClientLease(vault, job)
    for s in ins.values():
        s.listen_chunks(ignore, lease.input_ended)
    job.add_done_callback(lambda _j: lease.release())
    lease.hold()
    return job


class _Mirror:
    """Keeps a client's job in step with the worker that runs it."""

    def __init__(self, env: LiveEnv, vault: QueueVault, job: LiveJob) -> None:
        self.env = env
        self.vault = vault
        self.job = job
        self.mirroring = False
        self.runs = 0  # "running" records seen: one per worker that took the job
        self.stops: list[Callable[[], None]] = []

    def start(self) -> None:
        for s in self.job._outputs.values():
            self.stops.append(follow_into(self.vault, s))
        self.stops.append(self.vault.follow_statuses(self.job.job_id, self.on_status))
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

    def on_status(self, rec: StatusRecord) -> None:
        job = self.job
        if job.status.done:
            return
        if rec.status == "running":
            self.runs += 1  # the status stream is followed once, each record seen once
            if self.runs == 1:
                job.mark_running()
            else:
                job._retaken(rec.time)  # another worker took it over: a run more
        elif rec.status in DONE:
            # The worker recorded the outputs before the status: read them all first.
            for s in job._outputs.values():
                drain(self.vault, s)
            self.stop()
            self.apply_end(rec)

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
