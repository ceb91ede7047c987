"""The Redis vault's writer: how queued records become pipelines, and what their answers mean.

The writer thread (see :mod:`._writebehind`) hands a batch of records to
:meth:`RedisWriter._write`: consecutive chunks of one stream are merged into
one entry, the records are sent as few pipelines as their order allows (a
record after datapoints waits until those are in), each through its script
(see :mod:`._redis_lua`), and an entry the append script refused is trimmed
to what is not stored yet and sent again. A lost connection is retried with
backoff for ``reconnect_timeout`` seconds.

A mixin of :class:`~livestack_nb.vault.redis.RedisVault`, which owns the
connection, the registered scripts and the state set up in its ``__init__``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from ._redis_entries import End, Enqueue, Entry, Lease, Token
from ._redis_part import RedisPart
from ._writebehind import Child
from .base import JobRecord, StatusRecord, StreamRecord, ValidationFailureRecord

__all__ = ["RedisWriter"]

log = logging.getLogger("livestack_nb")


class RedisWriter(RedisPart):
    """Sending what the writer thread batched (see the module docstring)."""

    if TYPE_CHECKING:  # what else of the vault this part uses (see RedisVault.__init__)
        maxlen: int
        reconnect_timeout: float
        _writer_mode: str
        _shared: set[str]
        _fences: dict[str, tuple[str, str, str]]
        _next_seq: dict[str, int]
        _add_job: Any
        _append: Any
        _end: Any
        _status_script: Any
        _enqueue_script: Any

        def check_epoch(self, *, wait: bool = False) -> bool: ...

    def _write(self, batch: list[Any]) -> BaseException | None:
        """Send ``batch`` in order, as few pipelines as its order allows; the error of a failed
        command, if any.

        Not a transaction, and a failed command stops nothing: its error goes to the
        flushes waiting on this batch, and the rest is sent as usual. A record that
        follows datapoints (a job's status after its outputs) goes in the next
        pipeline, sent once every datapoint entry before it is in Redis: an entry the
        append script refused (part of it was stored by an earlier run of a taken-over
        job) is trimmed and sent again first, so no reader ever sees a job completed
        before all of its outputs.

        A lost connection (the server restarting) does not lose the batch: what was
        not confirmed is sent again, with backoff, for up to ``reconnect_timeout``
        seconds (appends are placed by seq, statuses carry a token, ends and enqueues
        happen once; only a child link or a refused-value report may repeat).
        """
        import redis

        segments = self._segments(batch)
        error: BaseException | None = None
        failing_since: float | None = None
        delay = 0.05
        i = 0
        while i < len(segments):
            try:
                error = self._send(segments[i]) or error
            except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.NoScriptError) as e:
                # NOSCRIPT: the pipeline was retried on a restarted server, which has not
                # loaded the scripts yet; sent again, the new pipeline loads them first.
                now = time.monotonic()
                if failing_since is None:
                    failing_since = now
                    log.warning("%s: the server is unreachable (%s); retrying the write", self._label, e)
                if now - failing_since >= self.reconnect_timeout:
                    gone = now - failing_since
                    log.error("%s: a write was lost: unreachable for %.0f s", self._label, gone)
                    return self._fail(f"unreachable for {now - failing_since:.0f} s; a write was lost", e)
                time.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            except Exception as e:
                log.exception("%s: a write failed", self._label)
                error = e
            if failing_since is not None:
                failing_since = None
                delay = 0.05
                self.check_epoch()
            i += 1
        return error

    def _segments(self, batch: list[Any]) -> list[list[Any]]:
        """``batch`` cut where a record follows datapoints that may be refused; consecutive
        chunks of a stream merged into one entry (see :meth:`_write`).

        An entry that starts at the seq this process last stored for its stream is
        appended as sent (only a fenced-off writer, whose records are refused too, could
        have moved the stream on), so a job's steady stream of outputs and statuses goes
        as one pipeline; the cut costs a round trip only where a stream is new to this
        process: the first outputs of a job taken over, which may overlap the earlier run's.
        """
        segments: list[list[Any]] = []
        current: list[Any] = []
        unsure = False  # `current` holds an entry the append script may refuse
        open_entries: dict[str, Entry] = {}
        known = self._next_seq
        shared = self._shared
        ahead: dict[str, tuple[int, bool]] = {}  # stream -> (next seq after this batch's entries, sure)
        for item in batch:
            if type(item) is tuple:  # (codec, chunk): merged into the stream's open entry
                codec, chunk = item
                sid = codec.stream_id
                entry = open_entries.get(sid)
                if entry is None or not entry.take(chunk):
                    if entry is not None:
                        current.append(entry)
                    open_entries[sid] = Entry(codec, chunk)
                nxt, sure = ahead.get(sid) or (known.get(sid, -1), True)
                sure = sid in shared or (sure and nxt == chunk.seq0)  # shared: appended at the end
                unsure = unsure or not sure
                ahead[sid] = (chunk.seq0 + len(chunk.stored), sure)
                continue
            current.extend(open_entries.values())  # what came before this item is sent before it
            open_entries.clear()
            if unsure:
                segments.append(current)
                current, unsure = [], False
            if type(item) is StatusRecord:
                item = Token(item, uuid.uuid4().hex)  # the same token however often it is sent
            current.append(item)
        current.extend(open_entries.values())
        if current:
            segments.append(current)
        return segments

    def _send(self, segment: list[Any]) -> BaseException | None:
        """One pipeline; then each refused datapoint entry settled. Connection errors raise."""
        import redis

        pipe = self._r.pipeline(transaction=False)
        appends: list[tuple[int, Entry]] = []  # (index in the pipeline, entry)
        ops = 0
        for item in segment:
            if type(item) is Entry:
                self._queue_append(pipe, item, force=False)
                appends.append((ops, item))
                ops += 1
            else:
                ops += self._queue_op(pipe, item)
        if not ops:
            return None
        error: BaseException | None = None
        results = pipe.execute(raise_on_error=False)
        for r in results:
            if isinstance(r, redis.exceptions.NoScriptError):
                raise r  # the whole segment goes again (see _write)
            if isinstance(r, Exception):
                log.error("%s: a write failed: %s", self._label, r)
                error = r
        for index, entry in appends:
            self._settle(entry, results[index])
        return error

    def _queue_append(self, pipe: Any, entry: Entry, *, force: bool) -> None:
        sid = entry.codec.stream_id
        mode = self._writer_mode if sid in self._shared else ("1" if force else "0")
        keys = [self.stream_key(sid), self.k("seqs"), self.k("ended"), self.k("writers")]
        fence = self._fences.get(sid)
        if fence is not None:
            keys.append(fence[0])
        mid, consumer = ("", "") if fence is None else fence[1:]
        self._append(
            keys=keys,
            args=[sid, entry.seq0, len(entry.values), self.maxlen, mode, mid, consumer, *entry.fields()],
            client=pipe,
        )

    def _settle(self, entry: Entry, result: Any) -> None:
        """An entry the script refused: trim what is stored already and send the rest."""
        while True:
            if isinstance(result, Exception):
                raise result
            code, nxt = int(result[0]), int(result[1])
            sid = entry.codec.stream_id
            if code == 1:
                if len(self._next_seq) >= 100_000:  # streams that never ended: start over
                    self._next_seq.clear()
                self._next_seq[sid] = nxt
                return
            self._next_seq.pop(sid, None)
            if code == -1:
                log.debug("stream %r has ended; %d late values dropped", sid, len(entry.values))
                return
            if code == -2:
                log.info("stream %r: %d values refused: its job was taken over", sid, len(entry.values))
                return
            stop = entry.seq0 + len(entry.values)
            if stop <= nxt:
                return  # all of it is stored already (a retried or taken-over job)
            force = False
            if entry.seq0 < nxt:
                entry.skip(nxt - entry.seq0)
            else:
                log.warning("stream %r: seqs %d..%d were never stored", sid, nxt, entry.seq0 - 1)
                force = True
            pipe = self._r.pipeline(transaction=False)
            self._queue_append(pipe, entry, force=force)
            result = pipe.execute(raise_on_error=False)[0]

    def _fenced(self, key: str, keys: list[str], args: list[Any]) -> tuple[list[str], list[Any]]:
        """``keys``/``args`` of a fenced script, with the fence of ``key`` (a job or stream id)."""
        fence = self._fences.get(key)
        if fence is None:
            return keys, [*args, "", ""]
        return [*keys, fence[0]], [*args, fence[1], fence[2]]

    def _queue_op(self, pipe: Any, item: Any) -> int:
        """Queue the commands of one non-datapoint item; return how many."""
        kind = type(item)
        if kind is JobRecord:
            self._add_job(
                keys=[self.k("job", item.job_id), self.k("jobs"), self.status_key(item.job_id)],
                args=[
                    item.job_id,
                    item.spec,
                    item.parent_id or "",
                    "" if item.options is None else json.dumps(item.options),
                    repr(float(item.created)),
                    item.status,
                ],
                client=pipe,
            )
            return 1
        if kind is Token:
            rec = item.record
            keys, args = self._fenced(
                rec.job_id,
                [self.status_key(rec.job_id), self.k("job", rec.job_id)],
                [
                    rec.status,
                    repr(float(rec.time)),
                    "0" if rec.detail is None else "1",
                    rec.detail or "",
                    item.token,
                ],
            )
            self._status_script(keys=keys, args=args, client=pipe)
            return 1
        if kind is StreamRecord:
            pipe.hset(self.k("job", item.job_id, "streams"), f"{item.direction}:{item.tag}", item.stream_id)
            return 1
        if kind is ValidationFailureRecord:
            pipe.rpush(self.k("validation_failures"), json.dumps(item.__dict__))
            return 1
        if kind is Child:
            pipe.rpush(self.k("job", item.parent_id, "children"), item.child_id)
            return 1
        if kind is End:
            sid = item.stream_id
            self._next_seq.pop(sid, None)
            keys, args = self._fenced(sid, [self.stream_key(sid), self.k("ended")], [sid, item.error or ""])
            self._end(keys=keys, args=args, client=pipe)
            return 1
        if kind is Enqueue:
            self._enqueue_script(
                keys=[self.k("job", item.job_id), self.queue_key(item.spec)], args=[item.job_id], client=pipe
            )
            return 1
        if kind is Lease:
            pipe.set(item.key, "1", px=max(1, int(item.ttl * 1000)))
            return 1
        raise AssertionError(f"unknown vault item {item!r}")
