"""Datapoints by id and their lineage: ``env.datapoint(id)``, ``datapoint.lineage()``.

Why: every datapoint records the ids of the datapoints it was derived from
(``Datapoint.parents``), but a bare id says nothing to a learner. These look-ups
resolve an id to its datapoint (from memory, or from the vault when memory no
longer holds it or the job ran in an earlier process) and walk the parents back
to the value fed from outside: the *journey* of a value through a flow, with
the stream, the job and node, and the value at each stop.

Where a datapoint lives is read from its stream id, which livestack-nb makes
from the job that owns the stream: ``"<job>/<in|out>/<tag>"`` for a job's own
ports (a run's outside inputs and outputs), ``"<flow run>/<node>/<in|out>/<tag>"``
for the streams of a node inside a flow run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import LivestackError
from .reading import TruncatedHistoryWarning
from .stream import Datapoint

if TYPE_CHECKING:
    from .env import LiveEnv
    from .job import LiveJob
    from .stream import DataStream

__all__ = ["MAX_STOPS", "Stop", "UnknownDatapoint", "find_datapoint", "lineage"]

MAX_STOPS = 100_000
"""Most stops a lineage walks (a loop running for ever makes ever longer ones)."""


class UnknownDatapoint(LivestackError, KeyError):
    """No datapoint of that id can be found (a ``KeyError`` too: a look-up by key failed)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class _NotHeld(UnknownDatapoint):
    """The stream is known but no longer holds the datapoint (its history was truncated)."""


@dataclass(frozen=True)
class Stop:
    """One stop of a datapoint's journey.

    ``job_id`` and ``node`` are the job and node label whose stream holds the
    value (``side`` says whether as its input or its output); both ``None`` for
    the outside: a value fed into a run, or leaving it. ``held`` is ``False``
    for the one stop past a truncated history (the env's ``history`` bound on a
    vault that is not durable): its value is no longer known.
    """

    datapoint_id: str
    stream_id: str
    seq: int
    value: Any
    timestamp: float | None
    job_id: str | None
    node: str | None
    tag: str
    side: str
    parents: tuple[str, ...] = ()
    held: bool = True

    def __str__(self) -> str:
        where = "outside" if self.node is None else f"{self.node} ({self.side})"
        value = repr(self.value) if self.held else "(no longer held)"
        return f"{where} {self.tag}: {value}"


def _parse(datapoint_id: Any) -> tuple[str, int]:
    if not isinstance(datapoint_id, str):  # a wrong argument, not a look-up that failed
        raise TypeError(
            "a datapoint id is a string '<stream id>:<seq>', "
            f"not {type(datapoint_id).__name__} {datapoint_id!r}"
        )
    sid, _, seq = datapoint_id.rpartition(":")
    if not sid or not seq.isdigit():
        raise UnknownDatapoint(f"{datapoint_id!r} is not a datapoint id: expected '<stream id>:<seq>'")
    return sid, int(seq)


class _Place:
    """Where a stream id points: its owner job, node label, side and tag."""

    __slots__ = ("job_id", "node", "owner", "side", "tag")

    def __init__(self, sid: str) -> None:
        parts = sid.split("/")
        self.owner = parts[0]
        self.job_id: str | None = None
        self.node: str | None = None
        self.side = ""
        self.tag = parts[-1]
        if len(parts) == 3 and parts[1] in ("in", "out"):
            self.job_id, self.side = parts[0], parts[1]
        elif len(parts) == 4 and parts[2] in ("in", "out"):
            self.node, self.side = parts[1], parts[2]


def _memory_stream(env: LiveEnv, sid: str, place: _Place) -> tuple[DataStream | None, LiveJob | None]:
    jobs = env._jobs
    owner = jobs.get(place.owner)
    if owner is None:
        return None, None
    job: LiveJob | None = owner
    if place.node is not None:
        node = next((n for n in owner.graph.nodes if n.id == place.node), None)
        job = jobs.get(node.job_id) if node is not None and node.job_id else None
    if job is None:
        return None, None
    for streams in (job._outputs, job._inputs) if place.side == "out" else (job._inputs, job._outputs):
        s = streams.get(place.tag)
        if s is not None and s.stream_id == sid:
            return s, job
    return None, job


def _vault_job(env: LiveEnv, sid: str, place: _Place) -> str | None:
    """The job a vault records as reading or writing stream ``sid``."""
    vault = env.vault
    candidates = [place.owner] if place.node is None else vault.children(place.owner)
    for job_id in candidates:
        if any(r.stream_id == sid for r in vault.streams(job_id)):
            return job_id
    return None


def _from_stream(stream: DataStream, datapoint_id: str, seq: int) -> Datapoint:
    if seq >= len(stream):
        raise UnknownDatapoint(
            f"no datapoint {datapoint_id!r}: stream {stream.stream_id!r} has {len(stream)} "
            f"datapoint(s) (seqs 0..{len(stream) - 1})"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedHistoryWarning)
        for c in stream.chunks_before(seq + 1, seq, reader=f"env.datapoint({datapoint_id!r})"):
            i = seq - c.seq0
            if 0 <= i < len(c.values):
                return Datapoint(datapoint_id, stream.stream_id, seq, c.time, c.values[i], c.parents_of(i))
    raise _NotHeld(
        f"datapoint {datapoint_id!r} is no longer held: stream {stream.stream_id!r} keeps its last "
        f"{stream.history} datapoints in memory (the env's history=) and its vault is not durable; "
        "a durable vault (LiveEnv(vault='sqlite:///...')) keeps every one"
    )


def _resolve(env: LiveEnv, datapoint_id: str) -> tuple[Datapoint, _Place, LiveJob | None, str | None]:
    sid, seq = _parse(datapoint_id)
    place = _Place(sid)
    stream, job = _memory_stream(env, sid, place)
    if stream is not None:
        return _from_stream(stream, datapoint_id, seq), place, job, job.job_id if job else None
    job_id = _vault_job(env, sid, place) if env._durable else None
    if job_id is not None:
        count = env.vault.count(sid)
        if seq >= count:
            raise UnknownDatapoint(
                f"no datapoint {datapoint_id!r}: the vault holds {count} datapoint(s) of stream {sid!r}"
            )
        for b in env.vault.batches(sid, seq, seq + 1):
            i = seq - b.seq0
            if 0 <= i < len(b.values):
                value = b.values[i]
                if i in b.offloaded:
                    value = env.storage.load(value)
                parents = (
                    (f"{b.parent_stream}:{b.parent_seqs[i]}",) if b.parent_stream and b.parent_seqs else ()
                )
                return Datapoint(datapoint_id, sid, seq, b.time, value, parents), place, None, job_id
        raise _NotHeld(f"datapoint {datapoint_id!r} is no longer in the vault (trimmed)")
    where = f" or in {env.vault!r}" if env._durable else ""
    raise UnknownDatapoint(
        f"no datapoint {datapoint_id!r} in env {env.name!r}: no stream {sid!r} is known here{where} "
        "(its job may have been forgotten: see LiveEnv(keep_jobs=...))"
    )


def find_datapoint(env: LiveEnv, datapoint_id: str) -> Datapoint:
    """The datapoint of id ``datapoint_id`` (``env.datapoint``)."""
    return _resolve(env, datapoint_id)[0]


def _stop(env: LiveEnv, dp: Datapoint, place: _Place, job: LiveJob | None, job_id: str | None) -> Stop:
    node = place.node
    if node is None and job_id is not None:
        # A job's own port: a flow run's is the outside (or, for a run nested in
        # another flow, the node it is there); a plain job's is that job's.
        if job is not None:
            flow_run = bool(job.graph.nodes) and job.graph.job_id == job.job_id
            nested, label = job.parent_id is not None, job._life.label
        else:
            record = env.vault.job(job_id)
            flow_run = bool(env.vault.children(job_id))
            nested = record is not None and record.parent_id is not None
            label = record.spec if record is not None else job_id
        if not flow_run or nested:
            node = label
        else:
            job_id = None
    return Stop(
        dp.id, dp.stream_id, dp.seq, dp.value, dp.timestamp, job_id, node, place.tag, place.side, dp.parents
    )


def lineage(env: LiveEnv, datapoint: Datapoint | str) -> list[Stop]:
    """The stops of a datapoint's journey: itself first, then each parent, back to the
    value fed from outside (a datapoint with no parents). A parent no longer held ends
    the list with a stop of ``held=False``."""
    first = datapoint.id if isinstance(datapoint, Datapoint) else datapoint
    dp, place, job, job_id = _resolve(env, first)
    stops = [_stop(env, dp, place, job, job_id)]
    while dp.parents and len(stops) < MAX_STOPS:
        pid = dp.parents[0]
        try:
            dp, place, job, job_id = _resolve(env, pid)
        except _NotHeld:
            sid, seq = _parse(pid)
            p = _Place(sid)
            stops.append(Stop(pid, sid, seq, None, None, None, p.node, p.tag, p.side, (), held=False))
            break
        stops.append(_stop(env, dp, place, job, job_id))
    return stops
