"""FlowGraph: a flow or job as a live graph of nodes, streams and ports."""

from __future__ import annotations

import time
from typing import Any, cast

import traitlets

from ..attempts import ParallelAttempts
from ..env import LiveEnv, current_env
from ..errors import LivestackError
from ..flow import Liveflow
from ..graph import Graph
from ..job import JobHandle, JobStatus
from ..status_feed import StatusChange
from ..stream import DataStream
from ._base import LiveWidget, live_widgets
from ._format import esc
from ._graph_svg import graph_list, graph_svg, hops_html
from ._messages import (
    GraphEdgeState,
    GraphHops,
    GraphNodeState,
    GraphReset,
    GraphStage,
    GraphState,
    StageHeader,
)
from ._stage import Stage
from ._svg import drawing_or_text, truncate

__all__ = ["FlowGraph"]


def _edge_id(source: str, source_tag: str, target: str, target_tag: str) -> str:
    return f"{source}/{source_tag}->{target}/{target_tag}"


class FlowGraph(LiveWidget):
    """A live graph: specs as nodes coloured by status, streams as edges with counts.

    Nodes are idle (grey), requested, running (blue), completed (green),
    failed (red; the error shows on hover, the full text on click) or
    cancelled. Edges show how many values went through and their rate; a
    flow's exposed inputs and outputs are drawn as ports. The layout is made
    once in the browser; updates change only colours and numbers.

    The graph of a stepped run (``flow.start(step=True)``) is a stage: Step,
    Play and Pause buttons and a speed slider drive the run from the
    browser; every hop moves a dot along its edge labelled with the value's
    text, the node that took the last value is outlined, each edge counts
    its hops. Clicking a dot (or a row of a table of the run's streams)
    shows the datapoint's journey: its lineage back to the outside input
    lit up on the graph, with the value at each stop (:meth:`show_journey`
    does the same from code). The snapshot lists the hops so far.

    Parameters
    ----------
    target:
        A :class:`Liveflow`: its shape, idle (and growing as later cells
        connect more specs), until a run of it starts in the current env,
        then that run live (and each later run in turn); or a
        :class:`JobHandle`: a flow run, or a single job (one node with its
        tags as ports).
    """

    _model_name = traitlets.Unicode("FlowGraphModel").tag(sync=True)
    _view_name = traitlets.Unicode("FlowGraphView").tag(sync=True)
    shape = traitlets.Dict().tag(sync=True)

    #: Statuses are followed (the env's status feed), but edge counts and rates are
    #: looked at: the snapshot is refreshed after every cell, so a cell that ends as
    #: a node fails (a status told a moment after the flow's wait returned) saves it.
    _polled = True

    #: Ten messages a second are plenty for a graph. Statuses are pushed (the env's
    #: status feed marks the graph changed); edge counts and rates are looked at at
    #: this pace only while the shown run's streams are open.
    min_interval = 0.1

    def __init__(self, target: Liveflow | ParallelAttempts | JobHandle, *, title: str | None = None) -> None:
        self._handle: JobHandle | None = None
        self._edge_streams: dict[str, DataStream] = {}
        self._node_jobs: dict[str, JobHandle] = {}
        self._edges_from: dict[str, list[tuple[str, str]]] = {}
        self._edges_to: dict[str, list[tuple[str, str]]] = {}
        self._last: GraphReset | None = None
        self._flow: Liveflow | ParallelAttempts | None = None
        self._env: LiveEnv | None = None
        self._new_run = False  # a job of the flow's spec changed status: look for a newer run
        self._looked = float("-inf")
        self._stage: Stage | None = None
        self._stage_sent: dict[str, Any] = {}
        if isinstance(target, (Liveflow, ParallelAttempts)):
            self._flow = target
            self._env = current_env()
            graph = target.graph()
            name = f"{'flow' if isinstance(target, Liveflow) else 'race'} {target.name}"
        elif isinstance(target, JobHandle):
            self._handle = target
            graph = target.graph
            name = f"{target.spec.name} {target.job_id}"
        else:
            raise TypeError(
                f"expected a Liveflow, a ParallelAttempts or a JobHandle, not {type(target).__name__}"
            )
        shape = self._shape(graph) if graph.nodes else self._single(target)
        super().__init__(shape=shape, title=title or name)
        env = self._env if self._env is not None else self._handle.env if self._handle else None
        if env is not None:
            self._on_dispose(env.status_feed.listen(self._on_status))
        self._on_dispose(self._end_stage)
        self._stage_run()
        self._dirty = True

    def _on_status(self, change: StatusChange) -> None:
        """A status change in the env (any thread): mark the graph changed if it shows it."""
        flow, handle = self._flow, self._handle
        if flow is not None and change.spec == flow.name:
            self._new_run = True  # a run of the flow (the shown one, or a newer one)
        elif (handle is None or handle.job_id not in (change.job_id, change.parent_id)) and not any(
            j.job_id == change.job_id for j in list(self._node_jobs.values())
        ):
            return  # not a job this graph shows
        self._changed()

    # -- shape -------------------------------------------------------------------

    def _shape(self, graph: Graph) -> dict[str, Any]:
        handle = self._handle
        env = handle.env if handle is not None else None
        if env is not None:
            for n in graph.nodes:
                if n.job_id is not None:
                    self._node_jobs[n.id] = env.job(n.job_id)
        edges = []
        self._edges_from, self._edges_to = {}, {}
        # A node without a job fed by the run's own job (a race's attempt) gets a job
        # per value: its edges follow that job (see _follow_nodes), not the run's output.
        per_value = {n.id for n in graph.nodes if n.job_id is None}
        own = {n.id for n in graph.nodes if n.job_id is not None and n.job_id == graph.job_id}
        for e in graph.edges:
            eid = _edge_id(e.source, e.source_tag, e.target, e.target_tag)
            label = e.source_tag if e.source_tag == e.target_tag else f"{e.source_tag}→{e.target_tag}"
            edges.append({"id": eid, "source": e.source, "target": e.target, "label": label})
            self._edges_from.setdefault(e.source, []).append((eid, e.source_tag))
            self._edges_to.setdefault(e.target, []).append((eid, e.target_tag))
            src = self._node_jobs.get(e.source)
            if src is not None and not (e.source in own and e.target in per_value):
                self._edge_streams[eid] = src.output(e.source_tag)
        ports = []
        for x in graph.exposures:
            pid = f"port:{x.direction}:{x.name}"
            ports.append({"id": pid, "name": x.name, "node": x.node, "direction": x.direction})
            if handle is not None:
                self._edge_streams[pid] = (
                    handle.input(x.name).stream if x.direction == "in" else handle.output(x.name)
                )
        nodes = [{"id": n.id, "spec": n.spec} for n in graph.nodes]
        shape: dict[str, Any] = {"nodes": nodes, "edges": edges, "ports": ports}
        if handle is not None and handle.stepping:
            shape["stepping"] = True  # the view leaves room on the edges for the values riding them
        return shape

    def _single(self, target: Liveflow | ParallelAttempts | JobHandle) -> dict[str, Any]:
        assert isinstance(target, JobHandle)
        label = target.spec.name
        self._node_jobs[label] = target
        ports = []
        for tag in target.spec.in_tags:
            pid = f"port:in:{tag}"
            ports.append({"id": pid, "name": tag, "node": label, "direction": "in"})
            self._edge_streams[pid] = target.input(tag).stream
        tags = list(target.spec.out_tags)
        if target.errors is not None:
            tags.append("errors")  # its dead letters, a port like its outputs
        for tag in tags:
            pid = f"port:out:{tag}"
            ports.append({"id": pid, "name": tag, "node": label, "direction": "out"})
            self._edge_streams[pid] = target.output(tag)
        shape: dict[str, Any] = {"nodes": [{"id": label, "spec": label}], "edges": [], "ports": ports}
        if target.stepping:
            shape["stepping"] = True
        return shape

    def _follow(self, *, now_or_never: bool = False) -> None:
        """For a flow: bind to its latest run, once one exists (looked for when a job of
        the flow's spec changed status, or at once with ``now_or_never``). Before its
        first run the flow's shape is looked at twice a second: wiring is not a status."""
        flow, env = self._flow, self._env
        if flow is None or env is None or env.closed:
            return
        now = time.monotonic()
        waiting = self._handle is None and now - self._looked >= 0.5
        if not (self._new_run or now_or_never or waiting):
            return
        self._new_run = False
        self._looked = now
        run = env.latest_job(flow.name)
        if self._handle is None and (run is None or not run.graph.nodes):
            # Not run yet: the graph grows as later cells connect more specs.
            shape = self._shape(flow.graph())
            if shape != self.shape:
                self.shape = shape
                self._snap_dirty = True
            return
        if (
            run is None
            or not run.graph.nodes
            or (self._handle is not None and run.job_id == self._handle.job_id)
        ):
            return
        self._handle = run
        self._node_jobs = {}
        self._edge_streams = {}
        shape = self._shape(run.graph)
        if shape != self.shape:
            self.shape = shape  # the same flow keeps its layout: the front end compares shapes
        self.title = f"flow {flow.name} · run {run.job_id}"
        self._last = None
        self._stage_run()
        if self._stage is not None:  # a stage appears: the view needs its controls at once
            self._send_live(self._reset())

    def _settle(self) -> None:
        with self._send_lock:
            self._follow(now_or_never=True)

    # -- state -------------------------------------------------------------------

    def _follow_nodes(self) -> None:
        """Nodes whose job changes per value (parallel attempts) show the latest one."""
        handle = self._handle
        if handle is None:
            return
        for nid, job_id in handle.node_jobs.items():
            known = self._node_jobs.get(nid)
            if known is not None and known.job_id == job_id:
                continue
            try:
                job = handle.env.job(job_id)
            except LivestackError:
                continue  # forgotten by the env (keep_jobs): the node keeps what it showed
            self._node_jobs[nid] = job
            for eid, tag in self._edges_from.get(nid, ()):
                self._edge_streams[eid] = job.output(tag)
            for eid, tag in self._edges_to.get(nid, ()):
                self._edge_streams[eid] = job.input(tag).stream

    def state(self) -> GraphReset:
        """The current statuses of nodes and counts of edges and ports (the whole state)."""
        self._follow_nodes()
        nodes: dict[str, GraphNodeState] = {}
        for nid, job in self._node_jobs.items():
            st: GraphNodeState = {"status": job.status.value}
            if job.status is JobStatus.FAILED and job.error is not None:
                st["error"] = f"{type(job.error).__name__}: {job.error}"
            nodes[nid] = st
        stage = self._stage
        edges: dict[str, GraphEdgeState]
        if stage is not None:  # a stepped run counts what went through: its released hops
            edges = {eid: {"count": stage.counts.get(eid, 0), "rate": 0.0} for eid in self._edge_streams}
        else:
            edges = {
                eid: {"count": len(s), "rate": 0.0 if s.ended else round(s.stats.rate, 1)}
                for eid, s in self._edge_streams.items()
            }
        status = self._handle.status.value if self._handle is not None else "not started"
        return {"type": "reset", "nodes": nodes, "edges": edges, "status": status}

    def _reset(self) -> GraphReset:
        self._last = self.state()
        if self._stage is None:
            return self._last
        stage = cast(GraphStage, self._stage.reset())
        self._stage_sent = {k: v for k, v in stage.items() if k not in ("hops", "journey", "stepping")}
        return {**self._last, "stage": stage}

    def _delta(self) -> GraphState | GraphHops | None:
        self._follow()
        now = self.state()
        last = self._last
        nodes = {k: v for k, v in now["nodes"].items() if last is None or last["nodes"].get(k) != v}
        edges = {k: v for k, v in now["edges"].items() if last is None or last["edges"].get(k) != v}
        done = self._handle is None or self._handle.done
        quiet = all(s.ended for s in self._edge_streams.values())
        if not (done and quiet) or (self._flow is not None and self._handle is None):
            # counts and rates while the run's streams are open; a flow's shape until it runs
            self._dirty = True
        msg: GraphState | GraphHops = {
            "type": "state",
            "nodes": nodes,
            "edges": edges,
            "status": now["status"],
        }
        if self._stage is not None:
            hops, folded = self._stage.take()
            header = cast(StageHeader, self._stage.header())
            if hops or header != self._stage_sent:
                self._stage_sent = dict(header)
                msg = {**msg, "type": "hops", "hops": cast(Any, hops), "folded": folded, **header}
        unchanged = last is not None and now["status"] == last["status"]
        if msg["type"] == "state" and not nodes and not edges and unchanged:
            return None
        self._last = now
        self._snap_dirty = True
        return msg

    # -- the stage of a stepped run --------------------------------------------

    def _stage_run(self) -> None:
        """Make the stage of the shown run if it is stepped (and end that of an earlier run)."""
        handle = self._handle
        if self._stage is not None and (handle is None or self._stage.run is not handle):
            self._end_stage()
        if handle is None or self._stage is not None or not getattr(handle, "stepping", False):
            return
        by_stream: dict[str, list[str]] = {}
        for eid, s in self._edge_streams.items():
            by_stream.setdefault(s.stream_id, []).append(eid)
        targets: dict[str, str | None] = {e["id"]: e["target"] for e in self.shape["edges"]}
        for p in self.shape["ports"]:
            targets[p["id"]] = p["node"] if p["direction"] == "in" else None
        self._stage = Stage(handle, self._changed, by_stream, targets)
        self._stage_sent = {}
        for w in live_widgets():  # tables of the run's streams: their rows now show journeys
            stream = getattr(w, "stream", None)  # (none yet on a table still being made)
            if getattr(w, "shows_journeys", False) and stream is not None and stream.stream_id in by_stream:
                w._changed()

    def _end_stage(self) -> None:
        stage, self._stage = self._stage, None
        if stage is not None:
            stage.close()

    @property
    def stepping(self) -> bool:
        """Whether the shown run is stepped (the graph has its controls)."""
        return self._stage is not None

    def show_journey(self, datapoint_id: str | None) -> dict[str, Any] | None:
        """Light up the journey of ``datapoint_id`` on the graph of a stepped run.

        The journey is the datapoint's lineage back to the outside input: the
        edges it and its ancestors travelled are highlighted, each stop labelled
        with its value. ``None`` clears it. Clicking a dot, or a row of a
        :class:`StreamTable` of the run's streams, does the same.

        Returns
        -------
        dict or None
            ``{"datapoint": id, "stops": [...]}`` (each stop with ``datapoint``,
            ``stream``, ``node``, ``job``, ``text`` and ``edges``), with an
            ``error`` when the datapoint cannot be found.

        Raises
        ------
        ValueError
            When the shown run is not stepped.
        """
        stage = self._stage
        if stage is None:
            raise ValueError(f"{self.title}: journeys are shown on the graph of a stepped run (step=True)")
        if datapoint_id is not None and not isinstance(datapoint_id, str):
            raise TypeError(f"a datapoint id is a string like 'stream:3', not {type(datapoint_id).__name__}")
        journey = stage.show_journey(datapoint_id)
        with self._send_lock:
            if not self._disposed:
                self._send_live({"type": "journey", "journey": cast(Any, journey)})
        self._snap_dirty = True
        return journey

    def knows_stream(self, stream_id: str) -> bool:
        """Whether this graph shows a stepped run carrying ``stream_id`` (a table's
        row click then asks it for a journey)."""
        return self._stage is not None and any(s.stream_id == stream_id for s in self._edge_streams.values())

    def _on_front_end(self, widget: Any, content: Any, buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        stage = self._stage
        if kind in ("step", "play", "pause") and stage is not None and not self._disposed:
            stage.control(content)
        elif kind == "journey" and stage is not None and not self._disposed:
            dp = content.get("datapoint")
            self.show_journey(dp if isinstance(dp, str) else None)
        else:
            super()._on_front_end(widget, content, buffers)

    def _snapshot(self) -> tuple[str, str]:
        st = self.state()
        failed = [
            (n["id"], s["error"])
            for n in self.shape["nodes"]
            if (s := st["nodes"].get(n["id"])) is not None and "error" in s
        ]
        # Tooltips need a pointer: a failure is also spelled out under the drawing.
        red = '<div style="color:#b00020;white-space:pre-wrap">'
        errors = "".join(f"{red}{esc(nid)} failed: {esc(truncate(err, 500))}</div>" for nid, err in failed)
        stage = self._stage
        extra = ""
        drawn: dict[str, Any] = dict(st)  # the state, and what the stage adds to the drawing
        if stage is not None:
            drawn["at_work"] = stage.at_work
            drawn["hops"] = list(stage.history)
            drawn["journey"] = stage.journey
            extra = hops_html(list(stage.history), stage.released, stage.header(), stage.journey)
        body = drawing_or_text(graph_svg(self.shape, drawn) + errors, graph_list(self.shape, drawn)) + extra
        html = (
            f'<div class="lsnb-snapshot"><div><b>{esc(self.title)}</b> · {esc(st["status"])}</div>'
            f"{body}</div>"
        )
        text = f"{self.title} ({st['status']}): " + ", ".join(n["id"] for n in self.shape["nodes"])
        return html, text

    def __repr__(self) -> str:
        return f"<FlowGraph {self.title!r}>"
