"""A spec as a reactivex operator, so specs drop into any RxPY pipeline.

Each subscription starts one job: items are fed in order, completion ends
the job's input, and a failure (bad input, a raising processor) reaches the
subscriber as ``on_error``. Disposing the subscription cancels the job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import abc as rx_abc
from reactivex.disposable import CompositeDisposable, Disposable

from .errors import LivestackError
from .spec import JobSpec

__all__ = ["spec_operator"]


def spec_operator(
    spec: JobSpec, options: dict[str, Any]
) -> Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]]:
    """Build the operator behind ``spec.op(**options)``."""
    spec.validate_options(options or None)  # bad options fail here, in the cell that wrote them

    def operator(source: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
        def subscribe(
            observer: rx_abc.ObserverBase[Any], scheduler: rx_abc.SchedulerBase | None = None
        ) -> rx_abc.DisposableBase:
            job = spec.start(options or None)
            subs = CompositeDisposable()

            def fail(e: Exception) -> None:
                observer.on_error(e)
                subs.dispose()
                job.cancel()

            subs.add(job.output().subscribe(observer.on_next, observer.on_error, observer.on_completed))

            def on_next(value: Any) -> None:
                try:
                    job.feed(value)
                except LivestackError as e:
                    fail(e)

            def on_error(e: Exception) -> None:
                fail(e)

            subs.add(source.subscribe(on_next, on_error, job.end, scheduler=scheduler))

            def dispose() -> None:
                subs.dispose()
                if not job.done:
                    job.cancel()

            return Disposable(dispose)

        return reactivex.Observable(subscribe)

    return operator
