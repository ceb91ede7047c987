"""The env's jobs: how it makes, records, remembers and forgets them.

:class:`EnvJobs` is the half of :class:`~livestack_nb.LiveEnv` that makes a
job with its streams and records it in the vault, hands it the
:class:`JobHost` it reports to, forgets finished jobs beyond ``keep_jobs``,
and reads a job of an earlier process back from the vault. The other half
(``env.py``) selects the env, starts and runs jobs, owns the workers and the
named streams, and closes everything.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ConfigDict

from .dead_letter import DEAD_LETTER_TYPE, ERRORS, DeadLetter
from .errors import DataValidationError, LivestackError
from .graph import Graph
from .job import JobHost, JobStatus, LiveJob
from .spec import JobSpec, TagType, declared_spec
from .status_feed import StatusChange, StatusFeed
from .storage import StorageProvider
from .stream import Activity, DataStream, Flusher
from .vault.base import (
    BatchRecord,
    JobRecord,
    StatusRecord,
    StreamRecord,
    ValidationFailureRecord,
    Vault,
)

if TYPE_CHECKING:
    from .env import LiveEnv

__all__ = ["EnvJobs"]


class _StoredOptions(BaseModel):
    """Options of a stored job whose spec is not registered here (kept as recorded)."""

    model_config = ConfigDict(extra="allow")


class _StandIn(JobSpec):
    """The spec of a stored job whose own spec is not known here: its stored tags, any types."""

    declared = False


class _JobHost:
    """What the env hands each of its jobs to report to (see :class:`~livestack_nb.job.JobHost`)."""

    __slots__ = ("_env",)

    def __init__(self, env: LiveEnv) -> None:
        self._env = env

    def status_changed(self, job: LiveJob, status: JobStatus) -> None:
        env = self._env
        if env.status_feed:
            env.status_feed.publish(StatusChange(job.job_id, job.spec.name, job.parent_id, status.value))
        if job._life.stored or job._life.detached:
            return  # only the process running a job appends its statuses
        detail = job._life.traceback if status is JobStatus.FAILED else None
        env.vault.add_status(StatusRecord(job.job_id, status.value, time.time(), detail))
        if status.done and env._durable:
            # job.wait() returns after this: what the job emitted is on disk by then.
            try:
                env.vault.flush()
            except LivestackError as e:  # the job has ended all the same; wait() raises this
                job._life.record_error = e

    def validation_failed(self, job: LiveJob, error: DataValidationError) -> None:
        self._env.vault.add_validation_failure(
            ValidationFailureRecord(job.job_id, error.spec, error.tag, error.field, str(error), time.time())
        )

    def start_child(
        self,
        spec: JobSpec,
        options: Any,
        *,
        parent_id: str,
        before_launch: Callable[[LiveJob], None],
    ) -> LiveJob:
        return self._env._start(spec, options, parent_id=parent_id, before_launch=before_launch)


class EnvJobs:
    """Making, recording and forgetting jobs (see the module docstring); the fields are
    set by ``LiveEnv.__init__``."""

    vault: Vault
    storage: StorageProvider
    name: str
    history: int
    large_value_threshold: int
    keep_jobs: int | None
    job_host: JobHost
    status_feed: StatusFeed
    _durable: bool
    _flusher: Flusher
    _lock: threading.RLock
    _specs: dict[str, JobSpec]
    _jobs: dict[str, LiveJob]
    _finished: deque[str]
    _family: dict[str, list[str]]
    _root_of: dict[str, str]
    _forgotten: int

    def new_job_id(self, spec: JobSpec) -> str:
        return f"{spec.name}-{uuid.uuid4().hex[:10]}"

    def new_stream(
        self,
        stream_id: str,
        tag: str,
        value_type: Any,
        *,
        fused: bool,
        activity: Activity | None = None,
        durable: bool = True,
    ) -> DataStream:
        """A stream with this env's history bound and storage.

        With a durable vault it is written through, unless ``durable`` is
        false (an ephemeral tag, or a flow's ``store=`` choice): then it is
        live and in memory only, like a stream of the memory vault.
        """
        stream = DataStream(
            stream_id,
            tag,
            value_type,
            history=self.history,
            storage=self.storage,
            large_value_threshold=self.large_value_threshold,
            fused=fused,
            activity=activity,
            flusher=self._flusher,
        )
        if self._durable and durable:
            self.attach_archive(stream, record=True)
        return stream

    def attach_archive(self, stream: DataStream, *, record: bool) -> None:
        """Let ``stream`` read back from the vault what its memory let go of, and, with
        ``record``, write what it takes through to the vault."""
        vault, sid, tp = self.vault, stream.stream_id, stream.type.tp

        def archive(start: int, stop: int) -> Iterator[BatchRecord]:
            return vault.batches(sid, start, stop, tp)

        recorder = vault.recorder(sid, stream.tag, tp) if record else None
        # What a stream recorded may still be queued for the vault's writer: a
        # whole read flushes it before reading back what memory let go of.
        stream.record_to(recorder, vault.wait_for_room, archive, vault.flush if record else None)

    def make_job(
        self,
        spec: JobSpec,
        options: Any,
        *,
        job_id: str | None = None,
        parent_id: str | None = None,
        graph: Graph | None = None,
        label: str | None = None,
        input_streams: dict[str, DataStream] | None = None,
        output_streams: dict[str, DataStream] | None = None,
        activity: Activity | None = None,
        dead_letter: bool | None = None,
    ) -> LiveJob:
        """Create and record a job; tags without a given stream get a new one.

        A job that dead-letters (``dead_letter``, else its spec's
        ``on_error="dead_letter"``) also gets an ``errors`` stream, recorded
        as an output of tag ``"errors"``.
        """
        recorded_options = self._options_record(spec, options)  # before anything is created
        job_id = job_id or self.new_job_id(spec)
        if graph is None:
            graph = spec.run_graph(job_id)
        if dead_letter is None:
            dead_letter = spec.worker_def is not None and spec.worker_def.on_error == "dead_letter"
        if dead_letter and ERRORS in spec.out_tags:
            raise LivestackError(
                f"spec {spec.name!r} has an output tag {ERRORS!r} of its own: its dead letters "
                f"(on_error='dead_letter') would have nowhere to go; rename that tag"
            )
        ins = dict(input_streams or {})
        owned = [t for t in spec.in_tags if t not in ins]
        # A job that a worker process may run needs its streams in the vault:
        # ephemeral tags apply to jobs that run here (and in flows, always here).
        ephemeral = spec.ephemeral if graph is not None or not self.vault.queues else frozenset()
        for tag in owned:
            ins[tag] = self.new_stream(
                f"{job_id}/in/{tag}",
                tag,
                spec.in_tags[tag],
                fused=False,
                activity=activity,
                durable=f"in:{tag}" not in ephemeral,
            )
        outs = dict(output_streams or {})
        for tag in spec.out_tags:
            if tag not in outs:
                outs[tag] = self.new_stream(
                    f"{job_id}/out/{tag}",
                    tag,
                    spec.out_tags[tag],
                    fused=True,
                    activity=activity,
                    durable=f"out:{tag}" not in ephemeral,
                )
        if dead_letter and ERRORS not in outs:
            outs[ERRORS] = self.new_stream(f"{job_id}/out/{ERRORS}", ERRORS, DEAD_LETTER_TYPE, fused=False)
        job = LiveJob(
            spec,
            cast("LiveEnv", self),
            options,
            job_id=job_id,
            graph=graph,
            parent_id=parent_id,
            label=label,
            input_streams=ins,
            output_streams=outs,
            owned_inputs=owned,
            host=self.job_host,
        )
        job._life.activity = activity
        if dead_letter or (ERRORS in outs and ERRORS not in spec.out_tags):
            job._life.errors = outs[ERRORS]
        self.vault.add_job(
            JobRecord(job_id, spec.name, JobStatus.REQUESTED.value, parent_id, recorded_options, time.time())
        )
        for tag, s in ins.items():
            self.vault.add_stream(StreamRecord(s.stream_id, job_id, "in", tag))
        for tag, s in outs.items():
            self.vault.add_stream(StreamRecord(s.stream_id, job_id, "out", tag))
        if parent_id is not None:
            self.vault.add_child(parent_id, job_id)
        # Known here last: what the env knows (and cancels on close), the vault has.
        with self._lock:
            self._jobs[job_id] = job
            root = self._root_of.get(parent_id, parent_id) if parent_id is not None else None
            if root is not None and root in self._jobs:
                self._root_of[job_id] = root
                self._family.setdefault(root, []).append(job_id)
        job._life.add_done_callback(self._finished_job)
        return job

    def _finished_job(self, job: LiveJob) -> None:
        """A job ended: once a top-level one did, forget the oldest beyond ``keep_jobs``."""
        keep = self.keep_jobs
        if keep is None:
            return
        with self._lock:
            if job.job_id in self._root_of or self._jobs.get(job.job_id) is not job:
                return  # a flow's or a parent's job: kept, and forgotten, with it
            self._finished.append(job.job_id)
            drop = []
            while len(self._finished) > keep:
                drop.append(self._finished.popleft())
            for root in drop:
                self._forget_family(root)

    def _forget_family(self, root: str) -> None:
        """Drop ``root`` and the jobs it started from what the env holds (the lock is held)."""
        ids = [root, *self._family.pop(root, ())]
        for job_id in ids:
            self._root_of.pop(job_id, None)
            job = self._jobs.pop(job_id, None)
            if job is not None:
                self._forgotten += 1
                job._life.release()
        self.vault.forget(ids)

    def _options_record(self, spec: JobSpec, options: Any) -> Any:
        """A job's options as its vault record keeps them.

        A durable vault writes them as JSON on its writer thread, so options
        that cannot be JSON (an ``arbitrary_types_allowed`` field holding a
        client object, say) are refused here, in the cell that started the
        job, rather than stopping the writer later. The memory vault keeps
        the Python values: nothing leaves the process.
        """
        if not hasattr(options, "model_dump"):
            return None
        try:
            return options.model_dump(mode="json")
        except Exception as e:
            if not self._durable:
                return options.model_dump()
            raise LivestackError(
                f"spec {spec.name!r}: options {type(options).__name__} cannot be stored in a durable "
                f"vault ({type(self.vault).__name__}), which keeps them as JSON: {e}"
            ) from e

    def _stored_job(self, job_id: str) -> LiveJob:
        record = self.vault.job(job_id)
        if record is None:
            where = f" or in {self.vault!r}" if self._durable else ""
            forgot = ""
            if self._forgotten and not self._durable:
                forgot = (
                    f"; if it finished before the last {self.keep_jobs} finished jobs it was "
                    f"forgotten (keep_jobs={self.keep_jobs}): keep a handle, raise keep_jobs, "
                    "or use a durable vault, which finds every job"
                )
            raise LivestackError(f"no job {job_id!r} in env {self.name!r}{where}{forgot}")
        links = self.vault.streams(job_id)
        ins = {r.tag: r.stream_id for r in links if r.direction == "in"}
        outs = {r.tag: r.stream_id for r in links if r.direction == "out"}
        spec = self._specs.get(record.spec) or declared_spec(record.spec)
        dead = outs.get(ERRORS) if spec is None or ERRORS not in spec.out_tags else None
        tags = set(outs) - {ERRORS} if dead is not None else set(outs)
        if spec is None or set(spec.in_tags) != set(ins) or set(spec.out_tags) != tags:
            # A stand-in with the stored tags; values come back as plain JSON data.
            spec = _StandIn(record.spec)
            spec.in_tags = {t: TagType(Any) for t in ins}
            spec.out_tags = {t: TagType(Any) for t in outs if not (dead is not None and t == ERRORS)}
        try:
            options = spec.validate_options(record.options or {})
        except Exception:  # the spec's options changed since: keep them as recorded
            options = _StoredOptions.model_validate(record.options or {})
        if (
            not JobStatus(record.status).done and self.vault.queues and self.vault.is_remote(job_id)  # type: ignore[attr-defined]
        ):
            # A queued job that has not ended: its input is read from the vault,
            # so this process can feed it, and follow its outputs live.
            from ._queued import reattach_remote

            job = reattach_remote(cast("LiveEnv", self), spec, options, record)
            with self._lock:
                kept = self._jobs.setdefault(job_id, job)
            if kept is job:
                job._life.add_done_callback(self._finished_job)  # forgotten like any job (keep_jobs)
            return kept

        def restored(sid: str, tag: str, tp: Any) -> DataStream:
            stream = DataStream(
                sid, tag, tp, history=self.history, storage=self.storage, large_value_threshold=None
            )
            self.attach_archive(stream, record=False)
            count = self.vault.count(sid)
            stream.restore(
                count, self.vault.batches(sid, max(0, count - self.history), count, stream.type.tp)
            )
            return stream

        job = LiveJob(
            spec,
            cast("LiveEnv", self),
            options,
            job_id=job_id,
            parent_id=record.parent_id,
            input_streams={t: restored(sid, t, spec.in_tags[t].tp) for t, sid in ins.items()},
            output_streams={
                t: restored(sid, t, DeadLetter if t == ERRORS and dead is not None else spec.out_tags[t].tp)
                for t, sid in outs.items()
            },
            host=self.job_host,
        )
        if dead is not None:
            job._life.errors = job._outputs[ERRORS]
        job._life.restore(self.vault.statuses(job_id), self.vault.children(job_id))
        return job

    def forget_job(self, job: LiveJob) -> None:
        """Drop an ended job a long-running worker process no longer needs to hold."""
        with self._lock:
            if self._jobs.get(job.job_id) is job:
                self._forget_family(job.job_id)
