"""A spec as a reactivex operator, so specs drop into any RxPY pipeline.

Each subscription starts one job: items are fed in order, completion ends
the job's input, and a failure (bad input, a raising processor) reaches the
subscriber as ``on_error``. Disposing the subscription cancels the job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import reactivex
from reactivex import abc as rx_abc
from reactivex.disposable import CompositeDisposable, Disposable

from .errors import LivestackError
from .spec import DEFAULT, JobSpec

if TYPE_CHECKING:
    from .job import JobHandle

__all__ = ["spec_operator"]


def spec_operator(
    spec: JobSpec, options: dict[str, Any]
) -> Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]]:
    """Build the operator behind ``spec.op(**options)``."""
    spec.validate_options(options or None)  # bad options fail here, in the cell that wrote them
    in_tag = _sole_tag(spec, "input", list(spec.in_tags))
    out_tag = _sole_tag(spec, "output", list(spec.out_tags))

    def operator(source: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
        def subscribe(
            observer: rx_abc.ObserverBase[Any], scheduler: rx_abc.SchedulerBase | None = None
        ) -> rx_abc.DisposableBase:
            from .env import current_env

            subs = CompositeDisposable()

            def wire(handle: JobHandle) -> None:  # before the job runs: a source loses nothing
                out = handle.output(out_tag)
                subs.add(out.subscribe(observer.on_next, observer.on_error, observer.on_completed))

            job = current_env().start(spec, options or None, before_launch=wire)

            def fail(e: Exception) -> None:
                observer.on_error(e)
                subs.dispose()
                job.cancel()

            feeder = job.input(in_tag)

            def on_next(value: Any) -> None:
                try:
                    feeder.feed(value)
                except LivestackError as e:
                    fail(e)

            def on_error(e: Exception) -> None:
                fail(e)

            subs.add(source.subscribe(on_next, on_error, feeder.end, scheduler=scheduler))

            def dispose() -> None:
                subs.dispose()
                if not job.done:
                    job.cancel()

            return Disposable(dispose)

        return reactivex.Observable(subscribe)

    return operator


def _sole_tag(spec: JobSpec, side: str, tags: list[str]) -> str:
    """The tag an operator uses: ``"default"``, or the only one there is."""
    if DEFAULT in tags:
        return DEFAULT
    if len(tags) == 1:
        return tags[0]
    raise LivestackError(
        f"spec {spec.name!r} cannot be an operator: it needs one {side} tag (or 'default'), "
        f"and has {sorted(tags)}; start a job and feed its tags instead"
    )
