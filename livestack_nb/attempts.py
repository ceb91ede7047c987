"""Parallel attempts: several specs race on each value; the first acceptable result wins.

Livestack's ``ParallelAttemptLiveflow`` (and its progressive try) for a value
that several models, services or cooks could each produce, none of them
reliably first or reliably right: start them all (or some a little later),
keep the first result that passes a check, cancel the rest. Each attempt is a
child job of the race (so it is recorded, with lineage, and shows its status),
and the race is a spec like any other: started, run, used as ``.op()`` or placed
in a flow. Its graph shows the attempts between the value and the winner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from ._limits import is_seconds
from .errors import LivestackError, WiringError
from .graph import Graph, GraphEdge, GraphExposure, GraphNode
from .job import JobHandle
from .spec import DEFAULT, JobSpec, TagType, can_feed

if TYPE_CHECKING:
    from .job import LiveJob

__all__ = ["Attempt", "ParallelAttempts", "attempt"]

RACE, WINNER = "race", "winner"  # the graph's two nodes around the attempts


@dataclass(frozen=True)
class Attempt:
    """One contender of a :class:`ParallelAttempts` race; made by :func:`attempt`."""

    spec: JobSpec
    label: str
    after: float = 0.0
    timeout: float | None = None
    options: Any = None
    transform_input: Callable[[Any], Any] | None = None
    transform_output: Callable[[Any], Any] | None = None


def attempt(
    spec: JobSpec,
    *,
    after: float = 0.0,
    timeout: float | None = None,
    options: Any = None,
    transform_input: Callable[[Any], Any] | None = None,
    transform_output: Callable[[Any], Any] | None = None,
    label: str | None = None,
) -> Attempt:
    """A contender of a race, with how and when it runs.

    Parameters
    ----------
    spec:
        The spec that makes a result from the race's value (its ``"default"`` tags).
    after:
        Start it this many seconds after the race starts, unless a result was
        accepted by then (Livestack's ``triggerCondition``: a fallback that is
        only tried when the first ones are slow).
    timeout:
        Cancel it this many seconds after it started, if it has not won by then.
    options:
        The options of its job.
    transform_input, transform_output:
        Convert the race's value into the spec's input, and its output into
        the race's output type.
    label:
        Its name in the race (default: the spec's name); two attempts of one
        spec need two labels.
    """
    if not isinstance(spec, JobSpec):
        raise LivestackError(f"attempt(): expected a JobSpec, not {spec!r}")
    name = spec.name if label is None else label
    if not isinstance(name, str) or not name:
        raise LivestackError(f"attempt of {spec.name!r}: a label must be a non-empty string, not {label!r}")
    if not is_seconds(after) or after < 0:
        raise LivestackError(f"attempt {name!r}: after= must be seconds >= 0, not {after!r}")
    if timeout is not None and (not is_seconds(timeout) or timeout <= 0):
        raise LivestackError(f"attempt {name!r}: timeout= must be seconds > 0 or None, not {timeout!r}")
    for what, fn in (("transform_input", transform_input), ("transform_output", transform_output)):
        if fn is not None and not callable(fn):
            raise LivestackError(f"attempt {name!r}: {what}= is not callable")
    return Attempt(spec, name, float(after), timeout, options, transform_input, transform_output)


class _Lost:
    """No attempt gave an acceptable result."""


class ParallelAttempts(JobSpec):
    """A spec that races several specs on each value and emits the first acceptable result.

    For every value it reads, the race starts one child job per attempt (at
    once, or ``after`` seconds in), feeds it the value, and takes the first
    output that ``accept`` passes; the other attempts are cancelled at once
    (and those not started yet never start). Values are raced one after the
    other, so results keep the order of the values. When no attempt gives an
    acceptable result (each failed, timed out or ended without one), the value
    fails like a raising processor: retried per ``retries``, skipped with
    ``on_error="skip"``, sent to the race's ``errors`` stream with
    ``on_error="dead_letter"``, else the race's job fails, its error naming
    what became of each attempt.

    Parameters
    ----------
    name:
        The race's spec name.
    attempts:
        Specs, or :func:`attempt` s for a start delay, timeout, options or transforms.
    accept:
        ``accept(result) -> bool``: whether a result may win (default: any result).
    input, output:
        The race's types (default: those of the first attempt).
    retries, on_error:
        What a value that no attempt could make gets (see ``@ls.job_spec``).

    Examples
    --------
    >>> race = ParallelAttempts("fastest-oven", [wood_oven, attempt(gas_oven, after=0.5)],
    ...                         accept=lambda pizza: not pizza.burnt)   # doctest: +SKIP
    >>> race.run([order])                                               # doctest: +SKIP
    """

    def __init__(
        self,
        name: str,
        attempts: Iterable[JobSpec | Attempt],
        *,
        accept: Callable[[Any], bool] | None = None,
        input: Any = None,
        output: Any = None,
        retries: int = 0,
        on_error: str = "fail",
    ) -> None:
        if not isinstance(name, str) or not name:
            raise LivestackError(f"a race needs a non-empty name, not {name!r}")
        if isinstance(attempts, (JobSpec, Attempt)) or not isinstance(attempts, Iterable):
            raise WiringError(f"race {name!r}: attempts= must be a list of specs or attempt(...)s")
        race = [a if isinstance(a, Attempt) else attempt(a) for a in attempts]
        if not race:
            raise WiringError(f"race {name!r} needs at least one attempt")
        labels = [a.label for a in race]
        for label in labels:
            if labels.count(label) > 1:
                raise WiringError(
                    f"race {name!r}: two attempts are labelled {label!r}; give one label=... in attempt()"
                )
            if label in (RACE, WINNER):
                raise WiringError(
                    f"race {name!r}: {label!r} names a node of the race; label the attempt otherwise"
                )
        for a in race:
            if DEFAULT not in a.spec.in_tags or DEFAULT not in a.spec.out_tags:
                raise WiringError(
                    f"race {name!r}: attempt {a.label!r} (spec {a.spec.name!r}) needs a 'default' input "
                    f"and output tag; it has inputs {sorted(a.spec.in_tags)}, "
                    f"outputs {sorted(a.spec.out_tags)}"
                )
        if accept is not None and not callable(accept):
            raise WiringError(f"race {name!r}: accept= is not callable")
        first = race[0]
        if input is None:
            input = first.spec.in_tags[DEFAULT].tp if first.transform_input is None else Any
        if output is None:
            output = first.spec.out_tags[DEFAULT].tp if first.transform_output is None else Any
        super().__init__(name, input=input, output=output)
        in_t, out_t = self.in_tags[DEFAULT], self.out_tags[DEFAULT]
        for a in race:
            a_in, a_out = a.spec.in_tags[DEFAULT], a.spec.out_tags[DEFAULT]
            if a.transform_input is None and not can_feed(in_t, a_in):
                raise WiringError(_misfit(name, a, "its input", in_t, a_in, "transform_input"))
            if a.transform_output is None and not can_feed(a_out, out_t):
                raise WiringError(_misfit(name, a, "the race's output", a_out, out_t, "transform_output"))
        self.attempts: tuple[Attempt, ...] = tuple(race)
        # Each attempt's options checked now, in the cell that wrote the race.
        self._options = {a.label: a.spec.validate_options(a.options) for a in race}
        self.accept = accept
        self._policy = (retries, on_error)
        self.define_worker(self._race_each, concurrency=8, retries=retries, on_error=on_error)
        from ._current import register_spec

        register_spec(self)

    # -- its shape ------------------------------------------------------------------

    def graph(self, job_id: str | None = None) -> Graph:
        """The race as a graph: its value fans out to the attempts, the first
        acceptable result goes on. In a run, each attempt's node follows the job
        of the latest value (``run.node_jobs``)."""
        ts = (DEFAULT,)
        nodes = (
            GraphNode(RACE, self.name, ts, ts, job_id),
            *(GraphNode(a.label, a.spec.name, ts, ts, None) for a in self.attempts),
            GraphNode(WINNER, self.name, ts, ts, job_id),
        )
        edges = tuple(
            e
            for a in self.attempts
            for e in (
                GraphEdge(RACE, DEFAULT, a.label, DEFAULT),
                GraphEdge(a.label, DEFAULT, WINNER, DEFAULT),
            )
        )
        exposures = (
            GraphExposure(DEFAULT, RACE, DEFAULT, "in"),
            GraphExposure(DEFAULT, WINNER, DEFAULT, "out"),
        )
        return Graph(self.name, nodes, edges, exposures, job_id)

    def run_graph(self, job_id: str) -> Graph | None:
        return self.graph(job_id)

    def derive(self, name: str, *, options: Any = None) -> ParallelAttempts:
        """The same race under another name (a race has no options of its own:
        give each attempt its options in :func:`attempt`)."""
        if options:
            raise LivestackError(
                f"race {self.name!r}: derive({name!r}) got options, but a race has none of its own; "
                "give each attempt its options with ls.attempt(spec, options=...)"
            )
        if not isinstance(name, str) or not name or name == self.name:
            raise LivestackError(f"race {self.name!r}: derive() needs a new, non-empty name, not {name!r}")
        retries, on_error = self._policy
        return ParallelAttempts(
            name,
            self.attempts,
            accept=self.accept,
            input=self.in_tags[DEFAULT].tp,
            output=self.out_tags[DEFAULT].tp,
            retries=retries,
            on_error=on_error,
        )

    # -- running ----------------------------------------------------------------------

    async def _race_each(self, job: LiveJob) -> None:
        winners: list[JobHandle] = []
        async for value in job.input:
            result = await self._race(job, value, winners)
            await job.output.emit(result)
        # A winner is left to end on its own (its input has ended); the race ends after it.
        loop = asyncio.get_running_loop()
        for w in winners:
            if not w.done:
                ended: asyncio.Future[None] = loop.create_future()
                w._job._life.add_done_callback(partial(_settle_from, loop, ended))
                await ended

    async def _race(self, job: LiveJob, value: Any, winners: list[JobHandle]) -> Any:
        loop = asyncio.get_running_loop()
        won: asyncio.Future[Any] = loop.create_future()
        children: dict[str, JobHandle] = {}
        fates: dict[str, str] = {}
        accept = self.accept

        def settle(label: str, fate: str) -> None:
            if label in fates:
                return
            fates[label] = fate
            if len(fates) == len(self.attempts) and not won.done():
                won.set_result(_Lost)

        def offer(a: Attempt, result: Any) -> None:
            if won.done() or a.label in fates:
                return
            try:
                if a.transform_output is not None:
                    result = a.transform_output(result)
                ok = accept is None or accept(result)
            except Exception as e:
                won.set_exception(e)
                return
            if ok:
                fates[a.label] = "won"
                won.set_result(result)

        def ended(a: Attempt, child: JobHandle, error: BaseException | None) -> None:
            if error is not None:
                cause = error.__cause__ or error
                settle(a.label, f"failed ({type(cause).__name__}: {cause})")
            elif child.status.value == "cancelled":
                settle(a.label, "cancelled")
            else:
                settle(a.label, "ended with no acceptable result")

        async def run(a: Attempt) -> None:
            if a.after:
                await asyncio.sleep(a.after)
            if won.done():
                return
            try:
                x = a.transform_input(value) if a.transform_input is not None else value
                child, launch = job.env.prepare(a.spec, options[a.label], parent_id=job.job_id)
                handle = JobHandle(child)
                children[a.label] = handle
                job._life.children.append(child.job_id)
                job._node_jobs[a.label] = child.job_id

                def on_next(r: Any) -> None:
                    loop.call_soon_threadsafe(offer, a, r)

                def on_error(e: Exception) -> None:
                    loop.call_soon_threadsafe(ended, a, handle, e)

                def on_completed() -> None:
                    loop.call_soon_threadsafe(ended, a, handle, None)

                handle.output().subscribe(on_next, on_error, on_completed)
                launch()
                job.logger.info("attempt %s started: job %s", a.label, child.job_id)
                handle.feed(x)
                handle.end()
            except Exception as e:  # its transform or its input: this attempt is out
                job.logger.warning("attempt %s could not start: %s: %s", a.label, type(e).__name__, e)
                settle(a.label, f"failed ({type(e).__name__}: {e})")
                return
            if a.timeout is not None:
                await asyncio.sleep(a.timeout)
                if a.label not in fates:
                    settle(a.label, f"timed out after {a.timeout:g} s")
                    handle.cancel()

        options = self._options
        tasks = [loop.create_task(run(a)) for a in self.attempts]
        try:
            result = await won
        finally:
            for t in tasks:
                t.cancel()
            beaten = [label for label, h in children.items() if fates.get(label) != "won" and not h.done]
            for label in beaten:
                children[label].cancel()
                fates.setdefault(label, "cancelled")
        if result is _Lost:
            what = "; ".join(f"{a.label}: {fates.get(a.label, 'not started')}" for a in self.attempts)
            raise LivestackError(
                f"race {self.name!r}: no attempt gave an acceptable result for {value!r} ({what})"
            )
        winner = next(label for label, fate in fates.items() if fate == "won")
        winners.append(children[winner])
        job.logger.info("attempt %s won%s", winner, f"; cancelled {', '.join(beaten)}" if beaten else "")
        return result

    def __repr__(self) -> str:
        return f"<ParallelAttempts {self.name!r}: {', '.join(a.label for a in self.attempts)}>"


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _settle_from(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None], _job: LiveJob) -> None:
    loop.call_soon_threadsafe(_settle, fut)


def _misfit(race: str, a: Attempt, where: str, src: TagType, dst: TagType, fix: str) -> str:
    return (
        f"race {race!r}: attempt {a.label!r} (spec {a.spec.name!r}): {src.name} values do not fit "
        f"{where} ({dst.name}); pass {fix}= to attempt() to convert them"
    )
