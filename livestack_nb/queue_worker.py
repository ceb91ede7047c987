"""The worker's side of jobs run in another process: :class:`QueueWorker`.

``livestack-nb worker module:spec`` runs one: it takes the jobs of a spec
from its queue, runs each on the env's ordinary in-process worker, follows
the job's input from the vault and writes its outputs and statuses there,
and acknowledges the message once the job's end is recorded. The guarantees
(at-least-once, seen exactly once; leases and takeover; fences; the client's
lease; a server that lost its data) are told in :mod:`livestack_nb.remote`.
It works against the queue contract (:mod:`livestack_nb.vault.queue`) only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from .errors import LivestackError
from .job import LiveJob
from .relay import DONE, RemoteFailure, follow_into, queue_vault
from .spec import JobSpec
from .vault.base import StatusRecord

if TYPE_CHECKING:
    from .env import LiveEnv

__all__ = ["QueueWorker"]

log = logging.getLogger("livestack_nb")


class QueueWorker:
    """Runs the jobs of one spec that any process put on its Redis queue.

    Parameters
    ----------
    env:
        An env with a queue vault, such as Redis (and ``autostart=True``): the jobs run on its
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
        self.vault = queue_vault(env)
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
                    vault.reset_group(spec)
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

    def _may_retry(self, message_id: str, fields: Mapping[Any, Any]) -> bool:
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
        if record.status not in DONE:
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
        held_now = vault.leases_held([j.job_id for j, _ in waiting])
        missing = {
            job.job_id: (job, open_) for (job, open_), held in zip(waiting, held_now, strict=True) if not held
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
        self.vault.reset_group(self.spec.name)

    def _handle(self, message_id: str, fields: Mapping[Any, Any], *, first: bool = False) -> None:
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
        if record.status in DONE:
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
        launch = self.env.worker_for(spec).attach(job)
        stops: list[Callable[[], None]] = []
        for s in job._inputs.values():
            self.env.attach_archive(s, record=False)  # what feeds it is already in Redis
            stops.append(follow_into(vault, s, on_end=s.end))
        stops.append(vault.follow_statuses(job_id, partial(self._on_status, job)))
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
            self.env.forget_job(j)
            with self._lock:
                self._inflight.pop(message_id, None)
                self._lock.notify_all()

        job.add_done_callback(done)
        job.logger.info("taken from the queue by worker %s", self.name)
        launch()

    def _on_status(self, job: LiveJob, rec: StatusRecord) -> None:
        """A cancel from the caller (or an end recorded by another worker) stops the job here."""
        if rec.status not in DONE or job.status.done or job.detached:
            return
        with self._lock:
            mine = [m for m, j in self._inflight.items() if j is job]
        job.detached = True  # recorded already, by whoever ended it
        job.logger.info("ended elsewhere (%s); stopping here", rec.status)
        with contextlib.suppress(Exception):
            job.cancel()
        # whoever ended it recorded that: nothing is left to do for the message
        with contextlib.suppress(Exception):
            self.vault.ack(self.spec.name, mine, self.name)
