"""Step mode: a run whose datapoints wait at a gate before every hop, released one at a time.

Why: to teach a flow, a learner must see it *think*; at full speed a flow is
done before the eye can follow. ``run = flow.start(step=True)`` (also
``spec.start(step=True)`` for one job) puts a gate on every hop a datapoint
makes from one job to the next: from the outside into a node, from a node to
the next, from a node to the outside, and between the nodes of a nested flow.
Nothing passes a gate until it is released:

* ``run.step()`` releases the oldest waiting hop, waits (bounded) until the
  run is quiet again (the receiving job has processed it and every hop that
  caused is waiting at its gate, or has reached an output) and returns the
  :class:`Hop`; ``None`` when nothing waits. ``run.step(n)`` releases up to n
  and returns a list.
* ``run.play(interval=0.5)`` releases one hop per ``interval`` seconds in a
  background thread (slow motion); ``run.pause()`` stops it after the current
  hop; ``run.play(interval=0)`` runs to the end. ``run.playing`` says whether
  it plays.
* ``run.hops``: the hops released so far, in order; ``run.waiting``: the
  hops at their gates now, oldest first; ``run.stepping``: whether the run was
  started with ``step=True``.
* ``run.on_hop(callback)``: ``callback(event, hop)`` for each hop, with
  ``event`` one of ``"waiting"`` (it reached its gate), ``"released"`` and
  ``"settled"`` (what it caused is done); called from any thread. Returns a
  disposable. ``"released"`` is told as the hop leaves its gate, before the
  node works on it (a graph moves the dot and lights the node meanwhile);
  ``"settled"`` once the run is quiet again and the step's turn is over, so a
  callback told of a settled hop may step or pause the run itself. A callback
  told of a release that calls ``step()`` is refused with an error (it would
  wait on itself).

Why it is deterministic: only one hop moves at a time, and the next is
released only once the run is quiet, so the order in which hops reach their
gates depends on the flow and the values alone, never on threads. The same
flow fed the same values and stepped the same way gives the same hops. The
run's work in flight is counted with the same :class:`~livestack_nb.stream.Activity`
a flow with a cycle uses to see that it is quiet; a hop waiting at a gate is
not work in flight, and a cycle's inputs are not ended while a hop waits.

A gate splits each chunk into single values (a ``feed_many`` of three is three
hops), applies a connection's transform when its hop is released (so a
transform that raises fails the run at that hop), and holds the end of its
stream until the hops before it were released. A hop released to a node whose
job then fails is recorded with ``failed=True``.

``play`` runs in a thread of its own: a kernel interrupt stops what the
notebook's main thread waits for (a ``step()``, leaving the hop it released
recorded, or a ``wait()``), never the play; ``run.pause()`` does.
``spec.start(step=True)`` of a spec that is not a flow runs it as a one-node
flow named ``"<spec>.step"`` whose ports are the spec's tags (so its hops are
``port:in:<tag>`` and ``port:out:<tag>``); the handle's ``spec`` is that flow.

The journey of a hop's datapoint: ``env.datapoint(hop.datapoint_id)`` and
``datapoint.lineage()`` (:mod:`livestack_nb.lineage`; each stop a ``Stop`` with
``datapoint_id``, ``stream_id``, ``seq``, ``value``, ``timestamp``, ``job_id``,
``node`` (``None`` for the outside), ``tag``, ``side`` and ``held``).

Outside step mode nothing here runs: a flow's start looks up one thread-local
(:func:`current`) and builds its streams as before.

Hop fields (see :class:`Hop`): ``edge`` is the id of the graph edge or port it
travels, as :class:`~livestack_nb.widgets.FlowGraph` names them:
``"<source label>/<source tag>-><target label>/<target tag>"`` between nodes,
``"port:in:<name>"`` from the outside into a node, ``"port:out:<name>"`` from a
node to the outside. Inside a nested flow, ``edge`` is the inner flow's own id
and ``scope`` the label of the nested node (``"outer.inner"`` deeper); it is
``""`` for the run's own flow.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, overload

from reactivex.disposable import Disposable

from ._interrupt import held_interrupts
from ._limits import is_seconds
from ._status import JobStatus
from .errors import LivestackError
from .stream import Activity, Chunk

if TYPE_CHECKING:
    from .job import LiveJob

__all__ = ["Gate", "Hop", "Stepper", "Stepping", "current"]

log = logging.getLogger("livestack_nb")

TEXT_MAX = 60
"""Longest ``Hop.text`` (characters): a label on a dot must stay short."""

SETTLE_TIMEOUT = 30.0
"""Seconds ``step()`` waits for the run to be quiet after a release (a processor
waiting for something else than its input would otherwise hold it for ever)."""

EVENTS = ("waiting", "released", "settled")


@dataclass(frozen=True)
class Hop:
    """One move of one datapoint from a job (or the outside) to the next.

    ``index`` is its place in the release order (from 0; -1 while it waits).
    ``source``/``target`` are node labels (``None`` for the outside),
    ``datapoint_id`` the id of the value that hops (in the stream it leaves),
    ``text`` a short plain-text rendering of it, ``value`` the value itself.
    ``failed`` is set when the job it was released to failed on it.
    """

    index: int
    edge: str
    source: str | None
    source_tag: str
    target: str | None
    target_tag: str
    datapoint_id: str
    text: str
    value: Any = field(repr=False)
    scope: str = ""
    failed: bool = False

    def __str__(self) -> str:
        src = "outside" if self.source is None else f"{self.source}.{self.source_tag}"
        dst = "outside" if self.target is None else f"{self.target}.{self.target_tag}"
        where = f" in {self.scope}" if self.scope else ""
        mark = " (failed)" if self.failed else ""
        at = "waiting" if self.index < 0 else f"#{self.index}"
        return f"{at} {src} -> {dst}{where}: {self.text}{mark}"


def text_of(value: Any) -> str:
    """A one-line plain-text rendering of ``value`` of at most :data:`TEXT_MAX` characters."""
    fields = getattr(type(value), "model_fields", None)
    if isinstance(value, str):
        s = value
    elif fields is not None:
        s = f"{type(value).__name__}(" + ", ".join(f"{k}={getattr(value, k)!r}" for k in fields) + ")"
    else:
        try:
            s = repr(value)
        except Exception:
            s = f"<{type(value).__name__}>"
    s = " ".join(s.split())
    return s if len(s) <= TEXT_MAX else s[: TEXT_MAX - 1] + "…"


class _Wake:
    """A wake-up: a plain lock held while there is nothing new (see the Flusher in
    stream.py: an Event's ``set`` enters Python code where an interrupt can leave
    it locked, and a wake-up may come from the main thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def wake(self) -> None:
        try:  # noqa: SIM105 (a plain try: contextlib.suppress exits in Python code)
            self._lock.release()
        except RuntimeError:
            pass  # awake already

    def nap(self, timeout: float) -> None:
        """Wait until woken or ``timeout`` seconds passed (interruptible)."""
        self._lock.acquire(timeout=max(0.0, timeout))


class _Waiting:
    __slots__ = ("chunk", "gate", "hop")

    def __init__(self, gate: Gate, chunk: Chunk, hop: Hop) -> None:
        self.gate = gate
        self.chunk = chunk
        self.hop = hop


class Gate:
    """Where a stream's values wait before one hop: between a source stream and the
    target it feeds (a flow's forwarder). Built by the flow; see the module docstring.

    ``deliver(chunk)`` moves one released value on, ``finish(error)`` passes the
    source's end on once every hop before it was released.
    """

    def __init__(
        self,
        stepper: Stepper,
        *,
        edge: str,
        source: str | None,
        source_tag: str,
        target: str | None,
        target_tag: str,
        scope: str,
        target_job: Callable[[], LiveJob | None],
    ) -> None:
        self._stepper = stepper
        self.edge = edge
        self.source = source
        self.source_tag = source_tag
        self.target = target
        self.target_tag = target_tag
        self.scope = scope
        self.target_job = target_job
        self.deliver: Callable[[Chunk], None] = _nowhere
        self.finish: Callable[[BaseException | None], None] = _no_end
        self._lock = threading.Lock()
        self._pending = 0
        self._end: tuple[BaseException | None] | None = None

    def arrive(self, chunk: Chunk) -> None:
        """A chunk left the source: each of its values waits as one hop (the source's listener)."""
        values = chunk.values
        ps = chunk.parent_seqs
        sid = chunk.stream_id
        with self._lock:
            self._pending += len(values)
        for i, v in enumerate(values):
            seq = chunk.seq0 + i
            single = Chunk(sid, seq, chunk.time, [v], chunk.parent_stream, None if ps is None else [ps[i]])
            hop = Hop(
                -1,
                self.edge,
                self.source,
                self.source_tag,
                self.target,
                self.target_tag,
                f"{sid}:{seq}",
                text_of(v),
                v,
                self.scope,
            )
            if not self._stepper._queue(_Waiting(self, single, hop)):
                self._uncount()  # the run has ended: the value goes nowhere

    def _uncount(self) -> None:
        """One value counted as waiting has gone (released, or not queued): pass the
        source's end on if it came and this was the last."""
        with self._lock:
            self._pending -= 1
            end = self._end if self._pending == 0 else None
            if end is not None:
                self._end = None
        if end is not None:
            self.finish(end[0])

    def ended(self, error: BaseException | None) -> None:
        """The source ended: pass it on now, or once the hops still waiting were released."""
        with self._lock:
            if self._pending:
                self._end = (error,)
                return
        self.finish(error)

    def release(self, chunk: Chunk) -> None:
        """Move one waiting value on; the end follows the last one."""
        try:
            self.deliver(chunk)
        finally:
            self._uncount()

    def drop(self) -> None:
        """The run ended with hops still waiting here: forget them, pass the end on."""
        with self._lock:
            self._pending = 0
            end, self._end = self._end, None
        if end is not None:
            self.finish(end[0])


def _nowhere(_chunk: Chunk) -> None:
    pass


def _no_end(_error: BaseException | None) -> None:
    pass


class Stepper:
    """The gates of one stepped run (its nested runs included) and their one queue."""

    def __init__(self) -> None:
        self.activity: Activity | None = None
        self.root_job: LiveJob | None = None
        self._lock = threading.Lock()
        self._queue_: deque[_Waiting] = deque()
        self._gates: list[Gate] = []
        self.hops: list[Hop] = []
        self._listeners: list[Callable[[str, Hop], None]] = []
        self._telling: int | None = None  # the thread telling of a release, inside the turn
        self._scopes: dict[str, str] = {}
        self._quiet = _Wake()
        self._nap = _Wake()
        self._turn = threading.Lock()  # one release at a time (step() and play)
        self.closed = False
        self._player: threading.Thread | None = None
        self._playing = False
        self._interval = 0.5  # seconds a hop while playing

    # -- wiring (called by a flow's start) ----------------------------------------------

    def enter(self, job_id: str, parent_id: str | None, label: str | None, activity: Activity) -> str | None:
        """A run of the stepped start is being built: its scope, or ``None`` for the root
        run (whose ports get gates too; a nested run's ports are its parent's edges)."""
        with self._lock:
            if self.activity is None:
                self.activity = activity
                quiet = weakref.WeakMethod(self._on_quiet)
                activity.listeners.append(lambda: _call(quiet))
                self._scopes[job_id] = ""
                return None
            outer = self._scopes.get(parent_id or "", "")
            scope = f"{outer}.{label}" if outer else (label or "")
            self._scopes[job_id] = scope
            return scope

    def gate(self, **kw: Any) -> Gate:
        g = Gate(self, **kw)
        with self._lock:
            self._gates.append(g)
        return g

    def started(self, job: LiveJob) -> None:
        """The root run's job: when it ends, waiting hops are dropped and play stops."""
        self.root_job = job
        job._life.add_done_callback(self._root_done)

    def _root_done(self, _job: LiveJob) -> None:
        self.closed = True
        with self._lock:
            self._queue_.clear()
            gates = list(self._gates)
            self._gates.clear()
        for g in gates:
            g.drop()
        self._playing = False
        self._quiet.wake()
        self._nap.wake()

    # -- the queue ----------------------------------------------------------------------

    def _queue(self, waiting: _Waiting) -> bool:
        """Queue a hop at its gate; whether it was (not once the run has ended)."""
        with self._lock:
            if self.closed:
                return False
            self._queue_.append(waiting)
        self._tell("waiting", waiting.hop)
        self._nap.wake()
        return True

    @property
    def waiting(self) -> list[Hop]:
        with self._lock:
            return [w.hop for w in self._queue_]

    @property
    def busy(self) -> bool:
        """Whether a hop waits at a gate (a cycle's inputs are not ended meanwhile)."""
        return bool(self._queue_)

    def _on_quiet(self) -> None:
        self._quiet.wake()

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> bool:
        """Wait until nothing is in flight (every hop at its gate); whether it got there."""
        act = self.activity
        if act is None:
            return True
        deadline = time.monotonic() + timeout
        while not act.quiet and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._quiet.nap(min(left, 0.05))
        return True

    # -- stepping -----------------------------------------------------------------------

    def step_one(self, timeout: float = SETTLE_TIMEOUT) -> Hop | None:
        """Release the oldest waiting hop, wait until it settled, return it."""
        if not self.settle(timeout):
            log.warning("step: the run did not settle within %.1f s; releasing the next hop anyway", timeout)
        # "released" is told before the hop's work, inside the turn, so a graph moves the
        # dot and lights the node while the node works; "settled" once the turn is left.
        # A callback told of a release that steps again would wait on itself: refused.
        if self._telling == threading.get_ident():
            raise LivestackError(
                "run.step() was called from an on_hop callback told of a release, which would"
                " wait on itself; step from a 'settled' event or from another thread"
            )
        released: Hop | None = None  # told even when an interrupt stops the release or settling
        done: Hop | None = None
        try:
            with self._turn:
                act = self.activity
                w: _Waiting | None = None
                entered = False
                try:
                    # Held: a hop taken off the queue is recorded and counted, or not taken.
                    with held_interrupts():
                        with self._lock:
                            if not self._queue_ or self.closed:
                                return None
                            w = self._queue_.popleft()
                            hop = replace(w.hop, index=len(self.hops))
                            self.hops.append(hop)
                        if act is not None:
                            act.add(1)  # the release itself: its end is a quiet moment
                    # Not held: the release runs user code (a transform, an inline map)
                    # that an interrupt must be able to stop.
                    entered = True
                    released = hop  # told even if an interrupt stops the release
                    self._telling = threading.get_ident()
                    try:
                        self._tell("released", hop)
                    finally:
                        self._telling = None
                        released = None
                    w.gate.release(w.chunk)
                finally:
                    if w is not None:
                        if act is not None:
                            act.done(1)
                        if not entered:  # interrupted as the hop was taken: put it back
                            with held_interrupts(), self._lock:
                                self.hops.pop()
                                self._queue_.appendleft(w)
                if not self.settle(timeout):
                    log.warning("step: hop %s did not settle within %.1f s", hop, timeout)
                job = w.gate.target_job()
                if job is not None and job._life.status is JobStatus.FAILED:
                    hop = replace(hop, failed=True)
                    with self._lock:
                        self.hops[hop.index] = hop
                done = hop
        finally:
            if released is not None:
                self._tell("released", released)
        if done is not None:
            self._tell("settled", done)
        return done

    def play(self, interval: float) -> None:
        """Release one hop every ``interval`` seconds on one background thread.

        There is one player at a time: a player that a pause gave up waiting for
        (still settling its hop) plays on at the new interval instead of a second one
        starting beside it."""
        if not is_seconds(interval) or interval < 0:
            raise _BadSeconds(f"play(interval=...) takes seconds >= 0, not {interval!r}")
        with self._lock:
            if self._playing or self.closed:
                return
            self._playing = True
            self._interval = float(interval)
            if self._player is not None:
                return  # the player has not stopped yet: it sees _playing and goes on
            t = threading.Thread(target=self._play, name="livestack-play", daemon=True)
            self._player = t
        t.start()

    def _play(self) -> None:
        me = threading.current_thread()
        try:
            while True:
                while self._playing and not self.closed:
                    hop = self.step_one()
                    if not self._playing:
                        break
                    if hop is None:
                        self._nap.nap(0.05)  # nothing waits: until a hop comes or the run ends
                    elif self._interval:
                        deadline = time.monotonic() + self._interval
                        while self._playing and (left := deadline - time.monotonic()) > 0:
                            self._nap.nap(left)
                with self._lock:
                    if self._playing and not self.closed:
                        continue  # played again while this one was stopping
                    self._player = None
                    return
        except Exception:
            log.exception("play: stepping failed")
        finally:
            with self._lock:
                if self._player is me:  # not a stopped player's: a new one may play
                    self._player = None
                    self._playing = False

    def pause(self, timeout: float = SETTLE_TIMEOUT) -> None:
        self._playing = False
        self._nap.wake()
        t = self._player
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    @property
    def playing(self) -> bool:
        return self._playing

    # -- telling ------------------------------------------------------------------------

    def on_hop(self, callback: Callable[[str, Hop], None]) -> Disposable:
        if not callable(callback):
            raise LivestackError(f"on_hop takes a callable(event, hop), not {callback!r}")
        with self._lock:
            self._listeners.append(callback)

        def dispose() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return Disposable(dispose)

    def _tell(self, event: str, hop: Hop) -> None:
        for cb in list(self._listeners):
            try:
                cb(event, hop)
            except Exception:
                log.exception("an on_hop callback raised (event %r)", event)


class _BadSeconds(LivestackError, ValueError):
    """A bad ``interval``: a livestack-nb error, and a ``ValueError`` as a bad argument is."""


def _call(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    """Call a bound method held weakly, if its object still lives (a flow's listeners
    must not keep a finished run alive)."""
    fn = method()
    if fn is not None:
        fn()


# -- starting a stepped run ---------------------------------------------------------------

_local = threading.local()


def current() -> Stepper | None:
    """The stepper of the stepped start being built on this thread, if any (a flow's
    start asks; ``None`` on every other start: the fast path pays this look-up only)."""
    return getattr(_local, "stepper", None)


@contextlib.contextmanager
def _building(stepper: Stepper) -> Iterator[None]:
    previous = current()
    _local.stepper = stepper
    try:
        yield
    finally:
        _local.stepper = previous


# -- the caller's side: methods of JobHandle ---------------------------------------------


class Stepping:
    """The step-mode methods of a :class:`~livestack_nb.JobHandle` (see the module docstring)."""

    _job: LiveJob

    def _stepper(self) -> Stepper:
        s = self._job._life.stepper
        if s is None:
            raise LivestackError(
                f"job {self._job.job_id} was not started in step mode: start it with "
                f"{self._job.spec.name}.start(step=True) to step through it"
            )
        return s

    @property
    def stepping(self) -> bool:
        """Whether this run was started with ``step=True``."""
        return self._job._life.stepper is not None

    @overload
    def step(self) -> Hop | None: ...
    @overload
    def step(self, n: int, *, timeout: float = ...) -> list[Hop]: ...

    def step(self, n: int | None = None, *, timeout: float = SETTLE_TIMEOUT) -> Hop | list[Hop] | None:
        """Release the oldest waiting hop and return it once what it caused has settled
        (``None`` if nothing waits); ``step(n)``: up to ``n`` hops, as a list."""
        s = self._stepper()
        if n is None:
            return s.step_one(timeout)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise LivestackError(f"step(n): n must be an int >= 0, not {n!r}")
        out: list[Hop] = []
        for _ in range(n):
            hop = s.step_one(timeout)
            if hop is None:
                break
            out.append(hop)
        return out

    def play(self, interval: float = 0.5) -> None:
        """Release one hop every ``interval`` seconds in the background (0: run to the end)."""
        self._stepper().play(interval)

    def pause(self) -> None:
        """Stop playing after the current hop (returns once it has stopped)."""
        self._stepper().pause()

    @property
    def playing(self) -> bool:
        s = self._job._life.stepper
        return s is not None and bool(s.playing)

    @property
    def hops(self) -> list[Hop]:
        """The hops released so far, in release order."""
        s = self._job._life.stepper
        return [] if s is None else list(s.hops)

    @property
    def waiting(self) -> list[Hop]:
        """The hops waiting at their gates now, oldest (next released) first."""
        s = self._job._life.stepper
        return [] if s is None else list(s.waiting)

    def on_hop(self, callback: Callable[[str, Hop], None]) -> Disposable:
        """Call ``callback(event, hop)`` for every hop event (``"waiting"``, ``"released"``,
        ``"settled"``), from any thread; returns a disposable."""
        return self._stepper().on_hop(callback)
