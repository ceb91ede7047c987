"""LiveEnv: the kitchen where jobs are cooked.

An env owns what jobs share: the vault (the record), the storage provider
(large values), the workers of its specs and the background loop. Keeping them
in one object means a notebook can have a throw-away env per experiment and a
test can check that ``close()`` leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import itertools
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _current
from ._current import current_env, register_spec, use_env
from ._interrupt import held_interrupts
from ._jobs import EnvJobs, _JobHost
from .errors import LivestackError
from .graph import Graph
from .job import JobHandle, JobHost, LiveJob
from .named import NamedStream, check_type, publisher_lock
from .runtime import Runtime
from .spec import JobSpec, TagType
from .status_feed import StatusFeed
from .storage import StorageProvider, open_storage
from .stream import DEFAULT_HISTORY, Activity, Datapoint, DataStream, Flusher
from .vault.base import (
    JobRecord,
    ValidationFailureRecord,
    Vault,
)
from .vault.open import open_vault
from .worker import LiveWorker

if TYPE_CHECKING:
    from .lineage import Stop

__all__ = ["DEFAULT_KEEP_JOBS", "LiveEnv", "current_env", "register_spec", "use_env"]

_names = itertools.count(1)

DEFAULT_KEEP_JOBS = 100
"""Finished top-level jobs (a flow run with its jobs counts as one) an env keeps in memory.

A run of a few specs over a thousand events holds about 150 KB (its streams'
history): a hundred of them is a few MB however long the session runs.
"""


class LiveEnv(EnvJobs):
    """The kitchen: vault, storage provider, workers and runtime loop.

    Parameters
    ----------
    vault:
        ``"memory"`` (default), ``"sqlite:///path.db"`` (a durable file: stream
        history, statuses and lineage survive a restart; see
        :mod:`livestack_nb.vault.sqlite`), ``"redis://host:port/db"`` (shared by
        processes and machines; see :mod:`livestack_nb.vault.redis`) or a
        :class:`~livestack_nb.vault.Vault`.
    storage:
        ``"memory"`` (default), ``"dir:///path"``, a path, or a
        :class:`~livestack_nb.StorageProvider`.
    project_id:
        Name of the project the env records under.
    autostart:
        Run workers for started specs in this process (default ``True``). With
        a Redis vault, ``False`` makes the env a pure client: started jobs go
        on their spec's queue for worker processes (``livestack-nb worker``).
    history:
        How many datapoints each stream keeps in memory.
    large_value_threshold:
        ``bytes``/``str`` values longer than this go to the storage provider.
    keep_jobs:
        How many finished jobs the env keeps in memory (default
        :data:`DEFAULT_KEEP_JOBS`), counting a flow run or a job with the jobs
        it started as one; ``None`` keeps every one. Older finished jobs are
        forgotten with their streams' in-memory history, so a notebook that
        runs a flow in a loop, or a worker serving jobs for days, stays
        bounded. A handle already held (a widget showing the job) keeps
        working; ``env.job(id)`` of a forgotten job reads it back from a
        durable vault, and with the memory vault says it was forgotten.

    Examples
    --------
    >>> env = LiveEnv()
    >>> with env:            # selects it for spec.start() & co
    ...     pass
    >>> env.close()
    """

    def __init__(
        self,
        vault: Vault | str | None = "memory",
        storage: StorageProvider | str | None = None,
        *,
        project_id: str = "default",
        autostart: bool = True,
        history: int = DEFAULT_HISTORY,
        large_value_threshold: int = 1_000_000,
        keep_jobs: int | None = DEFAULT_KEEP_JOBS,
    ) -> None:
        if not isinstance(history, int) or history < 1:
            raise LivestackError(f"history must be an int >= 1, not {history!r}")
        if keep_jobs is not None and (not isinstance(keep_jobs, int) or keep_jobs < 0):
            raise LivestackError(f"keep_jobs must be None or an int >= 0, not {keep_jobs!r}")
        self.vault = open_vault(vault)
        self._durable = self.vault.durable
        try:
            self.storage = open_storage(storage)
        except BaseException:
            self.vault.close()  # a durable vault has a writer thread: stop it
            raise
        self.project_id = project_id
        self.autostart = autostart
        self.history = history
        self.large_value_threshold = large_value_threshold
        self.name = f"{project_id}-{next(_names)}"
        self._runtime = Runtime(self.name)
        self._flusher = Flusher(self.name)  # pushes what per-value calls buffered, on a deadline
        self.status_feed = StatusFeed()  # every job's status changes, for the widgets to follow
        self._lock = threading.RLock()
        self._specs: dict[str, JobSpec] = {}
        self._workers: dict[str, LiveWorker] = {}
        self._retired: list[LiveWorker] = []
        self._jobs: dict[str, LiveJob] = {}
        self._named: dict[str, NamedStream] = {}
        self._claimed: set[str] = set()  # job ids given by callers, taken here
        self._named_locks: list[Any] = []  # open lock files of named streams this env publishes to
        self.keep_jobs = keep_jobs
        # Retention (see keep_jobs): finished top-level jobs in the order they
        # ended, and each top-level job's descendants, forgotten with it.
        self._finished: deque[str] = deque()
        self._family: dict[str, list[str]] = {}
        self._root_of: dict[str, str] = {}
        self._forgotten = 0
        self._closed = False
        self._tokens: list[contextvars.Token[LiveEnv | None]] = []
        self.job_host: JobHost = _JobHost(self)
        """What the env hands each job it makes to report statuses and refused values to."""
        _all_envs.add(self)

    # -- selection ----------------------------------------------------------------

    def __enter__(self) -> LiveEnv:
        self._tokens.append(_current.select(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _current.deselect(self._tokens.pop())

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def runtime(self) -> Runtime:
        """The background event loop (started on first use)."""
        self._check_open()
        return self._runtime

    def _check_open(self) -> None:
        if self._closed:
            raise LivestackError(f"env {self.name!r} is closed")

    # -- specs ----------------------------------------------------------------------

    def register(self, spec: JobSpec) -> JobSpec:
        """Make ``spec`` known by name here; the same name again replaces it."""
        with self._lock:
            self._specs[spec.name] = spec
        return spec

    def spec(self, name: str) -> JobSpec:
        """The spec registered as ``name``."""
        try:
            return self._specs[name]
        except KeyError:
            raise LivestackError(f"no spec named {name!r}; known specs: {sorted(self._specs)}") from None

    def specs(self) -> list[str]:
        """Names of the specs registered here."""
        return sorted(self._specs)

    def workers(self) -> list[LiveWorker]:
        """The in-process workers started here, one per spec (for listings such as the Kitchen panel)."""
        with self._lock:
            return list(self._workers.values())

    def streams(self) -> list[NamedStream]:
        """The named streams opened here with :meth:`stream`, by name."""
        with self._lock:
            return [self._named[n] for n in sorted(self._named)]

    def live_jobs(self) -> list[JobHandle]:
        """Handles of the jobs this process holds in memory (running or recently finished)."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [JobHandle(j) for j in jobs]

    def worker_for(self, spec: JobSpec) -> LiveWorker:
        """The in-process worker of ``spec`` (started on first use)."""
        d = spec.worker_def
        if d is None:
            raise LivestackError(
                f"spec {spec.name!r} has no worker: define one with "
                f"spec.define_worker(processor) or declare it with @job_spec"
            )
        if not self.autostart:
            raise LivestackError(
                f"env {self.name!r} has autostart=False and no other process runs "
                f"workers for spec {spec.name!r}"
            )
        with self._lock:
            w = self._workers.get(spec.name)
            if w is None or w.definition is not d:
                if w is not None:
                    self._retired.append(w)  # it finishes the jobs it has
                w = self._workers[spec.name] = LiveWorker(d, self)
            return w

    def worker(self, name: str) -> LiveWorker:
        """The in-process worker of spec ``name`` (after one of its jobs started)."""
        try:
            return self._workers[name]
        except KeyError:
            raise LivestackError(f"no worker for spec {name!r} has started in this env") from None

    # -- jobs -------------------------------------------------------------------------

    def start(
        self,
        spec: JobSpec,
        options: Any = None,
        *,
        job_id: str | None = None,
        before_launch: Callable[[JobHandle], None] | None = None,
        step: bool = False,
    ) -> JobHandle:
        """Start a job of ``spec``; same as ``spec.start(options, env=self)``.

        ``job_id`` names the job and ``step=True`` starts it in step mode (see
        :meth:`JobSpec.start`). ``before_launch`` is called with the handle once
        the job is wired, before it can run: a caller that must see every output
        (a one-shot run of a spec that emits before reading input) subscribes there.
        """
        if step:
            from ._stepstart import start_stepped

            return start_stepped(spec, options, self, job_id)
        holder: list[JobHandle] = []

        def ready(job: LiveJob) -> None:
            holder.append(JobHandle(job))
            if before_launch is not None:
                before_launch(holder[0])

        self._start(spec, options, job_id=job_id, before_launch=ready)
        return holder[0]

    def _check_new_job_id(self, job_id: str) -> None:
        if not isinstance(job_id, str) or not job_id.strip() or len(job_id) > 200:
            raise LivestackError(
                f"a job id must be a non-empty string of at most 200 characters, not {job_id!r}"
            )
        if "/" in job_id or any(c.isspace() for c in job_id):
            raise LivestackError(f"job id {job_id!r}: no '/' or whitespace (stream ids are made from it)")
        with self._lock:
            known = self._jobs.get(job_id)
            if known is None and job_id not in self._claimed and self.vault.claim_job_id(job_id):
                self._claimed.add(job_id)  # this process's own starts of one id, at once
                return
        record = self.vault.job(job_id) if known is None else None
        if known is not None:
            what = f"a job of spec {known.spec.name!r} ({known._life.status.value})"
        elif record is not None:
            what = f"a job of spec {record.spec!r} ({record.status})"
        else:
            what = "a job another process is starting"
        raise LivestackError(
            f"job id {job_id!r} is taken in env {self.name!r}: {what}; "
            "use env.job(job_id) to reach it, or choose another id"
        )

    def run(
        self,
        spec: JobSpec,
        values: Any = (),
        options: Any = None,
        *,
        output: str | None = None,
        timeout: float | None = None,
        job_id: str | None = None,
    ) -> list[Any]:
        """One-shot: start, feed, end, wait, and return the output's values; see :meth:`JobSpec.run`."""
        feeds = _feeds_by_tag(spec, values)
        out_tag = _output_tag(spec, output)
        collected: list[Any] = []

        def collect(handle: JobHandle) -> None:
            # Subscribed before the job can run: a spec that emits before it
            # reads any input loses nothing.
            handle._job._outputs[out_tag].add_listener(collected.extend)

        job = self.start(spec, options, job_id=job_id, before_launch=collect)
        try:
            for tag, vals in feeds.items():
                job.input(tag).feed_many(vals)
            job.end()
            job.wait(timeout)
            return collected
        except BaseException:
            job.cancel()
            raise

    def _start(
        self,
        spec: JobSpec,
        options: Any,
        *,
        parent_id: str | None = None,
        job_id: str | None = None,
        before_launch: Callable[[LiveJob], None] | None = None,
    ) -> LiveJob:
        # Options first: their validators are user code, and stay interruptible.
        options = spec.validate_options(options)
        if job_id is not None:  # after the options: a refused start leaves the id free
            self._check_new_job_id(job_id)
        # The set-up itself is whole or not done: a kernel interrupt landing in
        # it is held until the job is wired and launched, then cancels that job
        # (its caller never gets the handle) and is raised. See _interrupt.py.
        with held_interrupts() as held:
            job, launch = self.prepare(spec, options, parent_id=parent_id, job_id=job_id)
            if before_launch is not None:
                before_launch(job)
            launch()
            if held.interrupted:
                job.logger.warning("cancelled: the kernel was interrupted while the job was set up")
                job._life.cancel()
        return job

    def prepare(
        self,
        spec: JobSpec,
        options: Any,
        *,
        parent_id: str | None = None,
        graph: Graph | None = None,
        label: str | None = None,
        input_streams: dict[str, DataStream] | None = None,
        output_streams: dict[str, DataStream] | None = None,
        activity: Activity | None = None,
        job_id: str | None = None,
        dead_letter: bool | None = None,
    ) -> tuple[LiveJob, Any]:
        """Create a job with its streams wired, and return it with its launcher.

        Nothing runs until the launcher is called, so a flow can wire all its
        jobs first. ``dead_letter=True`` gives the job an errors stream whatever
        its spec's ``on_error`` (a flow's policy); ``None`` follows the spec.
        """
        self._check_open()
        self.register(spec)
        ran = spec.prepare_run(  # a flow runs its own job; None: a worker runs it
            self,
            options,
            job_id=job_id,
            parent_id=parent_id,
            label=label,
            input_streams=input_streams or {},
            output_streams=output_streams or {},
            activity=activity,
            dead_letter=dead_letter,
        )
        if ran is not None:
            return ran
        opts = spec.validate_options(options)
        if not self.autostart and self.vault.queues:
            # A pure client: the job goes on the spec's queue for a worker process.
            if graph is not None or input_streams or output_streams:
                raise LivestackError(
                    f"env {self.name!r} has autostart=False: its jobs run in worker processes, "
                    f"one spec at a time; a flow (here {spec.name!r} in one) needs autostart=True"
                )
            from ._queued import prepare_remote

            return prepare_remote(self, spec, opts, job_id=job_id, parent_id=parent_id)
        worker = self.worker_for(spec)
        job = self.make_job(
            spec,
            opts,
            job_id=job_id,
            parent_id=parent_id,
            graph=graph,
            label=label,
            input_streams=input_streams,
            output_streams=output_streams,
            activity=activity,
            dead_letter=dead_letter,
        )
        return job, worker.attach(job)

    def stream(self, name: str, type: Any = None) -> NamedStream:
        """The named stream ``name``, made on first use (Livestack's ``DataStream.getOrCreate``).

        Any cell or spec of this env (``job.env.stream(name)``), and with a
        durable vault any process on it, gets the same stream by its name:
        ``stream.emit(x)`` appends a value checked against ``type``, and
        the stream is read like any other (``for v in stream`` from its first
        value, ``subscribe`` for live values, ``replay()``, widgets). See
        :mod:`livestack_nb.named` for what each vault shares.

        Raises
        ------
        LivestackError
            The name is empty, or the stream exists here with another ``type``.
        """
        self._check_open()
        if not isinstance(name, str) or not name.strip():
            raise LivestackError(f"a stream name must be a non-empty string, not {name!r}")
        with self._lock:
            named = self._named.get(name)
            if named is not None:
                check_type(named, type)
                return named
            named = NamedStream(self, name, TagType(Any if type is None else type))
            self._open_named(named)
            self._named[name] = named
            return named

    def _open_named(self, named: NamedStream) -> None:
        vault, sid = self.vault, named.stream_id
        if not self._durable:
            return
        if vault.queues:
            from ._queued import share_named

            share_named(self, named)
            return
        self.attach_archive(named, record=True)
        count = vault.count(sid)
        if count:
            named.resume(count, vault.batches(sid, max(0, count - self.history), count, named.type.tp))

        def first_publish() -> None:
            # One publisher at a time per named stream on a file: a lock held until
            # this env closes (or its process dies), then what others published
            # since this env opened the stream is caught up before going on.
            self._named_locks.append(publisher_lock(vault, named))
            stored = vault.count(sid)
            if stored > len(named):
                named.catch_up(vault.batches(sid, len(named), stored, named.type.tp))

        named._first_publish = first_publish

    # -- retention --------------------------------------------------------------------

    def jobs(self) -> list[JobRecord]:
        """Every job this env's vault recorded, oldest first: id, spec, latest status.

        With a durable vault this includes the jobs of earlier processes on the
        same file. A job whose process died before it ended is reported with
        the last status that process recorded (``running`` or ``requested``):
        never ``completed``.
        """
        return self.vault.jobs()

    def job(self, job_id: str) -> JobHandle:
        """The handle of job ``job_id``.

        A job of this process gives its live handle. A job only the vault knows
        (one recorded by an earlier process on the same file) gives a read-only
        handle: its statuses as recorded, and output streams that have ended
        and replay their whole history from the vault. Its values are
        validated into the spec's types when a spec of that name is registered
        in this env, and read as plain JSON data otherwise.

        Raises
        ------
        LivestackError
            No job of that id is known here or in the vault.
        """
        job = self._jobs.get(job_id)
        if job is None:
            job = self._stored_job(job_id)
        return JobHandle(job)

    def datapoint(self, datapoint_id: str) -> Datapoint:
        """The datapoint of id ``datapoint_id`` (``"<stream id>:<seq>"``, as in
        ``Datapoint.id``, ``Datapoint.parents`` and ``Hop.datapoint_id``), from memory or,
        when memory no longer holds it, from a durable vault.

        Raises
        ------
        KeyError
            (a :class:`LivestackError` too) naming the id: malformed, of a stream
            unknown here, past the stream's end, or no longer held (a truncated
            history on a vault that is not durable).
        TypeError
            ``datapoint_id`` is not a string (naming its type).
        """
        from .lineage import find_datapoint

        return find_datapoint(self, datapoint_id)

    def lineage(self, datapoint: Datapoint | str) -> list[Stop]:
        """The journey of a datapoint (or id) back to the outside input: see
        :meth:`Datapoint.lineage <livestack_nb.Datapoint.lineage>`."""
        from .lineage import lineage

        return lineage(self, datapoint)

    def validation_failures(self, job_id: str | None = None) -> list[ValidationFailureRecord]:
        """Values refused at a tag (``DataValidationError``), oldest first; of one job, or all."""
        return self.vault.validation_failures(job_id)

    def latest_job(self, spec: str | JobSpec) -> JobHandle | None:
        """The handle of the job of ``spec`` (a spec or its name) started last here, if any.

        For watchers that follow a recipe rather than one job, such as a
        flow's graph widget showing the flow's latest run.
        """
        name = spec if isinstance(spec, str) else spec.name
        with self._lock:
            for job in reversed(self._jobs.values()):
                if job.spec.name == name:
                    return JobHandle(job)
        return None

    def flush(self) -> None:
        """Make everything recorded so far durable (a no-op in memory).

        With a durable vault, once this returns every datapoint emitted,
        status set and job started before the call is in the file, and
        survives this process being killed (values fed one by one are pushed first).
        """
        self._flusher.flush_now()
        self.vault.flush()

    # -- closing --------------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Cancel running jobs, stop workers and the loop; leaves no thread behind."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            jobs = list(self._jobs.values())
            workers = [*self._workers.values(), *self._retired]
        for job in jobs:
            if not job._life.status.done and not job._life.detached:  # a detached job runs on elsewhere
                job.logger.info("cancelled: the env closed")
                job._life.cancel()
        for w in workers:
            w.stop(timeout, cancel=True)
        self._flusher.close()
        self._runtime.stop(timeout)
        _current.forget_default(self)
        try:
            self.vault.close()  # with a durable vault: writes what is queued, may raise if it cannot
        finally:
            for lock in self._named_locks:  # after the last write: the next publisher reads it all
                with contextlib.suppress(OSError):
                    lock.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._jobs)} jobs"
        return f"<LiveEnv {self.name!r} vault={type(self.vault).__name__} {state}>"


def _feeds_by_tag(spec: JobSpec, values: Any) -> dict[str, list[Any]]:
    """What a one-shot run feeds, by input tag: a mapping is by tag, anything else
    goes to the spec's one input (``"default"`` or its only tag)."""
    tags = list(spec.in_tags)
    if isinstance(values, Mapping):
        unknown = sorted(str(k) for k in values if k not in spec.in_tags)
        if unknown:
            raise LivestackError(
                f"spec {spec.name!r}: run() got values for input tag(s) {unknown}, but its input tags "
                f"are {sorted(tags)}; pass {{tag: [values...]}} for several tags, a list for one"
            )
        return {str(t): list(v) for t, v in values.items()}
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise LivestackError(
            f"spec {spec.name!r}: run() takes a list of values (or {{tag: [values...]}}), "
            f"not {type(values).__name__}"
        )
    vals = list(values)
    return {spec.sole_tag("input", "run(values)"): vals} if vals or len(tags) == 1 else {}


def _output_tag(spec: JobSpec, output: str | None) -> str:
    if output is not None:
        spec._tag("output", output)
        return output
    return spec.sole_tag("output", "run() (pass output=tag)")


_all_envs: weakref.WeakSet[LiveEnv] = weakref.WeakSet()
_current.set_factory(LiveEnv)


@atexit.register
def _close_all() -> None:
    for env in list(_all_envs):
        with contextlib.suppress(Exception):
            env.close(timeout=1.0)
