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
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from . import step
from .dead_letter import DEAD_LETTER_TYPE, ERRORS
from .errors import DataValidationError, JobClosedError, LivestackError, WiringError
from .graph import Graph, GraphEdge, GraphExposure, GraphNode
from .spec import DEFAULT, InputRef, JobSpec, Node, OutputRef, TagType, can_feed, declare
from .stream import Activity, Chunk, DataStream

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
        from .env import register_spec

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
    ) -> tuple[LiveJob, Callable[[], None]]:
        """Create the run's jobs and streams, wired; return the flow job and its launcher.

        ``activity`` is the count of an enclosing flow with a cycle: a nested run
        counts its work there too, so the parent never takes it for quiet.
        ``dead_letter=True`` (the policy of a flow this one is nested in)
        makes every job of the run dead-letter.
        """
        with self._lock:
            if not self._nodes:
                raise WiringError(f"flow {self.name!r} has no specs yet: connect or add some")
            run = _Run(
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


class _Forward:
    """Feeds an input stream from several sources (fan-in), through a transform,
    or from an exposed input that also has connections."""

    def __init__(self, run: _Run, stream: DataStream, in_type: TagType, label: str, spec_name: str) -> None:
        # Weakly: the run holds its forwards, and a finished run must be freed
        # without Python's cycle collector (see LiveJob.release).
        self._run = weakref.ref(run)
        self.spec_name = spec_name
        self.stream = stream
        self.in_type = in_type
        self.label = label
        self.remaining = 0  # sources not closing a cycle, still open
        self.has_back = False  # fed by a cycle too: the run ends it once quiet
        self._lock = threading.Lock()

    def add_source(
        self, source: DataStream, connection: Connection | None, back: bool, gate: step.Gate | None = None
    ) -> None:
        if back:
            self.has_back = True
        else:
            self.remaining += 1
        if gate is not None:  # step mode: each value waits there for its hop
            gate.deliver = lambda chunk: self.forward(connection, chunk)
            gate.finish = lambda _err: self.source_ended(back)
            source.listen_chunks(gate.arrive, gate.ended)
            return
        source.listen_chunks(
            lambda chunk: self.forward(connection, chunk),
            lambda _err: self.source_ended(back),
        )

    def forward(self, connection: Connection | None, chunk: Chunk) -> None:
        values = chunk.values
        parents: list[int] | range = range(chunk.seq0, chunk.seq0 + len(values))
        run = self._run()
        if run is None:
            return  # the run is gone: nothing reads this any more
        if connection is not None and connection.transform is not None:
            fn = connection.transform
            out: list[Any] = []
            kept: list[int] = []
            for i, v in enumerate(values):
                try:
                    r = fn(v)
                except Exception as e:
                    run.fail(e, f"the transform of {connection!r} raised")
                    return
                if r is not None:
                    out.append(r)
                    kept.append(chunk.seq0 + i)
            values, parents = out, kept
        try:
            values = self.in_type.check_many(values, spec=self.spec_name, tag=self.stream.tag, side="input")
            self.stream.push(values, chunk.stream_id, parents)
        except DataValidationError as e:
            run.env._validation_failed(run.job, e)
            run.fail(e, f"a value reaching {self.label}.input({self.stream.tag!r}) did not fit")
        except JobClosedError:
            run.job.logger.warning(
                "%d value(s) for %s.input(%r) arrived after it ended; dropped",
                len(values),
                self.label,
                self.stream.tag,
            )

    def source_ended(self, back: bool) -> None:
        if back:
            return
        with self._lock:
            self.remaining -= 1
            last = self.remaining == 0
        if not last:
            return
        if self.has_back:
            run = self._run()
            if run is not None:
                run.check_quiet()  # only the cycle feeds it now
        else:
            self.stream.end()


def _call(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    fn = method()
    if fn is not None:
        fn()


class _Run:
    """One start of a flow: builds streams and jobs, then watches them."""

    def __init__(
        self,
        flow: Liveflow,
        env: LiveEnv,
        options: FlowOptions,
        job_id: str | None,
        parent_id: str | None,
        label: str | None,
        input_streams: dict[str, DataStream],
        output_streams: dict[str, DataStream],
        activity: Activity | None,
        dead_letter: bool | None = None,
    ) -> None:
        self.flow = flow
        self.env = env
        self._lock = threading.Lock()
        self._quiet_lock = threading.Lock()
        self.forwards: list[_Forward] = []
        self.stepper: step.Stepper | None = None
        ins, outs = flow.ports()
        nodes = flow._nodes
        conns = list(flow._connections.values())
        back, order = flow._back_edges(ins)
        stepper = self.stepper = step.current()
        # Only a flow with a cycle (or inside one), or a stepped one, counts its work:
        # others pay nothing.
        if (back or stepper is not None) and activity is None:
            activity = Activity()
        self.activity = act = activity
        self.cyclic = bool(back)
        self.outside_open = 0  # the run's inputs from outside, not yet ended
        job_id = job_id or env.new_job_id(flow)
        # Step mode: every hop gets a gate; the root run's ports too (a nested run's are
        # its parent's edges). ``scope`` is None for the root run.
        gated = stepper is not None
        scope = stepper.enter(job_id, parent_id, label, act) if stepper is not None and act else None
        gate_ports = gated and scope is None
        port_outs: dict[str, tuple[str, str, DataStream | None]] = {}
        gated_outs: list[DataStream] = []  # the run ends once these have ended too
        child_ids = {lbl: env.new_job_id(n.spec) for lbl, n in nodes.items()}

        store = flow.store
        exposed_out = {(r.node.label, r.tag): name for name, r in outs.items()}
        out_streams: dict[tuple[str, str], DataStream] = {}
        for lbl, n in nodes.items():
            for tag, tp in n.spec.out_tags.items():
                name = exposed_out.get((lbl, tag))
                given = output_streams.get(name) if name is not None else None
                kept = store == "all" or (store in ("exposed", "outputs") and name is not None)
                if gate_ports and name is not None:  # step mode: a gate between the node and outside
                    port_outs[name] = (lbl, tag, given)
                    given = None
                if given is not None and act is not None:
                    given.push_each_at_once()  # its jobs' values count: none wait in a buffer
                out_streams[(lbl, tag)] = given or env.new_stream(
                    f"{job_id}/{lbl}/out/{tag}",
                    tag,
                    tp,
                    fused=True,
                    activity=act,
                    durable=kept and f"out:{tag}" not in n.spec.ephemeral,
                )

        incoming: dict[tuple[str, str], list[Connection]] = defaultdict(list)
        for c in conns:
            incoming[(c.target.node.label, c.target.tag)].append(c)
        exposed_in = {(r.node.label, r.tag): name for name, r in ins.items()}
        flow_inputs: dict[str, DataStream] = {}
        owned: list[DataStream] = []
        in_streams: dict[tuple[str, str], DataStream] = {}
        idle: list[DataStream] = []
        for lbl, n in nodes.items():
            for tag, tp in n.spec.in_tags.items():
                key = (lbl, tag)
                cs = incoming.get(key, [])
                ext = None
                name = exposed_in.get(key)
                if name is not None:
                    ext = input_streams.get(name)
                    if ext is None:
                        ext = env.new_stream(
                            f"{job_id}/in/{name}",
                            name,
                            tp,
                            fused=False,
                            activity=act,
                            durable=store in ("all", "exposed") and f"in:{tag}" not in n.spec.ephemeral,
                        )
                        owned.append(ext)
                    flow_inputs[name] = ext
                if not cs and not (gate_ports and ext is not None):
                    if ext is None:
                        ext = env.new_stream(
                            f"{job_id}/{lbl}/in/{tag}", tag, tp, fused=False, durable=store == "all"
                        )
                        idle.append(ext)
                    in_streams[key] = ext
                    continue
                src = cs[0].source if cs else None
                if (
                    src is not None
                    and not gated
                    and ext is None
                    and len(cs) == 1
                    and cs[0].transform is None
                    and cs[0].key not in back
                    and nodes[src.node.label].spec.out_tags[src.tag].tp == tp.tp
                ):
                    in_streams[key] = out_streams[(src.node.label, src.tag)]
                    continue
                stream = env.new_stream(
                    f"{job_id}/{lbl}/in/{tag}",
                    tag,
                    tp,
                    fused=ext is None and not gated,  # stepped: each job runs on its own thread
                    activity=act,
                    durable=store == "all" and f"in:{tag}" not in n.spec.ephemeral,
                )
                fwd = _Forward(self, stream, tp, lbl, n.spec.name)
                for c in cs:
                    g = None
                    if stepper is not None:
                        s_lbl, s_tag = c.source.node.label, c.source.tag
                        g = self._gate(
                            stepper, scope, f"{s_lbl}/{s_tag}->{lbl}/{tag}", s_lbl, s_tag, lbl, tag
                        )
                    fwd.add_source(out_streams[(c.source.node.label, c.source.tag)], c, c.key in back, g)
                if ext is not None:
                    g = None
                    if stepper is not None and gate_ports:
                        g = self._gate(stepper, scope, f"port:in:{name}", None, str(name), lbl, tag)
                    fwd.add_source(ext, None, False, g)
                self.forwards.append(fwd)
                in_streams[key] = stream
        # The inputs only a cycle feeds, upstream first: ended one at a time once
        # quiet, so each job's last words still reach the jobs after it.
        self.loop_fed = sorted((f for f in self.forwards if f.has_back), key=lambda f: order[f.label])

        # Dead letters: each job that sends some has its own errors stream
        # (one edge each in the graph); the run's gathers them all.
        dead = {
            lbl: f"{child_ids[lbl]}/out/{ERRORS}" for lbl in nodes if flow._dead_letters(lbl, dead_letter)
        }
        if dead and ERRORS in outs:
            raise WiringError(
                f"flow {flow.name!r} exposes an output named {ERRORS!r}, the name its run's dead letters "
                f"(on_error='dead_letter') go by; expose that output under another name"
            )
        graph = flow._graph(ins, outs, child_ids, out_streams, job_id, dead)
        run_outputs = {name: out_streams[(r.node.label, r.tag)] for name, r in outs.items()}
        for name, (lbl, tag, given) in port_outs.items():  # step mode: the gates to the outside
            assert stepper is not None
            tp = nodes[lbl].spec.out_tags[tag]
            out = run_outputs[name] = given or env.new_stream(
                f"{job_id}/out/{name}", name, tp, fused=False, activity=act, durable=store != "none"
            )
            fwd = _Forward(self, out, tp, lbl, nodes[lbl].spec.name)
            g = self._gate(stepper, scope, f"port:out:{name}", lbl, tag, None, name)
            fwd.add_source(out_streams[(lbl, tag)], None, False, g)
            self.forwards.append(fwd)
            gated_outs.append(out)
        self.errors: DataStream | None = None
        # A job's own errors stream is written with store="all"; the run's
        # (all of them gathered) unless store="none".
        node_errors = {
            lbl: env.new_stream(sid, ERRORS, DEAD_LETTER_TYPE, fused=False, durable=store == "all")
            for lbl, sid in dead.items()
            if not isinstance(nodes[lbl].spec, Liveflow)
        }
        if dead:
            self.errors = run_outputs[ERRORS] = env.new_stream(
                f"{job_id}/out/{ERRORS}", ERRORS, DEAD_LETTER_TYPE, fused=False, durable=store != "none"
            )
        self.job = env.make_job(
            flow,
            options,
            job_id=job_id,
            parent_id=parent_id,
            graph=graph,
            label=label,
            input_streams=flow_inputs,
            output_streams=run_outputs,
        )
        self.job._owned_inputs = owned
        self.job.on_cancel.append(self.cancel_children)
        self.children: list[LiveJob] = []
        self.launchers: list[Callable[[], None]] = []
        try:
            for lbl, n in nodes.items():
                child, launch = env.prepare(
                    n.spec,
                    options.nodes.get(lbl),
                    parent_id=job_id,
                    graph=graph,
                    label=lbl,
                    input_streams={t: in_streams[(lbl, t)] for t in n.spec.in_tags},
                    output_streams={t: out_streams[(lbl, t)] for t in n.spec.out_tags}
                    | ({ERRORS: node_errors[lbl]} if lbl in node_errors else {}),
                    activity=act,
                    job_id=child_ids[lbl],
                    dead_letter=True if lbl in dead else None,
                )
                if child.errors is not None and self.errors is not None:
                    child.errors.listen_chunks(self.gather_errors)
                self.children.append(child)
                self.launchers.append(launch)
        except BaseException as e:
            for child in self.children:
                child.cancel()
            self.job.fail(e)
            raise
        self.remaining = len(self.children) + len(gated_outs)
        for child in self.children:
            child.add_done_callback(self.child_done)
        if gated_outs:
            ended = weakref.WeakMethod(self.one_done)
            for out in gated_outs:
                out.listen_chunks(_ignore, lambda _error: _call(ended))
        for s in idle:
            s.end()
        if self.cyclic:
            # Weakly: the run's streams hold the activity and the outside inputs their
            # listeners, and a strong link back would keep a finished run for Python's
            # cycle collector (see LiveJob.release).
            self.outside_open = len(flow_inputs)
            outside = weakref.WeakMethod(self._outside_ended)
            for ext in flow_inputs.values():
                ext.listen_chunks(_ignore, lambda _error: _call(outside))
            quiet = weakref.WeakMethod(self.check_quiet)
            assert act is not None
            act.listeners.append(lambda: _call(quiet))

    def _gate(
        self,
        stepper: step.Stepper,
        scope: str | None,
        edge: str,
        source: str | None,
        source_tag: str,
        target: str | None,
        target_tag: str,
    ) -> step.Gate:
        """A gate of step mode on one hop of this run (see livestack_nb.step)."""
        me = weakref.ref(self)

        def target_job() -> LiveJob | None:
            run = me()
            return next((c for c in run.children if c.label == target), None) if run and target else None

        return stepper.gate(
            edge=edge,
            source=source,
            source_tag=source_tag,
            target=target,
            target_tag=target_tag,
            scope=scope or "",
            target_job=target_job,
        )

    def gather_errors(self, chunk: Chunk) -> None:
        """A job's dead letters go on to the run's errors stream (lineage kept)."""
        assert self.errors is not None
        self.errors.push(
            list(chunk.values), chunk.stream_id, range(chunk.seq0, chunk.seq0 + len(chunk.values))
        )

    def launch(self) -> None:
        self.job.mark_running()
        for launch in self.launchers:
            launch()
        if self.cyclic:
            self.check_quiet()  # a cycle with nothing to wait for ends at once

    def child_done(self, child: LiveJob) -> None:
        if child.status.value == "failed" and child.error is not None:
            self.fail(child.error, f"job {child.job_id} ({child.label}) failed")
        self.one_done()

    def one_done(self) -> None:
        """A child job ended, or (step mode) an output the run gates to the outside."""
        with self._lock:
            self.remaining -= 1
            last = self.remaining == 0
        # A cancelled flow cancels its children first; their endings must not
        # complete it on the way (it ends "cancelled", set by LiveJob.cancel).
        if last and not self.job.status.done and not self.job._cancelled:
            self.job.complete()

    def fail(self, exc: BaseException, where: str) -> None:
        job = self.job
        if job.status.done:
            return
        job.failure_note = where
        job.logger.error("%s: %s: %s", where, type(exc).__name__, exc)
        job.fail(exc)
        self.cancel_children()

    def cancel_children(self) -> None:
        for child in self.children:
            if not child.status.done:
                child.logger.info("cancelled: flow %s ended", self.job.job_id)
                child.cancel()
        for f in self.forwards:
            f.stream.end()

    def _outside_ended(self) -> None:
        with self._quiet_lock:
            self.outside_open -= 1
        self.check_quiet()

    def check_quiet(self) -> None:
        """End one loop-fed input once the run is quiet: its outside inputs have
        ended and nothing is in flight (every job waits for input only a cycle
        feeds, no value is queued or on its way). Ending it is work in flight
        until delivered; the next quiet moment ends the next one, upstream first.
        """
        act = self.activity
        if act is None or self.outside_open or not act.quiet or self.job.finished or self.job._cancelled:
            return
        if self.stepper is not None and self.stepper.busy:
            return  # a hop waits at its gate: not quiet
        with self._quiet_lock:
            if self.outside_open or not act.quiet:
                return
            fwd = next((f for f in self.loop_fed if f.remaining == 0 and not f.stream.ended), None)
            if fwd is None:
                return
            act.add(1)  # no other quiet moment ends another one meanwhile
        try:
            fwd.stream.end()
        finally:
            act.done(1)


def _ignore(_chunk: Chunk) -> None:
    pass
