"""JobTimeline: jobs over time as a live Gantt chart, one lane per worker slot.

The picture that teaches concurrency: a spec with one cook runs its jobs one
after the other in one lane while the rest wait; with four cooks, four lanes
fill at once. It only tells the truth because a job is recorded ``running``
from when a worker slot takes it (:mod:`livestack_nb.slots`), not when it was
started.

Lanes are derived from the recorded intervals, not recorded: each job that
starts running takes the lowest lane of its spec free at that moment (no
other job of the spec running in it), which is what a worker's slots do, so
a spec never shows more lanes than jobs it ran at once (a job left out by
``max_jobs`` gives its lane up).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import traitlets

from ..env import LiveEnv, current_env
from ..errors import LivestackError
from ..job import JobHandle, JobStatus
from ..spec import JobSpec
from ..stream import now
from ._base import LiveWidget
from ._format import esc
from ._messages import TimelineReset, TimelineState
from ._svg import drawing_or_text, truncate
from ._timeline_svg import timeline_list, timeline_svg

__all__ = ["JobTimeline", "MAX_JOBS"]

#: The most jobs a timeline shows; older ones are left out (and counted).
MAX_JOBS = 500
MAX_ERROR = 1000  # characters of a failed job's error sent for its tooltip


@dataclass
class _Group:
    """The jobs of one spec: their lanes, each a list of ``(start, end or None)``."""

    name: str
    concurrency: int | None
    lanes: list[list[tuple[float, float | None]]] = field(default_factory=list)

    def place(self, start: float, end: float | None) -> int:
        """The lowest lane with no job running between ``start`` and ``end``; a new lane if none."""
        inf = float("inf")
        stop = inf if end is None else end
        for i, lane in enumerate(self.lanes):
            if all(not (s < stop and start < (inf if e is None else e)) for s, e in lane):
                lane.append((start, end))
                return i
        self.lanes.append([(start, end)])
        return len(self.lanes) - 1

    def ended(self, lane: int, start: float, end: float) -> None:
        spans = self.lanes[lane]
        for i, (s, e) in enumerate(spans):
            if s == start and e is None:
                spans[i] = (s, end)
                return

    def drop(self, lane: int, start: float, end: float | None) -> None:
        """Forget a span: its job is no longer shown, so it holds its lane no longer.

        A job left out while it runs would otherwise block its lane for ever (it
        is not looked at again, so its end is never seen), and later jobs would
        open lanes beyond the concurrency; the spans kept are those of the jobs
        shown, so they do not grow without bound either.
        """
        with contextlib.suppress(ValueError):
            self.lanes[lane].remove((start, end))


class JobTimeline(LiveWidget):
    """A live Gantt chart of jobs: one lane per worker slot, bars coloured by status.

    Each job is a bar from when a slot took it (``running``) to its end,
    green when completed, red when failed (its error in the tooltip),
    grey when cancelled, blue while it runs; a row above a spec's lanes
    shows how many of its jobs waited for a slot (``requested``) over time.

    Parameters
    ----------
    target:
        A :class:`JobSpec` (every job of it in the current env, also those
        started later; for a :class:`Liveflow`, its runs and their jobs) or a
        list of specs (side by side on one time axis: one cook against four), a
        :class:`JobHandle` (that job, or a flow run and the jobs of its
        nodes) or a :class:`LiveEnv` (every job it holds, grouped by spec).
    title:
        The heading (by default what the target is).
    max_jobs:
        The most jobs shown; the oldest beyond it are left out and counted.
    """

    _model_name = traitlets.Unicode("JobTimelineModel").tag(sync=True)
    _view_name = traitlets.Unicode("JobTimelineView").tag(sync=True)

    #: Statuses are polled (they have no stream): ten looks a second.
    min_interval = 0.1
    _polled = True

    def __init__(
        self,
        target: JobSpec | Sequence[JobSpec] | JobHandle | LiveEnv,
        *,
        title: str | None = None,
        max_jobs: int = MAX_JOBS,
    ) -> None:
        if not isinstance(max_jobs, int) or isinstance(max_jobs, bool) or max_jobs < 1:
            raise LivestackError(f"JobTimeline: max_jobs must be an int >= 1, not {max_jobs!r}")
        self._specs: set[str] | None = None  # the names of the specs shown; None: every one
        specs: list[JobSpec] = []
        self._root: JobHandle | None = None
        if isinstance(target, LiveEnv):
            self._env = target
            name = f"env {target.name}"
        elif isinstance(target, JobHandle):
            self._env = target.env
            self._root = target
            name = f"{target.spec.name} {target.job_id}"
        elif isinstance(target, JobSpec) or (
            isinstance(target, (list, tuple)) and target and all(isinstance(t, JobSpec) for t in target)
        ):
            specs = [target] if isinstance(target, JobSpec) else list(target)
            self._env = current_env()
            self._specs = {s.name for s in specs}
            name = f"spec{'s' if len(specs) > 1 else ''} {', '.join(s.name for s in specs)}"
        else:
            raise TypeError(
                "JobTimeline shows a JobSpec (or a list of them), a JobHandle or a LiveEnv, "
                f"not {type(target).__name__}{' (an empty list)' if target == [] or target == () else ''}"
            )
        self.max_jobs = max_jobs
        self._jobs: dict[str, JobHandle] = {}  # every job seen, oldest first
        self._rows: dict[str, dict[str, Any]] = {}  # job id -> what was last worked out of it
        self._groups: dict[str, _Group] = {}
        for spec in specs if self._specs is not None else ():
            d = spec.worker_def  # the specs' groups in the order given
            self._groups.setdefault(spec.name, _Group(spec.name, d.concurrency if d is not None else None))
        self._sent: dict[str, dict[str, Any]] = {}
        self._sent_groups: list[dict[str, Any]] = []
        self._dropped: list[str] = []  # ids left out since the last message (max_jobs)
        self._left_out: set[str] = set()
        self._kids: dict[str, list[tuple[str, JobHandle]]] = {}  # ended job id -> its nodes' jobs
        self._unsent: set[str] = set()  # ids of the rows worked out again since last sent
        self._state_lock = threading.RLock()  # one look at a time: a job is placed once
        self._now_sent = float("-inf")  # the time the last message said
        self._hidden = 0
        super().__init__(title=title or f"timeline of {name}")
        self._dirty = True

    # -- which jobs ---------------------------------------------------------------

    def _discover(self) -> None:
        """Add the jobs of the target not seen yet (the env is looked at each time)."""
        if self._root is not None:
            found = {self._root.job_id: self._root}
        elif self._env.closed:
            return
        else:
            specs = self._specs
            found = {j.job_id: j for j in self._env.live_jobs() if specs is None or j.spec.name in specs}
            if specs is None:
                self._add(found)
                return
        # A flow run's jobs are its nodes' (nested flows too); a race's change per value.
        # A job seen ended has named the jobs of all its nodes: they are read once
        # more after its end and kept, not looked up again each time.
        todo, seen = list(found.items()), set()
        while todo:
            job_id, job = todo.pop()
            if job_id in seen:
                continue
            seen.add(job_id)
            kids = self._kids.get(job_id)
            if kids is None:
                done = job.status.done  # read before node_jobs, so that what it names is final
                kids = [
                    (kid, known)
                    for kid in job.node_jobs.values()
                    if kid != job_id
                    and (done or kid not in seen)
                    and (known := self._known(job, kid)) is not None
                ]
                if done:
                    self._kids[job_id] = kids
            for kid, known in kids:
                if kid not in seen:
                    found.setdefault(kid, known)
                    todo.append((kid, known))
        if len(self._kids) > len(seen):  # some forgotten by the env: their entries go too
            self._kids = {k: v for k, v in self._kids.items() if k in seen}
        self._add(found)

    def _known(self, parent: JobHandle, job_id: str) -> JobHandle | None:
        known = self._jobs.get(job_id)
        if known is None:
            try:
                known = parent.env.job(job_id)
            except LivestackError:
                return None  # forgotten by its env (keep_jobs): nothing left to show
        return known

    def _add(self, found: dict[str, JobHandle]) -> None:
        jobs, left_out = self._jobs, self._left_out
        for job_id, job in found.items():
            if job_id not in jobs and job_id not in left_out:
                jobs[job_id] = job
        while len(jobs) > self.max_jobs:
            oldest = next(iter(jobs))
            del jobs[oldest]
            row = self._rows.pop(oldest, None)
            if row is not None and row["lane"] is not None:
                self._groups[row["group"]].drop(row["lane"], row["start"], row["end"])
            self._sent.pop(oldest, None)
            self._dropped.append(oldest)
            left_out.add(oldest)
            self._hidden += 1
        # Remembered while the env still holds them (so they are not taken in again), no longer.
        if left_out:
            left_out.intersection_update(found)

    # -- state ----------------------------------------------------------------------

    def _group(self, job: JobHandle) -> _Group:
        name = job.spec.name
        g = self._groups.get(name)
        if g is None:
            d = job.spec.worker_def
            g = self._groups[name] = _Group(name, d.concurrency if d is not None else None)
        return g

    def _row(self, job: JobHandle) -> dict[str, Any]:
        """One job as a bar: when it was requested, ran and ended, its lane and status."""
        statuses = job.statuses
        requested = statuses[0][1]
        start = next((t for s, t in statuses if s is JobStatus.RUNNING), None)
        end = next((t for s, t in statuses if s.done), None)
        status = statuses[-1][0]
        prev = self._rows.get(job.job_id)
        group = self._group(job)
        lane = prev["lane"] if prev is not None else None
        if start is not None and lane is None:
            lane = group.place(start, end)
        elif (
            start is not None
            and lane is not None
            and end is not None
            and prev is not None
            and prev["end"] is None
        ):
            group.ended(lane, start, end)
        row: dict[str, Any] = {
            "id": job.job_id,
            "group": group.name,
            "status": status.value,
            "requested": requested,
            "start": start,
            "end": end,
            "lane": lane,
        }
        if status is JobStatus.FAILED:
            err = job.error
            row["error"] = truncate(
                f"{type(err).__name__}: {err}" if err is not None else "failed", MAX_ERROR
            )
        self._rows[job.job_id] = row
        if row != prev:
            self._unsent.add(job.job_id)
        return row

    def state(self) -> dict[str, Any]:
        """Every job shown (as bars), the spec groups and the time now, as sent to the front end."""
        with self._state_lock:
            return self._state()[0]

    def _state(self) -> tuple[dict[str, Any], bool]:
        """The state, and whether a job shown has not ended yet."""
        self._discover()
        # Only jobs not yet ended are looked at again, in order of their start (then
        # request): lanes are handed out as slots are.
        rows = self._rows
        open_ = [j for j in self._jobs.values() if (r := rows.get(j.job_id)) is None or r["end"] is None]
        unended = False
        for job in sorted(open_, key=_start_key):
            unended = self._row(job)["end"] is None or unended
        ordered = [rows[j] for j in self._jobs]
        shown = {r["group"] for r in ordered}
        groups = [
            {"name": g.name, "concurrency": g.concurrency, "lanes": len(g.lanes)}
            for g in self._groups.values()
            if g.name in shown
        ]
        return {"now": now(), "groups": groups, "jobs": ordered, "hidden": self._hidden}, unended

    def _reset(self) -> TimelineReset:
        with self._state_lock:
            st = self._state()[0]
            self._sent = {r["id"]: r for r in st["jobs"]}
            self._unsent = set()
        self._dropped = []
        self._sent_groups = st["groups"]
        return {"type": "reset", **st}  # type: ignore[typeddict-item]

    def _delta(self) -> TimelineState | None:
        with self._state_lock:
            st, unended = self._state()
            # Only rows worked out again (here or for a snapshot) can differ from those sent.
            unsent, self._unsent = self._unsent, set()
            changed = [r for r in st["jobs"] if r["id"] in unsent and self._sent.get(r["id"]) != r]
        if self._root is None or unended:
            self._dirty = True  # keep looking while a job can change or a new one appear
        groups_changed = st["groups"] != self._sent_groups
        # Only the time moved: a running bar grows in the browser on its own, told the
        # kernel's time once a second.
        ticking = unended and st["now"] - self._now_sent >= 1.0
        if not changed and not groups_changed and not ticking and not self._dropped:
            return None
        self._now_sent = st["now"]
        dropped, self._dropped = self._dropped, []
        for r in changed:
            self._sent[r["id"]] = r
        self._sent_groups = st["groups"]
        self._snap_dirty = True
        return {
            "type": "state",
            "now": st["now"],
            "groups": st["groups"],
            "jobs": changed,
            "dropped": dropped,
            "hidden": st["hidden"],
        }

    def _snapshot(self) -> tuple[str, str]:
        st = self.state()
        failed = [r for r in st["jobs"] if "error" in r]
        # Tooltips need a pointer: a failure is also spelled out under the drawing.
        red = '<div style="color:#b00020;white-space:pre-wrap">'
        errors = "".join(
            f"{red}{esc(r['group'])} job {esc(r['id'])} failed: {esc(truncate(r['error'], 500))}</div>"
            for r in failed[-5:]
        )
        body = drawing_or_text(timeline_svg(st) + errors, timeline_list(st))
        counts = _counts(st["jobs"])
        html = f'<div class="lsnb-snapshot"><div><b>{esc(self.title)}</b> · {esc(counts)}</div>{body}</div>'
        return html, f"{self.title}: {counts}"

    def __repr__(self) -> str:
        return f"<JobTimeline {self.title!r}>"


def _start_key(job: JobHandle) -> tuple[float, float]:
    statuses = job.statuses
    start = next((t for s, t in statuses if s is JobStatus.RUNNING), float("inf"))
    return (start, statuses[0][1])


def _counts(rows: list[dict[str, Any]]) -> str:
    """``6 jobs: 4 completed, 1 failed, 1 running`` (or ``no jobs yet``)."""
    if not rows:
        return "no jobs yet"
    by: dict[str, int] = {}
    for r in rows:
        by[r["status"]] = by.get(r["status"], 0) + 1
    order = ["requested", "running", "completed", "failed", "cancelled"]
    parts = [f"{by[s]} {s}" for s in order if s in by]
    return f"{len(rows)} job{'s' if len(rows) != 1 else ''}: " + ", ".join(parts)
