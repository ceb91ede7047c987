"""A flow's run: the jobs of one start of a :class:`~livestack_nb.Liveflow`, wired and watched.

The run makes one job per node and shares streams between them (an output
feeding exactly one input of the same type is the same stream, so a map spec
downstream runs on the upstream's thread); where it cannot, a forwarder
checks and hands chunks across (a transform, a type to check, several
sources). It is the runner of the flow's own job: it starts it, ends it once
every node's job has, fails it with the first failure, and in a flow with a
cycle ends the inputs only the cycle feeds once the run has gone quiet.
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import step
from .dead_letter import DEAD_LETTER_TYPE, ERRORS
from .errors import DataValidationError, JobClosedError, WiringError
from .spec import JobSpec, TagType
from .step import _call
from .stream import Activity, Chunk, DataStream

if TYPE_CHECKING:
    from .env import LiveEnv
    from .flow import Connection, FlowOptions, Liveflow
    from .job import LiveJob


__all__ = ["Run"]


class _Forward:
    """Feeds an input stream from several sources (fan-in), through a transform,
    or from an exposed input that also has connections."""

    def __init__(self, run: Run, stream: DataStream, in_type: TagType, label: str, spec_name: str) -> None:
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
            run.env.job_host.validation_failed(run.job, e)
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


class Run:
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
            if not _runs_itself(nodes[lbl].spec)
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
        self.job._life.owned_inputs = owned
        self.job._life.on_cancel.append(self.cancel_children)
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
                if child._life.errors is not None and self.errors is not None:
                    child._life.errors.listen_chunks(self.gather_errors)
                self.children.append(child)
                self.launchers.append(launch)
        except BaseException as e:
            for child in self.children:
                child._life.cancel()
            self.job._life.fail(e)
            raise
        self.remaining = len(self.children) + len(gated_outs)
        for child in self.children:
            child._life.add_done_callback(self.child_done)
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
            return (
                next((c for c in run.children if c._life.label == target), None) if run and target else None
            )

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
        self.job._life.mark_running()
        for launch in self.launchers:
            launch()
        if self.cyclic:
            self.check_quiet()  # a cycle with nothing to wait for ends at once

    def child_done(self, child: LiveJob) -> None:
        if child._life.status.value == "failed" and child._life.error is not None:
            self.fail(child._life.error, f"job {child.job_id} ({child._life.label}) failed")
        self.one_done()

    def one_done(self) -> None:
        """A child job ended, or (step mode) an output the run gates to the outside."""
        with self._lock:
            self.remaining -= 1
            last = self.remaining == 0
        # A cancelled flow cancels its children first; their endings must not
        # complete it on the way (it ends "cancelled", set by LiveJob.cancel).
        if last and not self.job._life.status.done and not self.job._cancelled:
            self.job._life.complete()

    def fail(self, exc: BaseException, where: str) -> None:
        job = self.job
        if job._life.status.done:
            return
        job._life.failure_note = where
        job.logger.error("%s: %s: %s", where, type(exc).__name__, exc)
        job._life.fail(exc)
        self.cancel_children()

    def cancel_children(self) -> None:
        for child in self.children:
            if not child._life.status.done:
                child.logger.info("cancelled: flow %s ended", self.job.job_id)
                child._life.cancel()
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
        if act is None or self.outside_open or not act.quiet or self.job._finished or self.job._cancelled:
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


def _runs_itself(spec: JobSpec) -> bool:
    """Whether ``spec`` runs its jobs itself (a nested flow, which gathers its own dead letters)."""
    return type(spec).prepare_run is not JobSpec.prepare_run
