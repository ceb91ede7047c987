"""The inline runner: a sync map or flat-map job run chunk by chunk on whichever thread delivers.

Why a runner of its own: a map spec needs no thread of its own and no queue
per value. A chunk of input goes through the function in one loop and, in a
fused flow, the output is handed straight to the next map spec on the same
thread. Values fed from outside are drained on the worker's threads, so the
feeding cell returns at once; a feeder far ahead is held by the backlog.
"""

from __future__ import annotations

import operator
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from functools import partial
from itertools import islice, repeat
from typing import TYPE_CHECKING, Any

from ._inbox import MAX_BACKLOG, Backlog
from ._interrupt import held_interrupts
from ._livejob import LiveJob
from ._retry import DROP, RETRY
from .spec import DEFAULT
from .stream import MAX_CHUNK, Chunk

if TYPE_CHECKING:
    from .worker import LiveWorker

__all__ = ["InlineRunner"]


class _Failed(Exception):
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class _Skipped(Exception):
    """A datapoint is dropped by ``on_error="skip"``."""


_SKIP = object()
FLAT_FLUSH = 0.05  # seconds a generator's yields may be gathered before they are pushed
SLOW_YIELD = 0.01  # a yield that took this long is pushed at once
SLOW_MAP = 0.02  # a map call that took this long (on average over a slice) is pushed at once


def _follows(a: Chunk, b: Chunk) -> bool:
    """Whether chunk ``b`` continues chunk ``a`` (same stream, next seq, same lineage kind)."""
    return (
        a.stream_id == b.stream_id
        and a.seq0 + len(a.values) == b.seq0
        and a.parent_stream == b.parent_stream
        and (a.parent_seqs is None) == (b.parent_seqs is None)
    )


class InlineRunner:
    """Runs a sync map or flat-map job chunk by chunk, in order, on whichever
    thread delivers (see the module docstring)."""

    def __init__(self, worker: LiveWorker, job: LiveJob) -> None:
        self.worker = worker
        self.job = job
        self.pending: deque[Any] = deque()
        self._next_seq = 0  # the seq of the input expected next
        self._mutex = threading.Lock()  # entered as the lock itself: see _interrupt.py
        self.lock = threading.Condition(self._mutex)
        self.room = Backlog(self.lock)  # values in ``pending``, and the feeders held on them
        self.draining = True  # nothing runs until launch()
        self.activity = job._life.activity
        d = worker.definition
        self.flat = d.form == "flatmap"
        self.fn = worker.call(job)
        self.out_type = job.spec.out_tags[DEFAULT]
        self.out = job._outputs[DEFAULT]
        stream = self.source = job._inputs[DEFAULT]
        inline = stream.fused
        stream.listen_chunks(
            partial(self.submit, inline=inline),
            lambda _err: self.submit(_END, inline=inline),
        )
        job._life.on_cancel.append(self.discard)

    def discard(self) -> None:
        """Drop what is queued (the job was cancelled)."""
        with self._mutex:
            items = list(self.pending)
            self.pending.clear()
            self.room.queued = 0
            self.lock.notify_all()
        if self.activity is not None:
            n = sum(1 if c is _END else len(c.values) for c in items)
            if n:
                self.activity.done(n)

    def launch(self) -> None:
        """Start running once a slot holds the job (called again when one frees, if none is free).

        Not while the env closes: a waiting job given the slot of one just cancelled is
        about to be cancelled too, and was never running."""
        worker = self.worker
        if worker.env.closed or not worker.slots.take(self.job, self.launch) or not worker._started(self.job):
            return
        with self._mutex:
            if not self.pending:
                self.draining = False
                self.source.consumer_idle = True
                return
        self.worker._executor.submit(self.drain)

    def submit(self, item: Any, *, inline: bool) -> None:
        if self.job._finished or self.job._cancelled:
            return  # cancelled or failed: what still arrives is not processed
        with self._mutex:
            if item is not _END:
                if item.seq0 < self._next_seq:
                    return  # had it already: a delivery stopped by an interrupt, given again
                # (no call between these two: an interrupt cannot split them)
                self._next_seq = item.seq0 + len(item.values)
                self.pending.append(item)
                self.room.queued += len(item.values)
                if self.activity is not None:
                    self.activity.add(len(item.values))
            else:
                self.pending.append(item)
                if self.activity is not None:
                    self.activity.add(1)  # the end too, until the job has ended
            start = not self.draining
            if start and inline:
                self.draining = True
            if start:
                self.source.consumer_idle = False
        if start:
            if inline:
                self.drain()
            else:
                self._start_drain()
        if not inline and self.room.queued > MAX_BACKLOG:
            with self._mutex:
                self.room.hold(self._stopped)

    def _start_drain(self) -> None:
        """Claim the drain and hand it to a worker thread as one, a kernel interrupt held
        meanwhile: claimed and never handed over, nothing would drain this job again.
        (An item queued before the claim waits for the next drain; nothing is held.)"""
        with held_interrupts():
            with self._mutex:
                if self.draining:
                    return
                self.draining = True
            self.worker._executor.submit(self.drain)

    def _stopped(self) -> bool:
        job = self.job
        return job._finished or job._cancelled

    def _next(self) -> Any:
        """The next item to process, consecutive chunks merged (up to
        ``MAX_CHUNK`` values); None when idle.

        Run dry, the drain pulls what was fed one by one into the input
        stream's buffer (the consumer is idle: no reason to wait for the
        flusher's deadline), so a loop of ``feed`` calls is processed in
        chunks of whatever it fed meanwhile.
        """
        pending = self.pending
        source = self.source
        while True:
            with self._mutex:
                if pending:
                    merged = self._pop()
                    break
                if not source._buf:
                    self.draining = False
                    source.consumer_idle = True
                    return None
            source.flush()  # delivered to submit(), which queues it: this drain runs
        if len(merged) == 1:
            return merged[0]
        first = merged[0]
        values = [v for c in merged for v in c.values]
        parents = None if first.parent_seqs is None else [p for c in merged for p in c.parent_seqs]
        return Chunk(first.stream_id, first.seq0, first.time, values, first.parent_stream, parents)

    def _pop(self) -> list[Any]:
        """The first queued item, or consecutive chunks to merge (the lock is held)."""
        pending = self.pending
        item = pending.popleft()
        if item is not _END:
            self._taken(len(item.values))
        if item is _END or not pending or pending[0] is _END:
            return [item]
        merged = [item]
        size = len(item.values)
        while (
            pending
            and pending[0] is not _END
            and size + len(pending[0].values) <= MAX_CHUNK
            and _follows(merged[-1], pending[0])
        ):
            merged.append(pending.popleft())
            size += len(merged[-1].values)
            self._taken(len(merged[-1].values))
        return merged

    def _taken(self, n: int) -> None:
        """``n`` values left the queue (the lock is held); wake a held feeder."""
        self.room.taken(n)

    def drain(self) -> None:
        job = self.job
        act = self.activity
        try:
            self.worker.ensure_init()
        except BaseException as e:  # a KeyboardInterrupt raised by the hook too: the job fails, not the drain
            job._life.fail(e)
        while True:
            item = self._next()
            if item is None:
                return
            if item is _END:
                try:
                    if not job._life.status.done:
                        job._life.complete()
                finally:
                    if act is not None:
                        act.done(1)
                continue
            try:
                if not job._life.status.done:
                    self.process(item)
            except BaseException as e:
                job._life.fail(e)
            finally:
                if act is not None:
                    act.done(len(item.values))

    def process(self, chunk: Chunk) -> None:
        """Run the function over a chunk and push what it returns.

        The loop body is kept to a call and an append (this is the per-event
        cost of a fused flow). The chunk is walked in slices of 1, 2, 4, ...
        values with the clock read between them: results are pushed once
        ``FLAT_FLUSH`` seconds have passed, and at once after a slice that took
        ``SLOW_MAP`` or more per value (the slices then start again from one), so
        a slow function's outputs are seen as they are computed, not when the
        whole chunk is done. A fast one pays a clock read per slice.
        """
        if self.flat:
            self._process_flat(chunk)
            return
        values, seq0, sid = chunk.values, chunk.seq0, chunk.stream_id
        n = len(values)
        it = iter(values)  # the slices are taken from it: no copy
        out: list[Any] = []
        first = 0  # index in values of out[0]
        lo, size = 0, 1
        clock = time.monotonic
        last = clock()
        while lo < n:
            hi = min(n, lo + size)
            began = clock()
            failure = self._map_into(it, chunk, lo, hi, out)
            if failure is not None:
                self._push(*self._kept(out, seq0 + first), sid)
                self.job._life.fail(failure)
                return
            now = clock()
            # Slow per value, not per slice: a slice also waits for the GIL and the
            # machine, which must not break a fast map's chunks into small ones.
            slow = now - began >= SLOW_MAP * (hi - lo)
            if slow or now - last >= FLAT_FLUSH:
                self._push(*self._kept(out, seq0 + first), sid)
                out, first, last = [], hi, now
            size = 1 if slow else size * 2
            lo = hi
        self._push(*self._kept(out, seq0 + first), sid)

    def _map_into(
        self, it: Iterator[Any], chunk: Chunk, lo: int, hi: int, out: list[Any]
    ) -> BaseException | None:
        """Append the function's result for the next ``hi - lo`` values of ``it``
        (``chunk.values[lo:hi]``) to ``out``; a raising value leaves the fast loop for
        :meth:`recover`. The failure that ends the job, if any."""
        fn = self.fn
        values = chunk.values
        append = out.append
        off = len(out) - lo  # out[i + off] is the result of values[i]
        start = lo
        while start < hi:
            try:
                for v in islice(it, hi - start):
                    append(fn(v))
                return None
            except Exception as e:
                i = len(out) - off  # the value that raised (the iterator is past it)
                try:
                    append(self.recover(values[i], e, (chunk.stream_id, chunk.seq0 + i)))
                except _Failed as f:
                    return f.exc
                start = i + 1
        return None

    def _push(self, out: list[Any], parents: Sequence[int], stream_id: str) -> None:
        if out:
            job = self.job
            checked = self.out_type.check_many(out, spec=job.spec.name, tag=DEFAULT, side="output")
            self.out.push(checked, stream_id, parents)

    def _process_flat(self, chunk: Chunk) -> None:
        """Run a generator per input value and push what it yields.

        Yields are gathered into one push, but readers should see a generator
        that takes its time live, not when it ends: what was gathered is pushed
        every ``FLAT_FLUSH`` seconds or ``MAX_CHUNK`` values, and at once after
        a yield that took ``SLOW_YIELD`` or more (a sensor sleeping between
        readings).

        A failing generator is retried per policy; values of it already pushed
        are skipped on the retry (by position), so none is emitted twice.
        """
        values, seq0, sid = chunk.values, chunk.seq0, chunk.stream_id
        out: list[Any] = []
        parents: list[int] = []
        clock = time.monotonic
        last = clock()
        for i, v in enumerate(values):
            seq = seq0 + i
            sent = 0  # values of this input already pushed
            attempt = 0
            while True:
                mark = len(out)
                produced = 0
                prev = clock()
                try:
                    for r in self.fn(v):
                        produced += 1
                        if produced <= sent:
                            continue  # pushed before a retry: not again
                        out.append(r)
                        parents.append(seq)
                        now = clock()
                        if now - last >= FLAT_FLUSH or now - prev >= SLOW_YIELD or len(out) >= MAX_CHUNK:
                            self._push(out, parents, sid)
                            sent, out, parents, mark, last = produced, [], [], 0, now
                        prev = now
                    break
                except Exception as e:
                    del out[mark:], parents[mark:]
                    attempt += 1
                    try:
                        self._retry_or_raise(e, attempt, v, (sid, seq))
                    except _Skipped:
                        break
                    except _Failed as f:
                        self._push(out, parents, sid)
                        self.job._life.fail(f.exc)
                        return
        self._push(out, parents, sid)

    def _retry_or_raise(self, exc: Exception, attempt: int, value: Any, parent: tuple[str, int]) -> None:
        """Return (after the backoff) to retry; raise ``_Skipped`` (skipped, or sent to the
        errors stream) or ``_Failed`` per the policy."""
        worker, job = self.worker, self.job
        decision = worker.policy.decide(job, exc, attempt, (DEFAULT, value, parent))
        if decision == RETRY:
            time.sleep(worker.policy.delay(attempt))
            if job._life.status.done:
                raise _Failed(exc)
            return
        if decision == DROP:
            raise _Skipped
        raise _Failed(exc)

    def _kept(self, results: list[Any], seq0: int) -> tuple[list[Any], Sequence[int]]:
        """What to emit and, for each, the seq of the input it came from."""
        # identity tests in C: `None in results` would call each value's __eq__
        if not any(map(operator.is_, results, repeat(None))) and not any(
            map(operator.is_, results, repeat(_SKIP))
        ):
            return results, range(seq0, seq0 + len(results))
        kept = [i for i, r in enumerate(results) if r is not None and r is not _SKIP]
        return [results[i] for i in kept], [seq0 + i for i in kept]

    def recover(self, value: Any, exc: Exception, parent: tuple[str, int]) -> Any:
        """Retry ``value`` per policy; return its result, ``_SKIP``, or raise ``_Failed``."""
        attempt = 0
        while True:
            attempt += 1
            try:
                self._retry_or_raise(exc, attempt, value, parent)
            except _Skipped:
                return _SKIP
            try:
                return self.fn(value)
            except Exception as e:
                exc = e
