"""The stage: what the graph of a stepped run adds to the live graph.

A stepped run (``flow.start(step=True)``) holds every hop of a datapoint at a
gate until it is released. The graph of such a run is where a learner watches
the flow think, so it needs more than counts: the hops released since the last
message (each becomes a dot the browser moves along its edge), the hops
waiting at their gates, which node took the last value, the controls' state,
and on request the journey of one datapoint (its lineage drawn on the graph).

Hops arrive from any thread through ``run.on_hop``; like every listener of a
widget, the callback only records and marks the widget dirty. What is sent
is built in the pump's tick, at most ``SEND_HOPS`` hops a message (the rest
are counted as folded: their counts still change, only their dots are not
drawn). The buttons of the browser ask for work that may take a while (a step
waits until what it caused has settled), so they run on one thread of the
stage's own, never on the kernel's shell thread; it ends when idle.

Messages (each a dict with a ``type``): to the browser, ``reset`` gains a
``stage`` (:meth:`Stage.reset`), ``hops`` is a ``state`` message plus the hops
released since the last one, ``folded`` and the :meth:`Stage.header`, and
``journey`` carries ``journey`` (:meth:`Stage.find_journey`, or ``None``).
From the browser: ``step``, ``play`` with ``interval`` (seconds a hop),
``pause``, and ``journey`` with ``datapoint`` (an id, or ``None`` to clear);
a StreamTable's row sends ``journey`` with ``seq`` (its ``#``, or ``None``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ..job import JobHandle
from ..step import TEXT_MAX, Hop
from ._format import cell, cell_text
from ._svg import truncate

__all__ = ["HOP_TEXT", "SEND_HOPS", "Stage", "hop_dict", "value_text"]

#: Longest text of a value on a dot (the step API's own limit).
HOP_TEXT = TEXT_MAX
#: Most hops one message carries; at full speed the rest are folded.
SEND_HOPS = 50
#: Released hops kept for a view that opens later and for the snapshot.
KEEP_HOPS = 200
#: Waiting hops sent (the oldest first); the count says how many wait in all.
SEND_WAITING = 20
#: Slowest and fastest play the speed slider offers, in seconds a hop.
SLOWEST, FASTEST = 3.0, 0.02


def value_text(value: Any) -> str:
    """A value as the short plain text its dot shows (the table's text of it, cut)."""
    return truncate(cell_text(cell(value)), HOP_TEXT)


def hop_dict(hop: Hop) -> dict[str, Any]:
    """A ``Hop`` as a message part: plain strings and numbers only."""
    return {
        "index": int(hop.index),
        "edge": str(hop.edge),
        "source": None if hop.source is None else str(hop.source),
        "source_tag": str(hop.source_tag),
        "target": None if hop.target is None else str(hop.target),
        "target_tag": str(hop.target_tag),
        "datapoint": str(hop.datapoint_id),
        "text": str(hop.text),  # already cut to TEXT_MAX by the step API
        "scope": hop.scope,
        "failed": hop.failed,
    }


class Stage:
    """Hops, waiting values, controls and journeys of one stepped run.

    Parameters
    ----------
    run:
        The stepped run (``run.stepping`` is true).
    changed:
        Called (from any thread) when something new can be sent.
    stream_edges:
        The graph's edge or port ids by the id of the stream they carry,
        for the stops of a journey that made no hop (yet).
    edge_targets:
        The node each edge or port id leads to (``None``: the outside).
    """

    def __init__(
        self,
        run: JobHandle,
        changed: Callable[[], None],
        stream_edges: dict[str, list[str]],
        edge_targets: dict[str, str | None],
    ) -> None:
        self.run = run
        self._changed = changed
        self._stream_edges = stream_edges
        self._edge_targets = edge_targets
        self._lock = threading.Lock()
        self._new: deque[dict[str, Any]] = deque(maxlen=SEND_HOPS)  # not sent yet, the newest
        self._unsent = 0  # how many hops were released since the last send
        self._seen = -1  # the index of the last hop recorded
        self.counts: dict[str, int] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=KEEP_HOPS)
        self.released = 0
        self.at_work: str | None = None
        self.note = ""
        self.journey: dict[str, Any] | None = None
        self.interval = 0.5
        self._commands: deque[str] = deque()  # asked for by the buttons, not yet done
        self._worker: threading.Thread | None = None
        self._closed = False
        # Subscribed first, then the history: a hop released meanwhile is in one or both,
        # and the hops told early wait until the history before them is recorded.
        self._early: list[Hop] | None = []
        self._sub = run.on_hop(self._on_hop)
        with self._lock:
            for hop in [*run.hops, *self._early]:
                self._record(hop)
            self._early = None

    # -- hops (any thread) ----------------------------------------------------

    def _record(self, hop: Hop) -> None:
        """Count a released hop once (the lock is held)."""
        if hop.index <= self._seen:
            return
        self._seen = hop.index
        d = hop_dict(hop)
        if d["scope"]:  # inside a nested flow: its node is at work, no edge of this graph moves
            self.at_work = d["scope"].split(".", 1)[0]
        else:
            self.counts[d["edge"]] = self.counts.get(d["edge"], 0) + 1
            self.at_work = d["target"]
        self.history.append(d)
        self._new.append(d)
        self._unsent += 1
        self.released += 1

    def _on_hop(self, event: str, hop: Hop) -> None:
        if event == "released":
            with self._lock:
                if self._early is not None:
                    self._early.append(hop)  # recorded after the history before it
                else:
                    self._record(hop)
        elif event == "settled" and hop.failed:  # the job it reached failed on it
            with self._lock:
                for d in reversed(self.history):
                    if d["index"] == hop.index:
                        d["failed"] = True
                        break
        self._changed()

    # -- what is sent ---------------------------------------------------------

    def waiting(self) -> tuple[list[dict[str, Any]], int]:
        """The oldest waiting hops (at most ``SEND_WAITING``) and how many wait."""
        waiting = list(self.run.waiting)
        return [hop_dict(h) for h in waiting[:SEND_WAITING]], len(waiting)

    def header(self) -> dict[str, Any]:
        """The controls' state: playing, the interval, the waiting hops, the node at work."""
        waiting, n = self.waiting()
        with self._lock:
            return {
                "playing": bool(self.run.playing),
                "interval": self.interval,
                "waiting": waiting,
                "n_waiting": n,
                "released": self.released,
                "at_work": self.at_work,
                "note": self.note,
            }

    def take(self) -> tuple[list[dict[str, Any]], int]:
        """The hops released since the last call (the newest ``SEND_HOPS``) and how many
        older ones were folded away."""
        with self._lock:
            new, n = list(self._new), self._unsent
            self._new.clear()
            self._unsent = 0
        return new, n - len(new)

    def reset(self) -> dict[str, Any]:
        """Everything a view that opens now needs: the recent hops, the counts, the journey."""
        with self._lock:
            self._new.clear()
            self._unsent = 0
            recent = list(self.history)[-SEND_HOPS:]
        return {"stepping": True, "hops": recent, **self.header(), "journey": self.journey}

    # -- controls ------------------------------------------------------------

    def control(self, msg: dict[str, Any]) -> None:
        """Do what a button of the browser asked: ``step``, ``play`` (``interval``), ``pause``.

        Called on the kernel's shell thread, so it only queues the command: a step waits
        until what it caused has settled and a pause until the current hop is done, and
        the kernel must go on answering meanwhile. A pause drops steps not yet done.
        """
        kind = msg.get("type")
        if kind == "play":
            interval = msg.get("interval", self.interval)
            if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval != interval:
                self.note = f"play: the interval must be a number of seconds, not {interval!r}"
                self._changed()
                return
            self.interval = min(SLOWEST, max(FASTEST, float(interval)))
        elif kind not in ("step", "pause"):
            return
        self.note = ""  # what an earlier button met is old news (the worker only says what goes wrong)
        with self._lock:
            if kind == "pause":
                self._commands.clear()
            self._commands.append(str(kind))
            if self._worker is None and not self._closed:
                self._worker = threading.Thread(target=self._work, name="lsnb-graph-stage", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._commands or self._closed:
                    self._worker = None
                    return
                kind = self._commands.popleft()
            try:
                if kind == "step":
                    hop = self.run.step()
                    if hop is None:
                        self.note = "nothing is waiting"
                elif kind == "play":
                    if self.run.playing:
                        self.run.pause()  # a new speed: the next hop comes after the new interval
                    self.run.play(interval=self.interval)
                else:
                    self.run.pause()
            except Exception as e:  # shown under the controls; the kernel goes on
                self.note = f"{kind}: {type(e).__name__}: {e}"
                with self._lock:
                    self._commands.clear()
            self._changed()

    # -- journeys -------------------------------------------------------------

    def find_journey(self, datapoint_id: str) -> dict[str, Any]:
        """The journey of ``datapoint_id``: its stops from the outside input to itself, or
        an ``error`` saying why there is none.

        A stop is where the value was: ``where`` (``outside input``, the node that made
        it, ``into <node>`` when a connection's transform changed it on the way in,
        ``outside output``), its ``text``, ``stream``, ``job`` and the ``edges`` of this
        graph it travelled on from there. A node's input that holds the same value its
        source made is left out: it says nothing new.
        """
        env = self.run.env
        try:
            stops = list(reversed(env.lineage(datapoint_id)))
        except KeyError as e:  # a LivestackError too, naming the id
            return {"datapoint": datapoint_id, "stops": [], "error": str(e)}
        edges_of: dict[str, list[str]] = {}
        for hop in self.run.hops:
            if not hop.scope:  # a nested flow's edges are not this graph's
                edges_of.setdefault(hop.datapoint_id, []).append(hop.edge)
        kept: list[tuple[Any, str]] = []
        for stop in stops:
            text = value_text(stop.value) if stop.held else "(no longer held)"
            if stop.side == "in" and stop.node is not None and kept and kept[-1][1] == text:
                continue
            kept.append((stop, text))
        out: list[dict[str, Any]] = []
        used: set[str] = set()  # one stop's value on an edge: a later stop on it is listed only
        to = self._edge_targets
        nested = {job_id: label for label, job_id in self.run.node_jobs.items()}
        for i, (stop, text) in enumerate(kept):
            edges = edges_of.get(stop.datapoint_id) or list(self._stream_edges.get(stop.stream_id, []))
            nxt = kept[i + 1][0].node if i + 1 < len(kept) else None
            if nxt is not None and any(to.get(e) == nxt for e in edges):
                edges = [e for e in edges if to.get(e) == nxt]  # the path, not every branch
            edges = [e for e in edges if e not in used]
            used.update(edges)
            node: str | None = stop.node
            if node is None:
                where = "outside input" if stop.side == "in" else "outside output"
            else:
                where = f"into {node}" if stop.side == "in" else str(node)
            owner = stop.stream_id.split("/", 1)[0]
            if node is not None and owner != self.run.job_id:
                # inside a nested flow: its label here is the nested node's
                outer = nested.get(owner)
                where, node = (f"in {outer}: {where}", outer) if outer else (f"nested: {where}", None)
            out.append(
                {
                    "datapoint": stop.datapoint_id,
                    "stream": stop.stream_id,
                    "node": node,
                    "where": where,
                    "job": stop.job_id,
                    "text": text,
                    "edges": edges,
                }
            )
        return {"datapoint": datapoint_id, "stops": out}

    def show_journey(self, datapoint_id: str | None) -> dict[str, Any] | None:
        """Find and keep the journey shown (``None`` clears it)."""
        self.journey = None if datapoint_id is None else self.find_journey(datapoint_id)
        return self.journey

    # -- lifecycle ------------------------------------------------------------

    def close(self) -> None:
        """Stop listening; a step in progress finishes, none is started."""
        with self._lock:
            self._closed = True
            self._commands.clear()
            worker = self._worker
        self._sub.dispose()
        if worker is not None:
            worker.join(timeout=2.0)
