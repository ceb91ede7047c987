"""Liveflow: specs wired into a graph that is itself a spec.

A flow checks each connection when it is written (tags exist, types fit), so
mistakes surface in the cell that made them, not at run time. Starting a flow
starts one job per node and shares streams between them: where an output
feeds exactly one input of the same type, the two are the same stream, and a
map spec downstream runs on the upstream's thread (the fused path). Cycles are
allowed: a run with a cycle counts its work in flight (an :class:`Activity`; a
flow without a cycle counts nothing), and once its outside inputs have ended and
the count is zero, ends the inputs only a cycle feeds, one per quiet moment,
upstream first, so every job finishes. An exposure names a spec the flow holds.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from ._flowrun import Run
from .dead_letter import ERRORS
from .errors import DataValidationError, LivestackError, WiringError
from .graph import Graph, GraphEdge, GraphExposure, GraphNode
from .spec import DEFAULT, InputRef, JobSpec, Node, OutputRef, TagType, can_feed, declare
from .stream import Activity, DataStream

if TYPE_CHECKING:
    from .env import LiveEnv
    from .job import LiveJob
    from .worker import LiveWorkerDef

__all__ = ["STORE", "Connection", "Exposure", "FlowOptions", "Liveflow", "conn", "expose"]

STORE = ("all", "exposed", "outputs", "none")
"""What a flow's run may have a durable vault write: see ``Liveflow(store=...)``."""

Key = tuple[str, str, str, str]


class FlowOptions(BaseModel):
    """Options of a flow run: each node's options by label."""

    model_config = ConfigDict(extra="forbid")
    nodes: dict[str, Any] = {}


@dataclass(frozen=True)
class Connection:
    """An edge of a flow: ``source`` output feeds ``target`` input, maybe transformed."""

    source: OutputRef
    target: InputRef
    transform: Callable[[Any], Any] | None = None

    @property
    def key(self) -> Key:
        """A connection's identity: its two ends (not its transform)."""
        return (self.source.node.label, self.source.tag, self.target.node.label, self.target.tag)

    def __repr__(self) -> str:
        t = " (transformed)" if self.transform else ""
        return f"{self.source!r} -> {self.target!r}{t}"


@dataclass(frozen=True)
class Exposure:
    """A port of a flow: an inner input or output reachable from outside as ``name``."""

    port: InputRef | OutputRef
    name: str


def _as_output(x: Any, flow: str) -> OutputRef:
    if isinstance(x, OutputRef):
        return x
    if isinstance(x, (JobSpec, Node)):
        return x.output(DEFAULT)
    if isinstance(x, InputRef):
        raise WiringError(f"flow {flow!r}: {x!r} is an input; a connection starts at an output")
    raise WiringError(f"flow {flow!r}: cannot connect from {x!r}: expected a spec or spec.output(tag)")


def _as_input(x: Any, flow: str) -> InputRef:
    if isinstance(x, InputRef):
        return x
    if isinstance(x, (JobSpec, Node)):
        return x.input(DEFAULT)
    if isinstance(x, OutputRef):
        raise WiringError(f"flow {flow!r}: {x!r} is an output; a connection ends at an input")
    raise WiringError(f"flow {flow!r}: cannot connect to {x!r}: expected a spec or spec.input(tag)")


def conn(source: Any, target: Any, transform: Callable[[Any], Any] | None = None) -> Connection:
    """A connection for ``Liveflow(name, connections=[...])``; checked by the flow."""
    return Connection(_as_output(source, "?"), _as_input(target, "?"), transform)


def expose(port: InputRef | OutputRef, name: str) -> Exposure:
    """An exposure for ``Liveflow(name, exposures=[...])``."""
    return Exposure(port, name)


def _as_label(node: Node) -> str:
    return f" (labeled {node.label!r})" if node.label != node.spec.name else ""


def _fmt_tags(tags: Mapping[str, TagType]) -> str:
    return "{" + ", ".join(f"{t}: {tp.name}" for t, tp in tags.items()) + "}"


class Liveflow(JobSpec):
    """Specs wired together; a flow is a :class:`JobSpec` itself.

    Parameters
    ----------
    name:
        The flow's spec name.
    connections, exposures:
        The declarative form: ``[ls.conn(a, b), ...]`` and
        ``[ls.expose(box.output(), "boxes"), ...]``.
    on_error:
        ``"dead_letter"``: every job of a run sends a value its processor
        could not process (after its spec's retries) to the run's ``errors``
        stream (``run.errors``) and goes on, whatever its spec's own
        ``on_error``. ``None`` (default): each spec's own policy. Either way,
        the dead letters of all jobs of a run are gathered in ``run.errors``
        and drawn in the graph as an ``errors`` node. Settable later
        (``flow.on_error = ...``); it applies to the runs started after.
    store:
        What a durable vault writes of a run: ``"all"`` (default: every
        stream, intermediate ones too), ``"exposed"`` (the flow's exposed
        inputs and outputs), ``"outputs"`` (its exposed outputs only) or
        ``"none"``. Streams not written are live and in memory only (bounded
        by the env's ``history``); statuses and lineage are recorded either
        way, and a spec's ``ephemeral`` tags are never written. Settable
        later; see the README's "What is stored" for what each choice
        survives.

    Examples
    --------
    >>> flow = Liveflow("pizzeria")                          # doctest: +SKIP
    >>> flow.connect(knead, bake)                            # doctest: +SKIP
    >>> flow.expose(knead.input(), "orders")                 # doctest: +SKIP
    >>> run = flow.start(); run.input("orders").feed(order)  # doctest: +SKIP

    Without exposures, the one input no connection feeds and the one output no
    connection reads (if there is exactly one of each) are the flow's
    ``"default"`` tags.
    """

    def __init__(
        self,
        name: str,
        connections: Iterable[Connection] = (),
        exposures: Iterable[Exposure] = (),
        *,
        on_error: str | None = None,
        store: str = "all",
    ) -> None:
        if not isinstance(name, str) or not name:
            raise LivestackError(f"a flow needs a non-empty name, not {name!r}")
        self.name = name
        self.on_error = on_error
        self.store = store
        self.ephemeral: frozenset[str] = frozenset()
        self.options_model = FlowOptions
        self.worker_def = None
        self._lock = threading.RLock()
        self._nodes: dict[str, Node] = {}
        self._connections: dict[Key, Connection] = {}
        self._in: dict[str, InputRef] = {}
        self._out: dict[str, OutputRef] = {}
        for c in connections:
            self.connect(c.source, c.target, transform=c.transform)
        for e in exposures:
            self.expose(e.port, e.name)
        declare(self)
        from ._current import register_spec

        register_spec(self)

    # -- building -----------------------------------------------------------------

    def _place(self, node: Node) -> None:
        old = self._nodes.get(node.label)
        if old is not None and old.spec.name != node.spec.name:
            raise WiringError(
                f"flow {self.name!r}: label {node.label!r} is already spec {old.spec.name!r}; "
                f"place {node.spec.name!r} under another label with .labeled(...)"
            )
        if node.spec is self:
            raise WiringError(f"flow {self.name!r} cannot contain itself")
        self._nodes[node.label] = node  # a re-run cell brings the newest definition

    def add(self, spec: JobSpec | Node) -> Liveflow:
        """Place a spec in the flow without connecting it (a one-node flow)."""
        with self._lock:
            self._place(spec if isinstance(spec, Node) else Node(spec, spec.name))
        return self

    def connect(
        self,
        source: JobSpec | Node | OutputRef,
        target: JobSpec | Node | InputRef,
        transform: Callable[[Any], Any] | None = None,
    ) -> Connection:
        """Feed ``source``'s output into ``target``'s input, checked now.

        Raises
        ------
        WiringError
            A tag does not exist, or the output type cannot feed the input
            type (pass ``transform=`` to convert). The message names both ends,
            their types and the tags that exist.
        """
        src = _as_output(source, self.name)
        dst = _as_input(target, self.name)
        s_tags, d_tags = src.node.spec.out_tags, dst.node.spec.in_tags
        ends = f"{src.node!r} outputs {_fmt_tags(s_tags)}, {dst.node!r} inputs {_fmt_tags(d_tags)}"
        if src.tag not in s_tags:
            raise WiringError(
                f"flow {self.name!r}: cannot connect {src!r} to {dst!r}: "
                f"{src.node!r} has no output tag {src.tag!r}; {ends}"
            )
        if dst.tag not in d_tags:
            raise WiringError(
                f"flow {self.name!r}: cannot connect {src!r} to {dst!r}: "
                f"{dst.node!r} has no input tag {dst.tag!r}; {ends}"
            )
        if transform is not None and not callable(transform):
            raise WiringError(f"flow {self.name!r}: transform of {src!r} -> {dst!r} is not callable")
        s_type, d_type = s_tags[src.tag], d_tags[dst.tag]
        if transform is None and not can_feed(s_type, d_type):
            raise WiringError(
                f"flow {self.name!r}: cannot connect {src!r} ({s_type.name}) to {dst!r} "
                f"({d_type.name}): {s_type.name} values do not fit {d_type.name}; "
                f"pass transform= to convert them; {ends}"
            )
        with self._lock:
            self._place(src.node)
            self._place(dst.node)
            c = Connection(src, dst, transform)
            self._connections[c.key] = c
        return c

    def expose(self, port: InputRef | OutputRef, name: str) -> Exposure:
        """Make an inner input or output a port of the flow, called ``name``."""
        if not isinstance(name, str) or not name:
            raise WiringError(f"flow {self.name!r}: an exposure needs a non-empty name, not {name!r}")
        if isinstance(port, InputRef):
            tags = port.node.spec.in_tags
            side = "input"
        elif isinstance(port, OutputRef):
            tags = port.node.spec.out_tags
            side = "output"
        else:
            raise WiringError(
                f"flow {self.name!r}: expose {name!r}: expected spec.input(tag) or spec.output(tag), "
                f"not {port!r}"
            )
        if port.tag not in tags:
            raise WiringError(
                f"flow {self.name!r}: cannot expose {port!r} as {name!r}: {port.node!r} has no "
                f"{side} tag {port.tag!r}; its {side} tags are {_fmt_tags(tags)}"
            )
        with self._lock:
            placed = self._nodes.get(port.node.label)
            if self._nodes and (placed is None or placed.spec.name != port.node.spec.name):
                # Livestack's rule: a port of a spec the flow does not hold would be a
                # separate piece, fed or read by nothing else in the flow. (An empty
                # flow takes it as its one spec.)
                held = ", ".join(repr(n) for n in self._nodes.values()) or "none yet"
                raise WiringError(
                    f"flow {self.name!r}: cannot expose {port!r} as {name!r}: spec "
                    f"{port.node.spec.name!r}{_as_label(port.node)} is not part of the flow; connect it "
                    f"first (or flow.add(...) it to run on its own); the flow's specs: {held}"
                )
            ports: dict[str, Any] = self._in if isinstance(port, InputRef) else self._out
            known = ports.get(name)
            if known is not None and (known.node.label, known.tag) != (port.node.label, port.tag):
                raise WiringError(
                    f"flow {self.name!r}: {side} {name!r} is already exposed as {known!r}; "
                    f"cannot expose {port!r} under the same name"
                )
            self._place(port.node)  # a re-run cell brings the newest definition
            ports[name] = port
        return Exposure(port, name)

    def derive(self, name: str, *, options: Mapping[str, Any] | None = None) -> JobSpec:
        raise LivestackError(
            f"flow {self.name!r} cannot be derived: derive its specs and wire them into a new flow "
            "(per-node options are given at start: flow.start({label: options}))"
        )

    @property
    def on_error(self) -> str | None:
        """The flow's policy for values a job cannot process (see the class docstring)."""
        return self._on_error

    @on_error.setter
    def on_error(self, value: str | None) -> None:
        if value not in (None, "dead_letter"):
            raise LivestackError(
                f"flow {self.name!r}: on_error must be None (each spec's own policy) or "
                f"'dead_letter', not {value!r}; 'fail' and 'skip' are set per spec"
            )
        self._on_error = value

    @property
    def store(self) -> str:
        """What a durable vault writes of a run (see the class docstring)."""
        return self._store

    @store.setter
    def store(self, value: str) -> None:
        if value not in STORE:
            choices = ", ".join(repr(c) for c in STORE)
            raise LivestackError(f"flow {self.name!r}: store must be one of {choices}, not {value!r}")
        self._store = value

    def _dead_letters(self, label: str, forced: bool | None = None) -> bool:
        """Whether the node ``label`` sends failing values to the errors stream in a run."""
        if forced or self._on_error == "dead_letter":
            return True
        spec = self._nodes[label].spec
        if isinstance(spec, Liveflow):
            return any(spec._dead_letters(lbl) for lbl in spec._nodes)
        return spec.worker_def is not None and spec.worker_def.on_error == "dead_letter"

    def define_worker(self, processor: Callable[..., Any], **kw: Any) -> LiveWorkerDef:
        raise LivestackError(f"flow {self.name!r} runs its specs' workers; it has no worker of its own")

    # -- what the flow looks like ---------------------------------------------

    @property
    def connections(self) -> list[Connection]:
        return list(self._connections.values())

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes.values())

    def _spec_of(self, ref: InputRef | OutputRef) -> JobSpec:
        return self._nodes[ref.node.label].spec

    def ports(self) -> tuple[dict[str, InputRef], dict[str, OutputRef]]:
        """The exposed inputs and outputs, by name (with the default ones filled in)."""
        with self._lock:
            ins, outs = dict(self._in), dict(self._out)
            fed = {(c.target.node.label, c.target.tag) for c in self._connections.values()}
            read = {(c.source.node.label, c.source.tag) for c in self._connections.values()}
            if not ins:
                free_in = [
                    n.input(t)
                    for n in self._nodes.values()
                    for t in n.spec.in_tags
                    if (n.label, t) not in fed
                ]
                if len(free_in) == 1:
                    ins[DEFAULT] = free_in[0]
            if not outs:
                free_out = [
                    n.output(t)
                    for n in self._nodes.values()
                    for t in n.spec.out_tags
                    if (n.label, t) not in read
                ]
                if len(free_out) == 1:
                    outs[DEFAULT] = free_out[0]
        return ins, outs

    @property
    def in_tags(self) -> dict[str, TagType]:  # type: ignore[override]
        ins, _ = self.ports()
        return {name: self._spec_of(ref).in_tags[ref.tag] for name, ref in ins.items()}

    @property
    def out_tags(self) -> dict[str, TagType]:  # type: ignore[override]
        _, outs = self.ports()
        return {name: self._spec_of(ref).out_tags[ref.tag] for name, ref in outs.items()}

    def graph(self) -> Graph:
        """The flow's shape (no jobs yet)."""
        ins, outs = self.ports()
        dead = {lbl: None for lbl in self._nodes if self._dead_letters(lbl)}
        return self._graph(ins, outs, {}, {}, None, dead)

    def _graph(
        self,
        ins: dict[str, InputRef],
        outs: dict[str, OutputRef],
        job_ids: dict[str, str],
        streams: dict[tuple[str, str], DataStream],
        job_id: str | None,
        dead: Mapping[str, str | None],
    ) -> Graph:
        """The graph; ``dead`` maps the labels of nodes that dead-letter to their errors stream id."""

        def sid(label: str, tag: str) -> str | None:
            s = streams.get((label, tag))
            return s.stream_id if s is not None else None

        nodes = tuple(
            GraphNode(label, n.spec.name, tuple(n.spec.in_tags), tuple(n.spec.out_tags), job_ids.get(label))
            for label, n in self._nodes.items()
        )
        dead_edges: tuple[GraphEdge, ...] = ()
        if dead:
            # The dead letters as a node of their own, fed by each job that sends some.
            sink = ERRORS if ERRORS not in self._nodes else f"{ERRORS} (dead letters)"
            nodes += (GraphNode(sink, "dead letters", (ERRORS,), ()),)
            dead_edges = tuple(GraphEdge(lbl, ERRORS, sink, ERRORS, sid) for lbl, sid in dead.items())
        edges = (
            tuple(
                GraphEdge(
                    c.source.node.label,
                    c.source.tag,
                    c.target.node.label,
                    c.target.tag,
                    sid(c.source.node.label, c.source.tag),
                    c.transform is not None,
                )
                for c in self._connections.values()
            )
            + dead_edges
        )
        exposures = tuple(
            [GraphExposure(name, r.node.label, r.tag, "in") for name, r in ins.items()]
            + [
                GraphExposure(name, r.node.label, r.tag, "out", sid(r.node.label, r.tag))
                for name, r in outs.items()
            ]
        )
        return Graph(self.name, nodes, edges, exposures, job_id)

    def validate_options(self, options: Any) -> FlowOptions:
        """Options of a run: ``{label: options}`` for the flow's nodes."""
        if isinstance(options, FlowOptions):
            return options
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise DataValidationError(
                f"flow {self.name!r}: options must map node labels to their options, "
                f"not {type(options).__name__}",
                spec=self.name,
                tag="options",
            )
        raw = dict(options.get("nodes", options)) if set(options) == {"nodes"} else dict(options)
        unknown = sorted(set(raw) - set(self._nodes))
        if unknown:
            raise DataValidationError(
                f"flow {self.name!r}: options for unknown node(s) {unknown}; "
                f"its nodes are {sorted(self._nodes)}",
                spec=self.name,
                tag="options",
                field=unknown[0],
            )
        # Each node's options validated now, with every node's defaults: their
        # validators are user code, and a run's set-up holds interrupts.
        return FlowOptions(
            nodes={lbl: n.spec.validate_options(raw.get(lbl)) for lbl, n in self._nodes.items()}
        )

    def _back_edges(self, ins: dict[str, InputRef]) -> tuple[set[Key], dict[str, int]]:
        """Connections that close a cycle (found by depth-first search from the
        exposed inputs), and the order the search met the nodes in (upstream first)."""
        adj: dict[str, list[Connection]] = defaultdict(list)
        for c in self._connections.values():
            adj[c.source.node.label].append(c)
        state: dict[str, int] = {}
        back: set[Key] = set()

        order: dict[str, int] = {}

        def visit(u: str) -> None:
            state[u] = 1
            order[u] = len(order)
            for c in adj[u]:
                v = c.target.node.label
                if state.get(v) == 1:
                    back.add(c.key)
                elif v not in state:
                    visit(v)
            state[u] = 2

        for label in [r.node.label for r in ins.values()] + list(self._nodes):
            if label not in state:
                visit(label)
        return back, order

    # -- running ----------------------------------------------------------------

    def prepare_run(
        self,
        env: LiveEnv,
        options: Any,
        *,
        job_id: str | None = None,
        parent_id: str | None,
        label: str | None,
        input_streams: dict[str, DataStream],
        output_streams: dict[str, DataStream],
        activity: Activity | None = None,
        dead_letter: bool | None = None,
    ) -> tuple[LiveJob, Callable[[], None]] | None:
        """Create the run's jobs and streams, wired; return the flow job and its launcher.

        Overrides :meth:`JobSpec.prepare_run`: a flow's job is run by the flow
        (its jobs wired together), not by a worker of its own.

        ``activity`` is the count of an enclosing flow with a cycle: a nested run
        counts its work there too, so the parent never takes it for quiet.
        ``dead_letter=True`` (the policy of a flow this one is nested in)
        makes every job of the run dead-letter.
        """
        with self._lock:
            if not self._nodes:
                raise WiringError(f"flow {self.name!r} has no specs yet: connect or add some")
            run = Run(
                self,
                env,
                self.validate_options(options),
                job_id,
                parent_id,
                label,
                input_streams,
                output_streams,
                activity,
                dead_letter,
            )
            return run.job, run.launch

    def __repr__(self) -> str:
        return f"<Liveflow {self.name!r}: {len(self._nodes)} specs, {len(self._connections)} connections>"
