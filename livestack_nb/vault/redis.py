"""The Redis vault: one record shared by every process that opens the same URL.

Why Redis: it is an existing, well-understood server whose Streams give an
append-only log per stream, blocking reads for live followers, and consumer
groups with pending-entry lists, which is exactly what a job queue with
takeover needs. Nothing here is home-made that Redis already does.

Key layout (every key starts with the prefix, ``livestack`` by default,
``?prefix=`` in the URL to change it)::

    {p}:jobs                    ZSET    job ids scored by creation time
    {p}:job:{id}                HASH    spec, parent, options (JSON), created, status (latest),
                                        queued (set once the job is on its queue)
    {p}:job:{id}:statuses       STREAM  append-only history: status, time, detail
    {p}:job:{id}:streams        HASH    "in:{tag}" / "out:{tag}" -> stream id
    {p}:job:{id}:children       LIST    jobs this job started
    {p}:stream:{stream_id}      STREAM  datapoints, one entry per batch (see below)
    {p}:seqs                    HASH    stream id -> next seq (count of datapoints)
    {p}:ended                   HASH    stream id -> "" or an error (the stream has ended)
    {p}:queue:{spec}            STREAM  job queue of a spec; consumer group "workers"
    {p}:worker:{name}           STRING  a worker's heartbeat (expires when it goes silent)
    {p}:validation_failures     LIST    values refused at a tag (JSON)
    {p}:rejected                LIST    malformed queue messages, as reported (JSON)
    {p}:wake:{random}           STREAM  wakes this process's reader when it follows a new key
    {p}:lease:{job}             STRING  the client's lease on a job with open input (expires)
    {p}:epoch                   STRING  a token set once: gone means the server lost its data

Datapoints: an entry holds consecutive datapoints of one stream. Its id is
``0-{seq after the last}``, so ids are the datapoint seqs and Redis itself
keeps them increasing. An entry is appended by a Lua script only when its
first seq is the stream's next one: a retried or taken-over job that emits
its outputs again from seq 0 has what is already stored dropped (the writer
trims and re-sends what overlaps), so a datapoint id (job id + tag + seq)
is stored once and a reader never sees it twice. ``XADD MAXLEN ~ maxlen``
bounds every stream to about ``maxlen`` entries (batches of up to
:data:`MAX_ENTRY` values); ``{p}:seqs`` still counts every datapoint. An
ended stream gets a last entry with id ``1-0`` (after every data id), which
followers see, and takes no more datapoints.

Values are JSON, encoded with pydantic by the tag's type (``bytes`` as
base64) and validated by it when read back. Nothing read from Redis is ever
unpickled.

Writes go behind the hot path (see :mod:`._writebehind`): the writer thread
sends each batch as one pipeline, merging consecutive chunks of a stream into
one entry, and wakes at once for every record other than datapoints, since
other processes are watching for jobs, statuses and queue messages.
:meth:`RedisVault.flush` returns once everything recorded before it is in
Redis. A pipeline is not a transaction: a command that fails is reported to
the flushes waiting on its batch, and the writer goes on with the next batch
(a datapoint entry that lost its place is caught by the append script, which
says which seqs were never stored).

Live followers (a notebook mirroring a job that runs elsewhere, a worker
reading a job's input) share one reader thread that blocks in ``XREAD`` on
every followed key; it also renews the leases this process holds.

Faults: a lost connection is retried with backoff by the writer (the batch is
sent again: datapoints, statuses, ends and queue messages are stored once however
often they are sent; a child link or a refused-value report may repeat) and by
the reader, for up to
``reconnect_timeout`` seconds. Once the server answers again, ``{p}:epoch``
tells whether it kept its data; if not (a restart without persistence), what
was recorded is gone, and :meth:`RedisVault.on_lost` callbacks are told.
A worker's writes for a job are fenced by its queue message (see ``FENCE``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._redis_entries import (
    End,
    Enqueue,
    Entry,
    Lease,
    Token,
    as_str,
    decode_entry,
    job_record,
    status_record,
)
from ._redis_live import RedisFollowers
from ._redis_lua import (
    ACK,
    ADD_JOB,
    APPEND,
    END,
    END_ID,
    ENQUEUE,
    GROUP,
    MAX_ENTRY,
    READ_PAGE,
    STATUS,
    TOUCH,
)
from ._redis_queue import RedisQueues
from ._writebehind import Child, WriteBehindVault
from .base import (
    BatchRecord,
    DatapointRecord,
    JobRecord,
    StatusRecord,
    StreamRecord,
    ValidationFailureRecord,
    points_of,
)

if TYPE_CHECKING:
    from .queue import QueueVault

__all__ = ["GROUP", "MAX_ENTRY", "RedisVault", "safe_url"]

log = logging.getLogger("livestack_nb")


def safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "<unparseable url>"


class RedisVault(RedisQueues, RedisFollowers, WriteBehindVault):
    """A vault in a Redis server, shared by every process on the same URL.

    Parameters
    ----------
    url:
        ``redis://[user:password@]host:port/db`` or ``rediss://...`` (TLS).
        Query parameters ``prefix`` (key prefix) and ``maxlen`` (entries kept
        per stream) set the arguments below; others go to redis-py.
    prefix:
        Every key this vault uses starts with ``{prefix}:``.
    maxlen:
        Each data stream keeps about this many entries (``XADD MAXLEN ~``).
    interval:
        The writer sends what has queued at least this often (seconds).
    batch_values:
        Wake the writer early once this many values are waiting.
    max_backlog:
        Hold producers back while this many values wait to be written.
    connect_timeout:
        Seconds to wait for the server when opening.
    reconnect_timeout:
        How long a lost server is waited for (writes resent, readers retrying,
        with backoff) before what waits on it fails (``?reconnect_timeout=``).
    client_lease:
        Seconds a job started here keeps its input open without this process
        being heard from: a process that dies while feeding has its jobs failed
        ("client gone") by their workers once that long has passed
        (``?client_lease=``). See :mod:`livestack_nb.remote`.

    Raises
    ------
    LivestackError
        The URL is malformed or the server cannot be reached or refuses the
        credentials; the message names the URL (without its password).
    """

    queues = True  # jobs can be dispatched to other processes (see livestack_nb.remote)
    records_at_once = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        maxlen: int | None = None,
        interval: float = 0.005,
        batch_values: int = 50_000,
        max_backlog: int = 2_000_000,
        connect_timeout: float = 5.0,
        reconnect_timeout: float | None = None,
        client_lease: float | None = None,
    ) -> None:
        import redis

        self.url = safe_url(url)
        try:
            parts = urlsplit(url)
            query = dict(parse_qsl(parts.query))
        except ValueError as e:
            raise self._fail("is not a valid URL", e) from None
        if parts.scheme not in ("redis", "rediss"):
            raise self._fail("must start with redis:// or rediss://")
        prefix = prefix or query.pop("prefix", "livestack")
        try:
            maxlen = maxlen if maxlen is not None else int(query.pop("maxlen", 100_000))
        except ValueError as e:
            raise self._fail("has a maxlen that is not an int", e) from None
        query.pop("prefix", None)
        query.pop("maxlen", None)
        if maxlen < 1:
            raise self._fail(f"maxlen must be >= 1, not {maxlen}")
        self.reconnect_timeout = self._seconds(query, "reconnect_timeout", reconnect_timeout, 60.0)
        self.client_lease = self._seconds(query, "client_lease", client_lease, 30.0)
        self.prefix = prefix
        self.maxlen = maxlen
        plain = urlunsplit(parts._replace(query=urlencode(query)))
        try:
            self._r: Any = redis.Redis.from_url(
                plain,
                socket_connect_timeout=connect_timeout,
                health_check_interval=30,
            )
            self._r.ping()
        except (ValueError, TypeError) as e:
            raise self._fail("is not a valid Redis URL", e) from None
        except redis.AuthenticationError as e:
            raise self._fail("refused the credentials", e) from None
        except redis.ResponseError as e:  # e.g. an ACL user without the rights to PING
            raise self._fail("refused the connection", e) from None
        except redis.RedisError as e:
            raise self._fail("cannot be reached", e) from None
        self._add_job = self._r.register_script(ADD_JOB)
        self._append = self._r.register_script(APPEND)
        self._end = self._r.register_script(END)
        self._status_script = self._r.register_script(STATUS)
        self._enqueue_script = self._r.register_script(ENQUEUE)
        self._touch_script = self._r.register_script(TOUCH)
        self._ack_script = self._r.register_script(ACK)
        # job id or stream id -> (queue key, message id, consumer): see FENCE
        self._fences: dict[str, tuple[str, str, str]] = {}
        # stream id -> the seq after the last entry this process stored (see _segments)
        self._next_seq: dict[str, int] = {}
        # What this process recorded is in the server's data as long as this key holds
        # the token read here: a server that restarted without its data has lost it.
        self._epoch_lock = threading.Lock()
        self._epoch = self._new_epoch()
        self._settled = threading.Event()  # clear while on_lost callbacks are being told
        self._settled.set()
        self._lost_callbacks: list[Callable[[str], None]] = []
        self.losses = 0  # how often the server was found without the data recorded before
        self._leases: dict[str, float] = {}  # key -> ttl (s): kept alive by the reader thread
        self._leases_renewed = 0.0
        self._shared: set[str] = set()  # stream ids appended at the end (see share)
        self._writer_mode = "w:" + uuid.uuid4().hex
        self._follows: dict[str, list[Any]] = {}  # key -> [last id, handler]
        self._follow_lock = threading.Lock()
        self._groups: set[str] = set()
        tag = uuid.uuid4().hex[:6]
        self._reader: threading.Thread | None = None
        self._reader_name = f"livestack-redis-reader-{tag}"
        # The reader blocks in XREAD on the keys it follows; a new follow
        # writes to this key (which it also reads) to wake it at once.
        self._wake_key = self.k("wake", uuid.uuid4().hex)
        self._follows_changed = threading.Event()
        super().__init__(
            name=f"livestack-redis-writer-{tag}",
            interval=interval,
            batch_values=batch_values,
            max_backlog=max_backlog,
        )

    @property
    def _label(self) -> str:
        return f"redis vault {self.url!r}"

    def _seconds(self, query: dict[str, str], name: str, given: float | None, default: float) -> float:
        raw = query.pop(name, None)
        try:
            value = given if given is not None else float(raw) if raw is not None else default
        except ValueError as e:
            raise self._fail(f"has a {name} that is not a number", e) from None
        if not value > 0:
            raise self._fail(f"{name} must be > 0 seconds, not {value!r}")
        return value

    # -- keys -----------------------------------------------------------------------

    def k(self, *parts: str) -> str:
        """The key ``{prefix}:{part}:{part}...``."""
        return ":".join((self.prefix, *parts))

    def stream_key(self, stream_id: str) -> str:
        return self.k("stream", stream_id)

    def status_key(self, job_id: str) -> str:
        return self.k("job", job_id, "statuses")

    def queue_key(self, spec: str) -> str:
        return self.k("queue", spec)

    # -- writing (see _writebehind) ----------------------------------------------------

    def _release(self) -> None:
        reader = self._reader
        if reader is not None:
            self._follows_changed.set()
            reader.join()
            with contextlib.suppress(Exception):
                self._r.delete(self._wake_key)
        self._r.close()

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

    def share(self, stream_id: str) -> None:
        """Append what this process records of ``stream_id`` at the stream's end, whatever
        its local seqs: for a stream that several processes write to (a job's input fed
        from two of them, a named stream). Its readers see each entry once, in the order
        the server took them."""
        self._shared.add(stream_id)

    def claim_job_id(self, job_id: str) -> bool:
        """Take ``job_id`` atomically (``SET NX``): of two processes starting the same id
        at once, one is refused; an id a job already has is refused too."""
        if not self._read().set(self.k("job", job_id, "claimed"), 1, nx=True):
            return False
        return self.job(job_id) is None

    def mark_remote(self, job_id: str) -> None:
        """Record that ``job_id`` runs on a queue (its input is read from Redis, so any
        process may feed it)."""
        self._r.sadd(self.k("queued_jobs"), job_id)

    def is_remote(self, job_id: str) -> bool:
        """Whether ``job_id`` was put on a queue (see :meth:`mark_remote`)."""
        return bool(self._read().sismember(self.k("queued_jobs"), job_id))

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

    # -- writes beyond the contract ---------------------------------------------------

    def end_stream(self, stream_id: str, error: str | None = None) -> None:
        """Mark ``stream_id`` ended (after what was recorded before): followers see it."""
        self._put(End(stream_id, error))

    # -- the contract: reads (each first flushes, so a process reads its own writes) ----

    def _read(self) -> Any:
        self.flush()
        if self._closed:
            raise self._fail("is closed")
        return self._r

    def jobs(self) -> list[JobRecord]:
        r = self._read()
        ids = [as_str(i) for i in r.zrange(self.k("jobs"), 0, -1)]
        pipe = r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.k("job", i))
        return [job_record(i, h) for i, h in zip(ids, pipe.execute(), strict=True) if h]

    def job(self, job_id: str) -> JobRecord | None:
        h = self._read().hgetall(self.k("job", job_id))
        return job_record(job_id, h) if h else None

    def statuses(self, job_id: str) -> list[StatusRecord]:
        return [status_record(job_id, f) for _, f in self._read().xrange(self.status_key(job_id))]

    def streams(self, job_id: str) -> list[StreamRecord]:
        h = self._read().hgetall(self.k("job", job_id, "streams"))
        out = []
        for key, sid in h.items():
            direction, _, tag = as_str(key).partition(":")
            out.append(StreamRecord(as_str(sid), job_id, direction, tag))
        return sorted(out, key=lambda s: (s.direction, s.tag))

    def children(self, job_id: str) -> list[str]:
        return [as_str(c) for c in self._read().lrange(self.k("job", job_id, "children"), 0, -1)]

    def validation_failures(self, job_id: str | None = None) -> list[ValidationFailureRecord]:
        out = []
        for raw in self._read().lrange(self.k("validation_failures"), 0, -1):
            rec = ValidationFailureRecord(**json.loads(raw))
            if job_id is None or rec.job_id == job_id:
                out.append(rec)
        return out

    def count(self, stream_id: str) -> int:
        n = self._read().hget(self.k("seqs"), stream_id)
        return int(n) if n is not None else 0

    def ended(self, stream_id: str) -> bool:
        """Whether ``stream_id`` has ended."""
        return bool(self._read().hexists(self.k("ended"), stream_id))

    def batches(
        self, stream_id: str, start: int = 0, stop: int | None = None, value_type: Any = Any
    ) -> Iterator[BatchRecord]:
        """Stored datapoints with ``start <= seq < stop``, decoded by ``value_type``.

        Entries older than the stream's ``maxlen`` are gone; what is still
        stored comes back in seq order, a page at a time.
        """
        r = self._read()
        key = self.stream_key(stream_id)
        low = f"0-{start + 1}"  # the entry holding `start` is the first whose id (its end) is past it
        while True:
            page = r.xrange(key, low, f"({END_ID}", count=READ_PAGE)
            for entry_id, fields in page:
                low = f"({as_str(entry_id)}"
                batches = list(decode_entry(stream_id, fields, value_type))
                if stop is not None and batches and batches[0].seq0 >= stop:
                    return
                yield from batches
            if len(page) < READ_PAGE:
                return

    def datapoints(self, stream_id: str, after: int = -1, limit: int | None = None) -> list[DatapointRecord]:
        return points_of(stream_id, self.batches(stream_id, after + 1), after, limit)

    def __repr__(self) -> str:
        return f"RedisVault({self.url!r}, prefix={self.prefix!r})"


if TYPE_CHECKING:

    def _implements_the_queue_contract(vault: RedisVault) -> QueueVault:
        return vault  # mypy checks RedisVault against QueueVault here
