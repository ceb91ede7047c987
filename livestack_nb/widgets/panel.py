"""JobPanel: one job's status, options, counts, log records and traceback."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypedDict, cast

import traitlets

from ..feeding import Feeding, feedings_of
from ..job import JobHandle, LogEntry
from ._base import LiveWidget
from ._format import esc, fmt_time
from ._messages import FeedProgress, PanelReset, PanelState

__all__ = ["JobPanel"]


class JobState(TypedDict):
    """What a JobPanel shows of its job (every message carries it whole)."""

    status: str
    inputs: dict[str, int]
    outputs: dict[str, int]
    traceback: str
    feeds: list[FeedProgress]


class JobPanel(LiveWidget):
    """A live panel of one job: status, options, in/out counts, logs, traceback.

    Log records (the job's ``job.logger``) are sent as they are appended;
    counts and status are looked at ten times a second while the job runs.

    Parameters
    ----------
    job:
        The job's handle (what ``spec.start()`` returned).
    """

    _model_name = traitlets.Unicode("JobPanelModel").tag(sync=True)
    _view_name = traitlets.Unicode("JobPanelView").tag(sync=True)

    min_interval = 0.1
    _polled = True

    def __init__(self, job: JobHandle, *, title: str | None = None) -> None:
        if not isinstance(job, JobHandle):
            raise TypeError(f"expected a JobHandle, not {type(job).__name__}")
        self.job = job
        self._last_log: LogEntry | None = None
        self._last: JobState | None = None
        super().__init__(title=title or f"{job.spec.name} {job.job_id}")
        self._dirty = True

    def _options(self) -> str:
        try:
            return json.dumps(self.job.options.model_dump(mode="json"), default=str)
        except Exception:
            return str(self.job.options)

    def feedings(self) -> list[Feeding]:
        """The job's background feeds (``job.feed_from``), oldest first."""
        job = self.job
        return [f for t in job.spec.in_tags for f in feedings_of(job.input(t).stream)]

    def _on_front_end(self, widget: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "cancel_feed":
            for f in self.feedings():
                if f.id == content.get("id"):
                    f.cancel()
            self._changed()
            return
        super()._on_front_end(widget, content, buffers)

    def state(self) -> JobState:
        """Status, counts per tag, background feeds and traceback, as shown."""
        job = self.job
        outputs = {t: len(job.output(t)) for t in job.spec.out_tags}
        if job.errors is not None and "errors" not in outputs:
            outputs["errors"] = len(job.errors)  # its dead letters, counted like an output
        return {
            "status": job.status.value,
            "inputs": {t: len(job.input(t).stream) for t in job.spec.in_tags},
            "outputs": outputs,
            "traceback": job.traceback or "",
            "feeds": [cast(FeedProgress, f.progress()) for f in self.feedings()],
        }

    def _new_logs(self) -> list[str]:
        logs = self.job.logs
        start = 0
        if self._last_log is not None:
            for i in range(len(logs) - 1, -1, -1):
                if logs[i] is self._last_log:
                    start = i + 1
                    break
        new = logs[start:]
        if new:
            self._last_log = new[-1]
        return [f"{fmt_time(e.time)} {e.level} {e.message}" for e in new]

    def _reset(self) -> PanelReset:
        self._last_log = None
        self._last = self.state()
        return {"type": "reset", **self._last, "options": self._options(), "logs": self._new_logs()}

    def _delta(self) -> PanelState | None:
        now = self.state()
        logs = self._new_logs()
        if not self.job.done or any(f["state"] == "feeding" for f in now["feeds"]):
            self._dirty = True
        if now == self._last and not logs:
            return None
        self._last = now
        self._snap_dirty = True
        return {"type": "state", **now, "logs": logs}

    def _snapshot(self) -> tuple[str, str]:
        st = self.state()
        logs = "\n".join(f"{e.level} {e.message}" for e in self.job.logs[-20:])
        counts = " · ".join(
            [f"in {k}: {v}" for k, v in st["inputs"].items()]
            + [f"out {k}: {v}" for k, v in st["outputs"].items()]
        )
        feeds = "".join(f"<div>{esc(feed_text(f))}</div>" for f in st["feeds"])
        html = (
            f'<div class="lsnb-snapshot"><div><b>{esc(self.title)}</b> · {esc(st["status"])}</div>'
            f"<div>options {esc(self._options())}</div><div>{esc(counts)}</div>{feeds}"
            f"<pre>{esc(logs)}</pre><pre>{esc(st['traceback'])}</pre></div>"
        )
        return html, f"{self.title}: {st['status']} ({counts})"

    def __repr__(self) -> str:
        return f"<JobPanel {self.job.job_id}>"


def feed_text(p: Mapping[str, Any]) -> str:
    """One feed's progress as a line: ``feeding default: 1,200/5,000 · 800/s · ETA 4.8s``."""
    of = f"/{p['total']:,}" if p["total"] is not None else ""
    eta = f" · ETA {p['eta']:.1f}s" if p["eta"] and p["state"] == "feeding" else ""
    err = f" · {p['error']}" if p["error"] else ""
    return f"{p['state']} {p['tag']}: {p['count']:,}{of} · {p['rate']:,.0f}/s{eta}{err}"
