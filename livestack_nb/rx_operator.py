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
from .stream import MAX_CHUNK, Chunk

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
                # The output goes to the observer a chunk at a time, straight from the
                # stream (no RxPY wrapper per value on the way).
                out = handle.output(out_tag)
                emit = observer.on_next

                def on_chunk(chunk: Chunk) -> None:
                    for v in chunk.values:
                        emit(v)

                def on_end(error: BaseException | None) -> None:
                    if error is None:
                        observer.on_completed()
                    else:
                        observer.on_error(error if isinstance(error, Exception) else Exception(repr(error)))

                subs.add(out.listen_chunks(on_chunk, on_end))

            job = current_env().start(spec, options or None, before_launch=wire)

            def fail(e: Exception) -> None:
                observer.on_error(e)
                subs.dispose()
                job.cancel()

            feeder = job.input(in_tag)
            stream, exact = feeder.stream, feeder._exact
            buf, appended = stream.edge, stream.appended

            def on_next(value: Any) -> None:
                if type(value) is exact and not stream._closed:
                    buf.append(value)  # what feeder.feed does for a value that fits
                    n = len(buf)
                    if n == 1 or n >= MAX_CHUNK:
                        appended(n)
                    return
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
