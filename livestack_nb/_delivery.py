"""Delivery: handing a stream's chunks to its listeners, in order, from whichever thread pushes.

Delivery is serialised per stream: whichever thread pushes first delivers,
in order, and a push that arrives meanwhile (from another thread, or
re-entrantly from a listener, as in a cycle) is queued for it. No lock is held
while user code runs. A listener that joins while a delivery runs is joined
at a chunk boundary, so it sees no value twice and misses none. These are
:class:`~livestack_nb.stream.DataStream`'s methods (a mixin), kept apart from
how chunks are made and kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from itertools import chain
from typing import TYPE_CHECKING, Any, cast

from reactivex import abc as rx_abc
from reactivex.disposable import Disposable

from ._chunk import Chunk
from ._streambase import StreamFields

if TYPE_CHECKING:
    from .stream import DataStream

__all__ = ["Delivery"]

log = logging.getLogger("livestack_nb")


class _Listener:
    __slots__ = ("disposed", "on_chunk", "on_end", "start_seq")

    def __init__(
        self,
        on_chunk: Callable[[Chunk], None],
        on_end: Callable[[BaseException | None], None] | None,
    ) -> None:
        self.on_chunk = on_chunk
        self.on_end = on_end
        self.start_seq = 0
        self.disposed = False


class _End:
    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _Join:
    __slots__ = ("listener", "mark", "replay")

    def __init__(self, listener: _Listener, mark: int, replay: bool) -> None:
        self.listener = listener
        self.mark = mark
        self.replay = replay


class Delivery(StreamFields):
    """The delivering half of :class:`~livestack_nb.stream.DataStream`."""

    def _deliver(self) -> None:
        """Deliver what is pending, in order, then let go of the claim (the caller made it,
        and lets go of it itself if this raises)."""
        pending = self._pending
        lock = self._state_lock
        while True:
            with lock:
                if not pending:
                    self._delivering = 0
                    return
                item = pending[0]
                if isinstance(item, Chunk):
                    if self._telling is None:  # (else: what an interrupted delivery left)
                        self._telling = list(reversed(self._listeners))
                elif isinstance(item, _Join):
                    pending.popleft()
                elif not self._end_delivered:
                    self._error = item.error
                    self._ending = list(self._listeners)
                    self._end_delivered = True
                    self._listeners = ()
            if type(item) is Chunk:
                self._tell_chunk(item)
            elif type(item) is _End:
                self._tell_end(item.error)
            else:
                assert isinstance(item, _Join)
                self._join(item)

    def _tell_end(self, error: BaseException | None) -> None:
        """Tell each listener of the end, dropping it once told, then drop the end itself:
        an end stopped half way (a KeyboardInterrupt) is finished by the next delivery."""
        ending = self._ending
        while True:
            with self._state_lock:
                if not ending:
                    self._pending.popleft()  # the end, told to all
                    break
                listener = ending[-1]
            self._end_listener(listener, error)
            with self._state_lock:
                if ending and ending[-1] is listener:
                    ending.pop()
        act = self._activity
        if act is not None:
            act.done(1)

    def _tell_chunk(self, chunk: Chunk) -> None:
        """Deliver the queued ``chunk`` to each listener, dropping it from the list once
        told, then drop the chunk: a delivery stopped half way (a KeyboardInterrupt)
        is finished by the next one, so values whose ``feed`` returned are not lost."""
        telling = self._telling
        assert telling is not None
        seq0 = chunk.seq0
        while telling:
            listener = telling[-1]
            if seq0 >= listener.start_seq and not listener.disposed:
                try:
                    listener.on_chunk(chunk)
                except Exception:
                    self._listener_failed(listener)
            telling.pop()
        with self._state_lock:
            # In this order, with no call between: an interrupt cannot leave the
            # next chunk with an empty list of listeners still to be told.
            self._telling = None
            self._pending.popleft()
        act = self._activity
        if act is not None:
            act.done(len(chunk.values))

    def _deliver_chunk(self, chunk: Chunk, listeners: tuple[_Listener, ...]) -> None:
        seq0 = chunk.seq0
        for listener in listeners:
            if seq0 >= listener.start_seq and not listener.disposed:
                try:
                    listener.on_chunk(chunk)
                except Exception:
                    self._listener_failed(listener)
        act = self._activity
        if act is not None:
            act.done(len(chunk.values))

    def _end_listener(self, listener: _Listener, error: BaseException | None) -> None:
        if listener.on_end is None or listener.disposed:
            return
        try:
            listener.on_end(error)
        except Exception:
            self._listener_failed(listener)

    def _listener_failed(self, listener: _Listener) -> None:
        self._remove(listener)
        self.subscriber_errors += 1
        log.exception("a subscriber of stream %r raised; it is unsubscribed", self.stream_id)
        report = self.on_subscriber_error
        if report is not None:
            try:
                report(cast("DataStream", self))
            except Exception:
                log.exception("reporting a subscriber's error failed")

    # -- consuming ---------------------------------------------------------

    def _add(self, listener: _Listener, *, replay: bool) -> Disposable:
        self.flush()  # what was appended before the subscription is not new to it
        me = threading.get_ident()
        claimed = False
        try:
            with self._state_lock:
                self._pending.append(_Join(listener, self._count, replay))
                if not self._delivering:
                    claimed = True
                    self._delivering = me
            if claimed:
                self._deliver()
        except BaseException:
            if claimed:
                self._let_go(me)
            raise
        return Disposable(lambda: self._remove(listener))

    def _join(self, join: _Join) -> None:
        listener = join.listener
        if join.replay:
            memory = self._history_chunks(join.mark)
            chunks: Iterable[Chunk] = memory
            if self._archive is not None:
                # What memory no longer holds comes from the vault: everything
                # before the first seq still in memory, so nothing twice.
                first = memory[0].seq0 if memory else join.mark
                if first > 0:
                    chunks = chain(self._archived(first), memory)
            for chunk in chunks:
                if listener.disposed:
                    return
                try:
                    listener.on_chunk(chunk)
                except Exception:
                    self._listener_failed(listener)
                    return
        listener.start_seq = join.mark
        with self._state_lock:
            ended = self._end_delivered
            if not ended and not listener.disposed:
                self._listeners = (*self._listeners, listener)
        if ended:
            self._end_listener(listener, self._error)

    def _remove(self, listener: _Listener) -> None:
        listener.disposed = True
        with self._state_lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

    def add_listener(
        self,
        on_values: Callable[[list[Any]], None],
        on_end: Callable[[BaseException | None], None] | None = None,
        *,
        replay: bool = False,
    ) -> Disposable:
        """Receive every new batch of values as a list (cheaper than per-value).

        For consumers that render or aggregate (widgets). Called on the
        producing thread; keep it quick. Returns a disposable.
        """
        return self._add(_Listener(lambda c: on_values(self._resolved(c)), on_end), replay=replay)

    def listen_chunks(
        self,
        on_chunk: Callable[[Chunk], None],
        on_end: Callable[[BaseException | None], None] | None = None,
    ) -> Disposable:
        """Receive every new :class:`Chunk` (values with ids and lineage); for jobs."""
        return self._add(_Listener(on_chunk, on_end), replay=False)

    def _subscribe_core(
        self,
        observer: rx_abc.ObserverBase[Any],
        scheduler: rx_abc.SchedulerBase | None = None,
    ) -> rx_abc.DisposableBase:
        return self._add(_observer_listener(observer, self._resolved), replay=False)


def _observer_listener(
    observer: rx_abc.ObserverBase[Any], resolve: Callable[[Chunk], list[Any]]
) -> _Listener:
    on_next = observer.on_next

    def on_chunk(chunk: Chunk) -> None:
        for v in resolve(chunk):
            on_next(v)

    def on_end(error: BaseException | None) -> None:
        if error is None:
            observer.on_completed()
        else:
            observer.on_error(error if isinstance(error, Exception) else Exception(repr(error)))

    return _Listener(on_chunk, on_end)
