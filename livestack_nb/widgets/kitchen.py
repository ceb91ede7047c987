"""The kernel half of JupyterLab's "Kitchen" side panel.

The panel (``labextension/src/kitchen.ts``) opens a comm to the target
:data:`TARGET` of the active notebook's kernel. ``import livestack_nb`` in a
kernel registers that target by name only (see ``livestack_nb.__init__``), so
nothing here, and nothing heavy, is imported until the panel asks. A kernel
without livestack-nb refuses the comm, and the panel says so.

Each open comm gets a :class:`Kitchen`: a thread that looks at the current
env and sends a JSON snapshot of its specs, jobs, workers and named streams
only when it changed, at most :data:`MAX_RATE` times a second however busy the
kitchen is. It follows the env's status feed: a job starting or ending wakes
it at once. Counts and rates are looked at every ``1 / MAX_RATE`` s while a
job runs or a named stream is open, and every :data:`RECORDS_EVERY` s when
the kitchen is idle. Ages are sent as start times (the browser counts them),
so an idle kitchen sends nothing.

Messages from the panel: ``{"type": "cancel", "job_id": ...}`` cancels a job;
``{"type": "open", "kind": "job" | "stream" | "plot", "id": ...}`` makes a
:class:`~livestack_nb.widgets.JobPanel`, or a
:class:`~livestack_nb.widgets.StreamTable` or
:class:`~livestack_nb.widgets.StreamPlot` of a named stream, and answers ``{"type": "opened",
"model_id": ...}`` for the panel to show in a main-area tab;
``{"type": "close", "model_id": ...}`` disposes it when the tab closes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .._displayed import KITCHEN_TARGET
from ..env import LiveEnv, current_env
from ..feeding import feedings_of
from ..job import JobHandle
from ..status_feed import StatusChange
from ._base import LiveWidget
from ._messages import (
    KitchenJob,
    KitchenMessage,
    KitchenSnapshot,
    KitchenStream,
    KitchenTrouble,
    KitchenWorker,
)

__all__ = ["MAX_JOBS", "MAX_OPEN", "MAX_RATE", "TARGET", "Kitchen", "kitchens", "open_kitchen", "snapshot"]

#: The comm target name the panel opens.
TARGET = KITCHEN_TARGET
#: Most snapshots a Kitchen sends a second.
MAX_RATE = 10.0
#: Most jobs listed (the newest); the counts per status cover all of them.
MAX_JOBS = 300
#: Most panels a kernel serves at once: a browser page reloaded cannot say goodbye, so
#: the oldest comm beyond this is closed (a panel still there asks again).
MAX_OPEN = 8
#: Seconds between two reads of the vault's job records (cheap in memory, a query elsewhere).
RECORDS_EVERY = 1.0

#: The statuses of a job that can still change: the kitchen looks at counts while one is.
_LIVE = ("requested", "running")

_open: list[Kitchen] = []
_open_lock = threading.Lock()


def kitchens() -> list[Kitchen]:
    """The Kitchens of this kernel whose comm is open."""
    with _open_lock:
        return list(_open)


def _sum_len(streams: list[Any]) -> int:
    return sum(len(s) for s in streams)


def _job_row(h: JobHandle) -> KitchenJob:
    spec = h.spec
    ins = [h.input(t).stream for t in spec.in_tags]
    outs = [h.output(t) for t in spec.out_tags]
    rate = 0.0 if h.done else sum(s.stats.rate for s in outs)  # a finished job emits nothing
    statuses = h.statuses
    feeds = [f.progress() for s in ins for f in feedings_of(s)]
    return {
        "id": h.job_id,
        "spec": spec.name,
        "status": h.status.value,
        "created": statuses[0][1] if statuses else None,
        "inputs": _sum_len(ins),
        "outputs": _sum_len(outs),
        "rate": round(rate, 1),
        "feeds": [
            {
                "id": f["id"],
                "tag": f["tag"],
                "state": f["state"],
                "count": f["count"],
                "total": f["total"],
                "rate": round(f["rate"] or 0.0),
                "eta": round(f["eta"], 1) if f["eta"] else None,
            }
            for f in feeds
        ],
    }


def snapshot(env: LiveEnv, records: list[Any] | None = None) -> KitchenSnapshot:
    """What the panel shows of ``env``: specs, jobs, workers and named streams, as JSON data.

    ``records`` are the vault's job records (``env.jobs()``) to list jobs this
    process does not hold (earlier processes on a durable vault, forgotten ones).
    """
    live = {h.job_id: h for h in env.live_jobs()}
    records = list(records or ())  # oldest first, as the vault lists them
    status = {r.job_id: str(r.status) for r in records}
    rows: dict[str, KitchenJob] = {}
    for r in records[-MAX_JOBS:]:  # rows only for the newest: a long-lived vault has many
        rows[r.job_id] = {
            "id": r.job_id,
            "spec": r.spec,
            "status": str(r.status),
            "created": r.created or None,
            "inputs": None,
            "outputs": None,
            "rate": None,
            "feeds": [],
        }
    for job_id, h in live.items():
        try:
            rows[job_id] = _job_row(h)
        except Exception:  # a job being forgotten while looked at: the next look lists it
            continue
        status[job_id] = rows[job_id]["status"]
    jobs = sorted(rows.values(), key=lambda j: (j["created"] or 0.0, j["id"]))
    counts: dict[str, int] = {}
    for st in status.values():
        counts[st] = counts.get(st, 0) + 1
    workers: list[KitchenWorker] = []
    for w in env.workers():
        workers.append(
            {
                "spec": w.spec.name,
                "concurrency": w.definition.concurrency,
                "busy": len(w.running_jobs()),
                "completed": w.stats.jobs_completed,
                "failed": w.stats.jobs_failed,
            }
        )
    streams: list[KitchenStream] = []
    for s in env.streams():
        stats = s.stats
        streams.append({"name": s.name, "count": stats.count, "rate": round(stats.rate, 1)})
    return {
        "type": "snapshot",
        "env": env.name,
        "vault": type(env.vault).__name__,
        "specs": env.specs(),
        "jobs": jobs[-MAX_JOBS:],
        "job_total": len(status),
        "counts": counts,
        "workers": workers,
        "streams": streams,
    }


class Kitchen:
    """One open panel: sends snapshots of the current env, answers cancel and open.

    Parameters
    ----------
    comm:
        The comm the panel opened (ipykernel's ``Comm``: ``send``, ``on_msg``, ``on_close``).
    rate:
        Most snapshots sent a second.
    """

    def __init__(self, comm: Any, *, rate: float = MAX_RATE) -> None:
        self.comm = comm
        self.interval = 1.0 / rate
        self.messages_sent = 0
        self.opened: dict[str, LiveWidget] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._send_lock = threading.Lock()
        comm.on_msg(self._on_msg)
        comm.on_close(lambda _msg: self.close())
        with _open_lock:
            _open.append(self)
            stale = _open[:-MAX_OPEN]
        for k in stale:
            k.close()
            k.comm.close()
        self._thread = threading.Thread(target=self._run, name="livestack-kitchen", daemon=True)
        self._thread.start()

    # -- the sending thread ---------------------------------------------------------

    def _run(self) -> None:
        last: KitchenMessage | None = None
        records: list[Any] = []
        records_at = float("-inf")
        followed: LiveEnv | None = None
        unfollow: Callable[[], None] | None = None
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                busy = True
                try:
                    env = current_env()
                    if env is not followed:  # the current env changed: follow its statuses
                        if unfollow is not None:
                            unfollow()
                        unfollow, followed = env.status_feed.listen(self._on_status), env
                    if started - records_at >= RECORDS_EVERY:
                        records, records_at = env.jobs(), started
                    full = snapshot(env, records)
                    busy = any(j["status"] in _LIVE for j in full["jobs"]) or any(
                        not s.ended for s in env.streams()
                    )
                    snap: KitchenSnapshot | KitchenTrouble = full
                except Exception as e:  # the env closed while looked at: say so, look again
                    snap = {"type": "snapshot", "error": f"{type(e).__name__}: {e}"}
                if snap != last:
                    self._send(snap)
                    last = snap
                # Woken at once by a status change; at most `rate` messages a second,
                # whatever happens: the second wait is the cap.
                self._wake.wait(
                    max(0.0, (self.interval if busy else RECORDS_EVERY) - (time.monotonic() - started))
                )
                self._wake.clear()
                if not self._stop.is_set():
                    self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            if unfollow is not None:
                unfollow()

    def _on_status(self, _change: StatusChange) -> None:
        self._wake.set()

    def _send(self, msg: KitchenMessage) -> None:
        with self._send_lock:
            if self._stop.is_set():
                return
            self.comm.send(msg)
            self.messages_sent += 1

    # -- requests from the panel ---------------------------------------------------

    def _on_msg(self, msg: dict[str, Any]) -> None:
        data = msg.get("content", {}).get("data", {})
        kind = data.get("type") if isinstance(data, dict) else None
        try:
            if kind == "cancel":
                current_env().job(str(data["job_id"])).cancel()
                self._wake.set()
            elif kind == "open":
                widget = self.open(str(data.get("kind")), str(data.get("id")))
                self._send(
                    {
                        "type": "opened",
                        "model_id": widget.model_id,
                        "title": widget.title,
                        "kind": str(data.get("kind")),
                        "id": str(data.get("id")),
                    }
                )
            elif kind == "close":
                w = self.opened.pop(str(data.get("model_id")), None)
                if w is not None:
                    w.dispose()
            elif kind == "refresh":
                self._wake.set()
            else:
                raise ValueError(f"unknown kitchen request {data!r}")
        except Exception as e:
            self._send({"type": "error", "request": data, "error": f"{type(e).__name__}: {e}"})

    def open(self, kind: str, ident: str) -> LiveWidget:
        """What the panel shows in a tab: a job's JobPanel, a named stream's StreamTable or StreamPlot."""
        env = current_env()
        widget: LiveWidget
        if kind == "job":
            from .panel import JobPanel

            widget = JobPanel(env.job(ident))
        elif kind in ("stream", "plot"):
            names = {s.name: s for s in env.streams()}
            if ident not in names:
                raise KeyError(f"no named stream {ident!r} in env {env.name!r}; known: {sorted(names)}")
            if kind == "stream":
                from .table import StreamTable

                widget = StreamTable(names[ident])
            else:
                from .plot import StreamPlot

                widget = StreamPlot(names[ident])
        else:
            raise ValueError(f"cannot open a {kind!r}: expected 'job', 'stream' or 'plot'")
        self.opened[widget.model_id] = widget
        return widget

    def close(self) -> None:
        """Stop sending and dispose the widgets opened from the panel."""
        self._stop.set()
        self._wake.set()
        with _open_lock:
            if self in _open:
                _open.remove(self)
        for w in list(self.opened.values()):
            w.dispose()
        self.opened.clear()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


def open_kitchen(comm: Any, msg: Any = None) -> Kitchen:
    """The comm target's handler: a :class:`Kitchen` on ``comm``."""
    return Kitchen(comm)
