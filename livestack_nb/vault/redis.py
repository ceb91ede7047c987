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
A worker's writes for a job are fenced by its queue message (see ``_FENCE``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import LivestackError
from ._json import Codec, decode_seqs, encode_seqs, load_refs, load_values, split_refs
from ._writebehind import Child, WriteBehindVault
from .base import (
    BatchRecord,
    ChunkLike,
    DatapointRecord,
    JobRecord,
    StatusRecord,
    StreamRecord,
    ValidationFailureRecord,
    points_of,
)

__all__ = ["GROUP", "MAX_ENTRY", "RedisVault", "safe_url"]

log = logging.getLogger("livestack_nb")

GROUP = "workers"
MAX_ENTRY = 16_384  # values per stream entry: bounds what a reader decodes to reach one value
READ_PAGE = 64  # entries per XRANGE when reading a stream back
END_ID = "1-0"  # the id of a stream's end marker: after every data id (0-N)

# KEYS: job hash, jobs zset, statuses stream. ARGV: job id, spec, parent, options, created, status.
# Recording a job twice (a worker preparing a job a notebook recorded) changes nothing.
_ADD_JOB = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'spec', ARGV[2], 'parent', ARGV[3], 'options', ARGV[4],
           'created', ARGV[5], 'status', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'status', ARGV[6], 'time', ARGV[5])
return 1
"""

# A worker writes a job's outputs and statuses under a *fence*: the job's queue message
# must still be pending for that worker (its consumer name in the group's pending-entry
# list). A worker that stalled past its lease, whose message another worker took over,
# has every later write refused, so it cannot overwrite or add to the new owner's work.
# Fenced scripts get the queue key as their last KEY and (message id, consumer) in ARGV.
_FENCE = f"""
local function fenced(queue, mid, consumer)
  if mid == '' then return false end
  local p = redis.pcall('XPENDING', queue, '{GROUP}', mid, mid, 1)
  if p.err then return true end  -- no queue: a server that lost its data
  return #p == 0 or p[1][2] ~= consumer
end
"""

# KEYS: data stream, seqs hash, ended hash, writers hash[, queue]. ARGV: stream id, seq0, n,
# maxlen, force, fence message id, fence consumer, field/value pairs.
# Returns {1, next} when appended, {0, next} when seq0 is not the next seq (nothing written),
# {-1, next} when the stream has ended, {-2, next} when fenced off.
#
# A shared stream (several processes append to it: a job's input fed from two
# cells, a named stream) passes force = 'w:<writer>': the entry goes at the
# stream's next seq whatever its own, its 's' field rewritten to match, and the
# writer's own count (KEYS[4]) makes a retried entry a no-op.
_APPEND = (
    _FENCE
    + """
local nxt = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if #KEYS > 4 and fenced(KEYS[5], ARGV[6], ARGV[7]) then return {-2, nxt} end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return {-1, nxt} end
if string.sub(ARGV[5], 1, 2) == 'w:' then
  local wk = ARGV[1] .. '|' .. string.sub(ARGV[5], 3)
  local mine = tonumber(ARGV[2]) + tonumber(ARGV[3])
  if mine <= tonumber(redis.call('HGET', KEYS[4], wk) or '0') then return {1, nxt} end
  local fields = {unpack(ARGV, 8)}
  fields[2] = tostring(nxt)
  local stop = nxt + tonumber(ARGV[3])
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], string.format('0-%d', stop), unpack(fields))
  redis.call('HSET', KEYS[2], ARGV[1], stop)
  redis.call('HSET', KEYS[4], wk, mine)
  return {1, stop}
end
local seq0 = tonumber(ARGV[2])
if seq0 < nxt or (seq0 > nxt and ARGV[5] ~= '1') then return {0, nxt} end
local stop = seq0 + tonumber(ARGV[3])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], string.format('0-%d', stop), unpack(ARGV, 8))
redis.call('HSET', KEYS[2], ARGV[1], stop)
return {1, stop}
"""
)

# KEYS: data stream, ended hash[, queue]. ARGV: stream id, error ('' for none), fence id, consumer.
_END = (
    _FENCE
    + """
if #KEYS > 2 and fenced(KEYS[3], ARGV[3], ARGV[4]) then return -2 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[1], '1-0', 'end', '1', 'error', ARGV[2])
return 1
"""
)

# KEYS: statuses stream, job hash[, queue]. ARGV: status, time, has detail ('1'/'0'), detail,
# token, fence id, consumer. A status is written once however often it is sent (a batch
# resent after a lost connection): its token is kept in the entry. A job ends once: an end
# status (completed, failed, cancelled) after the first is dropped, so two processes that
# end a job at once (a cancel from the caller, the worker completing it) leave one end.
_STATUS = (
    _FENCE
    + """
if #KEYS > 2 and fenced(KEYS[3], ARGV[6], ARGV[7]) then return -2 end
local ends = {completed=true, failed=true, cancelled=true}
if ends[ARGV[1]] and ends[redis.call('HGET', KEYS[2], 'status') or ''] then return 0 end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  local f = last[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'k' and f[i + 1] == ARGV[5] then return 0 end
  end
end
local fields = {'status', ARGV[1], 'time', ARGV[2]}
if ARGV[3] == '1' then
  fields[#fields + 1] = 'detail'
  fields[#fields + 1] = ARGV[4]
end
fields[#fields + 1] = 'k'
fields[#fields + 1] = ARGV[5]
redis.call('XADD', KEYS[1], '*', unpack(fields))
redis.call('HSET', KEYS[2], 'status', ARGV[1])
return 1
"""
)

# KEYS: job hash, queue. ARGV: job id. A job goes on its queue once, however often it is sent.
_ENQUEUE = """
if redis.call('HSETNX', KEYS[1], 'queued', '1') == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'job', ARGV[1])
return 1
"""

# KEYS: queue. ARGV: consumer, message ids. Acknowledges those still pending for the consumer.
_ACK = f"""
local n = 0
for i = 2, #ARGV do
  local p = redis.pcall('XPENDING', KEYS[1], '{GROUP}', ARGV[i], ARGV[i], 1)
  if not p.err and #p == 1 and p[1][2] == ARGV[1] then
    n = n + redis.call('XACK', KEYS[1], '{GROUP}', ARGV[i])
  end
end
return n
"""

# KEYS: queue. ARGV: consumer, message ids. Refreshes the messages still pending for the
# consumer (their idle time back to 0) and returns those that are not: taken over by
# another worker after this one went silent, or acknowledged by it.
_TOUCH = f"""
local lost = {{}}
for i = 2, #ARGV do
  local p = redis.pcall('XPENDING', KEYS[1], '{GROUP}', ARGV[i], ARGV[i], 1)
  if not p.err and #p == 1 and p[1][2] == ARGV[1] then
    redis.call('XCLAIM', KEYS[1], '{GROUP}', ARGV[1], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""


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


def _s(b: Any) -> str:
    return b.decode() if isinstance(b, bytes) else str(b)


def _text(b: Any) -> str:
    """Any bytes as text, for a report (undecodable bytes escaped, never an error)."""
    return b.decode("utf-8", "backslashreplace") if isinstance(b, bytes) else str(b)


class _End(NamedTuple):
    """Queued by :meth:`RedisVault.end_stream`."""

    stream_id: str
    error: str | None


class _Lease(NamedTuple):
    """Queued by :meth:`RedisVault.hold`: the lease's first setting."""

    key: str
    ttl: float


class _Enqueue(NamedTuple):
    """Queued by :meth:`RedisVault.enqueue`."""

    spec: str
    job_id: str


class _Token(NamedTuple):
    """A status record with the token that makes sending it again harmless."""

    record: StatusRecord
    token: str


class _Entry:
    """Consecutive chunks of one stream, merged into one stream entry."""

    __slots__ = ("codec", "offloaded", "parent_stream", "parents", "seq0", "times", "values")

    def __init__(self, codec: Codec, chunk: ChunkLike) -> None:
        self.codec = codec
        self.seq0 = chunk.seq0
        self.values: list[Any] = list(chunk.stored)
        self.times: list[tuple[int, float]] = [(0, chunk.time)]
        self.offloaded = chunk.offloaded
        self.parent_stream = chunk.parent_stream
        self.parents: list[int] | None = None if chunk.parent_seqs is None else list(chunk.parent_seqs)

    def take(self, chunk: ChunkLike) -> bool:
        """Append ``chunk`` if it continues this entry; ``False`` if it starts a new one."""
        n = len(self.values)
        if (
            chunk.seq0 != self.seq0 + n
            or n + len(chunk.stored) > MAX_ENTRY
            or chunk.parent_stream != self.parent_stream
            or (chunk.parent_seqs is None) != (self.parents is None)
        ):
            return False
        if chunk.time != self.times[-1][1]:
            self.times.append((n, chunk.time))
        self.values.extend(chunk.stored)
        if self.parents is not None:
            assert chunk.parent_seqs is not None
            self.parents.extend(chunk.parent_seqs)
        self.offloaded = self.offloaded or chunk.offloaded
        return True

    def skip(self, k: int) -> None:
        """Drop the first ``k`` values (already stored by an earlier run of the job)."""
        self.seq0 += k
        self.values = self.values[k:]
        if self.parents is not None:
            self.parents = self.parents[k:]
        runs = [(max(0, o - k), t) for o, t in self.times]
        # keep the last run that starts at or before the new first value, and those after
        first = max(i for i, (o, _) in enumerate(runs) if o == 0)
        self.times = runs[first:]

    def fields(self) -> list[Any]:
        values = self.values
        refs = None
        if self.offloaded:
            values, refs = split_refs(values)
        out: list[Any] = [
            "s",
            self.seq0,
            "n",
            len(values),
            "t",
            json.dumps(self.times),
            "v",
            self.codec.dump(values, loose=refs is not None),
        ]
        if refs is not None:
            out += ["r", refs]
        if self.parent_stream is not None and self.parents is not None:
            out += ["ps", self.parent_stream, "pq", encode_seqs(self.parents)]
        return out


class RedisVault(WriteBehindVault):
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
        self._add_job = self._r.register_script(_ADD_JOB)
        self._append = self._r.register_script(_APPEND)
        self._end = self._r.register_script(_END)
        self._status_script = self._r.register_script(_STATUS)
        self._enqueue_script = self._r.register_script(_ENQUEUE)
        self._touch_script = self._r.register_script(_TOUCH)
        self._ack_script = self._r.register_script(_ACK)
        # job id or stream id -> (queue key, message id, consumer): see _FENCE
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

    # -- the server losing its data ---------------------------------------------------

    def _new_epoch(self) -> bytes:
        key = self.k("epoch")
        self._r.set(key, uuid.uuid4().hex, nx=True)
        got = self._r.get(key)
        return bytes(got) if got is not None else b""

    def on_lost(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(message)`` when the server is found to have lost what was
        recorded (it restarted without persistence); returns a function that stops it."""
        self._lost_callbacks.append(callback)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._lost_callbacks.remove(callback)

        return stop

    def check_epoch(self, *, wait: bool = False) -> bool:
        """After a lost connection: whether the server still has this process's data.

        If it has not (it restarted without persistence), every :meth:`on_lost`
        callback is told what was lost, and a new epoch starts, so the vault
        serves new jobs. Returns ``False`` then. With ``wait``, a call that finds
        another thread telling the callbacks returns once they are done (so what
        they dropped is not taken for something else): never from a thread they
        may wait on, such as the writer's.
        """
        with self._epoch_lock:
            try:
                now = self._r.get(self.k("epoch"))
            except Exception:  # unreachable again: the next reconnection checks
                now = self._epoch
            lost = now is None or bytes(now) != self._epoch
            if lost:
                self._epoch = self._new_epoch()
                self.losses += 1
                callbacks = list(self._lost_callbacks)
                self._settled.clear()
        if not lost:
            if wait:
                self._settled.wait(30)
            return True
        message = (
            f"{self._label}: the server restarted without the data recorded before (it keeps none: "
            "no appendonly/save); the jobs it held, their input, outputs, statuses and queue "
            "messages, are gone"
        )
        log.error("%s", message)
        try:
            self._tell_lost(callbacks, message)
        finally:
            self._settled.set()
        return False

    def _tell_lost(self, callbacks: list[Callable[[str], None]], message: str) -> None:
        for cb in callbacks:
            try:
                cb(message)
            except Exception:
                log.exception("%s: a callback on lost data failed", self._label)

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
        open_entries: dict[str, _Entry] = {}
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
                    open_entries[sid] = _Entry(codec, chunk)
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
                item = _Token(item, uuid.uuid4().hex)  # the same token however often it is sent
            current.append(item)
        current.extend(open_entries.values())
        if current:
            segments.append(current)
        return segments

    def _send(self, segment: list[Any]) -> BaseException | None:
        """One pipeline; then each refused datapoint entry settled. Connection errors raise."""
        import redis

        pipe = self._r.pipeline(transaction=False)
        appends: list[tuple[int, _Entry]] = []  # (index in the pipeline, entry)
        ops = 0
        for item in segment:
            if type(item) is _Entry:
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

    def _queue_append(self, pipe: Any, entry: _Entry, *, force: bool) -> None:
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

    def _settle(self, entry: _Entry, result: Any) -> None:
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
        if kind is _Token:
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
        if kind is _End:
            sid = item.stream_id
            self._next_seq.pop(sid, None)
            keys, args = self._fenced(sid, [self.stream_key(sid), self.k("ended")], [sid, item.error or ""])
            self._end(keys=keys, args=args, client=pipe)
            return 1
        if kind is _Enqueue:
            self._enqueue_script(
                keys=[self.k("job", item.job_id), self.queue_key(item.spec)], args=[item.job_id], client=pipe
            )
            return 1
        if kind is _Lease:
            pipe.set(item.key, "1", px=max(1, int(item.ttl * 1000)))
            return 1
        raise AssertionError(f"unknown vault item {item!r}")

    # -- writes beyond the contract ---------------------------------------------------

    def end_stream(self, stream_id: str, error: str | None = None) -> None:
        """Mark ``stream_id`` ended (after what was recorded before): followers see it."""
        self._put(_End(stream_id, error))

    # -- the contract: reads (each first flushes, so a process reads its own writes) ----

    def _read(self) -> Any:
        self.flush()
        if self._closed:
            raise self._fail("is closed")
        return self._r

    def jobs(self) -> list[JobRecord]:
        r = self._read()
        ids = [_s(i) for i in r.zrange(self.k("jobs"), 0, -1)]
        pipe = r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.k("job", i))
        return [_job(i, h) for i, h in zip(ids, pipe.execute(), strict=True) if h]

    def job(self, job_id: str) -> JobRecord | None:
        h = self._read().hgetall(self.k("job", job_id))
        return _job(job_id, h) if h else None

    def statuses(self, job_id: str) -> list[StatusRecord]:
        return [_status(job_id, f) for _, f in self._read().xrange(self.status_key(job_id))]

    def streams(self, job_id: str) -> list[StreamRecord]:
        h = self._read().hgetall(self.k("job", job_id, "streams"))
        out = []
        for key, sid in h.items():
            direction, _, tag = _s(key).partition(":")
            out.append(StreamRecord(_s(sid), job_id, direction, tag))
        return sorted(out, key=lambda s: (s.direction, s.tag))

    def children(self, job_id: str) -> list[str]:
        return [_s(c) for c in self._read().lrange(self.k("job", job_id, "children"), 0, -1)]

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
                low = f"({_s(entry_id)}"
                batches = list(self.decode(stream_id, fields, value_type))
                if stop is not None and batches and batches[0].seq0 >= stop:
                    return
                yield from batches
            if len(page) < READ_PAGE:
                return

    def datapoints(self, stream_id: str, after: int = -1, limit: int | None = None) -> list[DatapointRecord]:
        return points_of(stream_id, self.batches(stream_id, after + 1), after, limit)

    def decode(self, stream_id: str, fields: dict[Any, Any], value_type: Any) -> Iterator[BatchRecord]:
        """The batches of one stream entry, values validated by ``value_type``.

        Raises
        ------
        LivestackError
            The entry is not a datapoint entry (a malformed or foreign one).
        """
        try:
            f = {_s(k): v for k, v in fields.items()}
            seq0, n = int(f["s"]), int(f["n"])
            runs = [(int(o), float(t)) for o, t in json.loads(f["t"])]
            refs = load_refs(f.get("r"))
            parent_stream = _s(f["ps"]) if "ps" in f else None
            seqs = decode_seqs(_s(f["pq"])) if "pq" in f else None
            payload = f["v"]
        except (KeyError, ValueError, TypeError) as e:
            raise LivestackError(f"stream {stream_id!r}: a malformed entry ({e!r})") from None
        values = load_values(stream_id, payload, value_type, bool(refs))
        if len(values) != n:
            raise LivestackError(f"stream {stream_id!r}: an entry says {n} values but holds {len(values)}")
        for i, ref in refs.items():
            values[i] = ref
        for k, (off, t) in enumerate(runs):
            end = runs[k + 1][0] if k + 1 < len(runs) else n
            one = len(runs) == 1
            yield BatchRecord(
                stream_id,
                seq0 + off,
                t,
                values if one else values[off:end],
                parent_stream,
                None if seqs is None else (seqs if one else seqs[off:end]),
                tuple(i - off for i in refs if off <= i < end),
            )

    # -- live followers -----------------------------------------------------------------

    def follow(
        self, key: str, handler: Callable[[list[tuple[str, dict[Any, Any]]]], None]
    ) -> Callable[[], None]:
        """Call ``handler`` on the reader thread with every entry of stream ``key``, from the first.

        Returns a function that stops following. ``handler`` gets entries in
        id order, ``(id, fields)``; it must not block for long (every follower
        shares the thread).
        """
        token = [b"0-0", handler]
        with self._follow_lock:
            if self._closed:
                raise self._fail("is closed")
            self._follows[key] = token
        self._ensure_reader()
        self._wake()

        def stop() -> None:
            with self._follow_lock:
                if self._follows.get(key) is token:
                    del self._follows[key]

        return stop

    def _ensure_reader(self) -> None:
        with self._follow_lock:
            if self._reader is None and not self._closed:
                self._reader = threading.Thread(target=self._read_loop, name=self._reader_name, daemon=True)
                self._reader.start()

    def _wake(self) -> None:
        self._follows_changed.set()
        try:
            self._r.xadd(self._wake_key, {"w": "1"}, maxlen=1)
        except Exception as e:  # the reader still sees the new key within its block time
            log.debug("redis vault %r: could not wake the reader: %s", self.url, e)

    def following(self, key: str) -> bool:
        return key in self._follows

    def _read_loop(self) -> None:
        """Follow, and renew the leases held; on a lost server, retry with backoff (and tell
        whoever waits on it once it has been gone ``reconnect_timeout`` seconds)."""
        import redis

        conn = self._r
        wake = self._wake_key
        wake_id: Any = "0-0"  # its last entry seen: a wake-up sent before XREAD is not missed
        failing_since: float | None = None
        given_up = False
        delay = 0.05
        while not self._stopping:
            self._follows_changed.clear()
            with self._follow_lock:
                follows = {k: v[0] for k, v in self._follows.items()}
            try:
                self._renew_leases()
                if not follows:
                    if failing_since is None:
                        self._follows_changed.wait(0.1)
                        continue
                    conn.ping()  # nothing followed: see whether the server is back
                    got = None
                else:
                    follows[wake] = wake_id
                    got = conn.xread(follows, count=256, block=100)
            except redis.RedisError as e:
                if self._stopping:
                    return
                now = time.monotonic()
                if failing_since is None:
                    failing_since = now
                    log.warning("redis vault %r: reading followed streams failed (%s); retrying", self.url, e)
                if not given_up and now - failing_since >= self.reconnect_timeout:
                    given_up = True
                    self._tell_lost(
                        list(self._lost_callbacks),
                        f"{self._label}: the server has been unreachable for {now - failing_since:.0f} s "
                        f"(reconnect_timeout); what waits on it is given up",
                    )
                self._follows_changed.wait(delay)
                delay = min(1.0, delay * 2)
                continue
            if failing_since is not None:
                failing_since, given_up, delay = None, False, 0.05
                self._leases_renewed = 0.0  # renewed at once: they may have lapsed meanwhile
                if not self.check_epoch():
                    continue  # what is followed is gone; the callbacks stopped following it
            for key_b, entries in got or ():
                key = _s(key_b)
                if key == wake:
                    wake_id = entries[-1][0] if entries else wake_id
                    continue
                with self._follow_lock:
                    token = self._follows.get(key)
                if token is None or not entries:
                    continue
                token[0] = entries[-1][0]
                try:
                    token[1]([(_s(i), f) for i, f in entries])
                except Exception:
                    log.exception("redis vault %r: a follower of %r failed", self.url, key)

    # -- job queues (see livestack_nb.remote) --------------------------------------------

    def enqueue(self, spec: str, job_id: str) -> None:
        """Put ``job_id`` on ``spec``'s queue, after everything recorded before."""
        self._put(_Enqueue(spec, job_id))

    def ensure_group(self, spec: str) -> None:
        """Create the queue of ``spec`` and its consumer group if missing."""
        import redis

        if spec in self._groups:
            return
        try:
            self._r.xgroup_create(self.queue_key(spec), GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._groups.add(spec)

    def take(self, spec: str, consumer: str, count: int, block: float) -> list[tuple[str, dict[Any, Any]]]:
        """Up to ``count`` new messages of ``spec``'s queue for ``consumer`` (waits ``block`` s)."""
        got = self._r.xreadgroup(
            GROUP, consumer, {self.queue_key(spec): ">"}, count=count, block=max(1, int(block * 1000))
        )
        return [(_s(i), f) for _, entries in got or () for i, f in entries if f is not None]

    def claim_stale(
        self, spec: str, consumer: str, idle: float, count: int
    ) -> list[tuple[str, dict[Any, Any]]]:
        """Take over up to ``count`` messages whose consumer has been silent ``idle`` s (XAUTOCLAIM)."""
        res = self._r.xautoclaim(self.queue_key(spec), GROUP, consumer, int(idle * 1000), "0-0", count=count)
        entries = res[1] if len(res) > 1 else []
        return [(_s(i), f) for i, f in entries if f is not None]

    def deliveries(self, spec: str, message_id: str) -> int:
        """How often a pending message was delivered (read or taken over); 0 if not pending."""
        got = self._r.xpending_range(self.queue_key(spec), GROUP, min=message_id, max=message_id, count=1)
        return int(got[0]["times_delivered"]) if got else 0

    def touch(self, spec: str, consumer: str, ids: Sequence[str]) -> list[str]:
        """Heartbeat: reset the idle time of messages ``consumer`` is working on.

        Returns the ids that are no longer ``consumer``'s (another worker took them
        over while this one was silent): it must stop their jobs, and record nothing.
        """
        if not ids:
            return []
        lost = self._touch_script(keys=[self.queue_key(spec)], args=[consumer, *ids])
        return [_s(i) for i in lost or ()]

    def fence(
        self, job_id: str, stream_ids: Sequence[str], spec: str, message_id: str, consumer: str
    ) -> None:
        """Write the statuses of ``job_id`` and the entries and ends of ``stream_ids`` only
        while ``message_id`` is ``consumer``'s (see ``_FENCE``), until :meth:`unfence`."""
        fence = (self.queue_key(spec), message_id, consumer)
        for key in (job_id, *stream_ids):
            self._fences[key] = fence

    def fresh(self, stream_ids: Sequence[str]) -> None:
        """Streams known to hold nothing yet (the outputs of a job on its first delivery):
        their first entries need no round trip of their own (see :meth:`_segments`)."""
        for sid in stream_ids:
            self._next_seq.setdefault(sid, 0)

    def unfence(self, job_id: str, stream_ids: Sequence[str]) -> None:
        """Drop a fence (after a flush: what was recorded under it has been written)."""
        for key in (job_id, *stream_ids):
            self._fences.pop(key, None)

    def hold(self, key: str, ttl: float) -> Callable[[], None]:
        """Keep ``key`` alive (renewed every ``ttl / 3`` s) until the returned function is called.

        A lease other processes can watch: once this process dies or is
        cut off, the key expires ``ttl`` seconds after its last renewal.
        """
        self._leases[key] = ttl
        self._put(_Lease(key, ttl))  # set in order: before a job queued after it is visible
        self._ensure_reader()

        def release() -> None:
            self._leases.pop(key, None)

        return release

    def held(self, keys: Sequence[str]) -> list[bool]:
        """Whether each of ``keys`` exists (a lease still held)."""
        pipe = self._r.pipeline(transaction=False)
        for k in keys:
            pipe.exists(k)
        return [bool(x) for x in pipe.execute()]

    def _renew_leases(self) -> None:
        leases = dict(self._leases)
        if not leases:
            return
        now = time.monotonic()
        if now - self._leases_renewed < min(leases.values()) / 3:
            return
        pipe = self._r.pipeline(transaction=False)
        for key, ttl in leases.items():
            pipe.set(key, "1", px=max(1, int(ttl * 1000)))
        pipe.execute()
        self._leases_renewed = now

    def ack(self, spec: str, ids: Sequence[str], consumer: str | None = None) -> int:
        """The messages are done with (their jobs ended, or they were reported); how many were
        acknowledged.

        With ``consumer``, only those still pending for it: a worker that was silent
        past its lease must not acknowledge the message another worker took over (that
        would fence the new owner off its own job).
        """
        if not ids:
            return 0
        if consumer is None:
            return int(self._r.xack(self.queue_key(spec), GROUP, *ids))
        return int(self._ack_script(keys=[self.queue_key(spec)], args=[consumer, *ids]))

    def heartbeat(self, consumer: str, spec: str, ttl: float) -> None:
        """Say that worker ``consumer`` of ``spec`` is alive for the next ``ttl`` s."""
        self._r.set(self.k("worker", consumer), spec, px=max(1, int(ttl * 1000)))

    def reject(self, spec: str, message_id: str, fields: dict[Any, Any], reason: str, consumer: str) -> None:
        """Report a malformed queue message (log and record it), then acknowledge it."""
        shown = {_text(k)[:100]: _text(v)[:200] for k, v in list(fields.items())[:20]}
        log.error("queue of spec %r: message %s rejected: %s (%r)", spec, message_id, reason, shown)
        report = {
            "spec": spec,
            "message_id": message_id,
            "fields": shown,
            "reason": reason,
            "worker": consumer,
            "time": time.time(),
        }
        self._r.rpush(self.k("rejected"), json.dumps(report))
        self.ack(spec, [message_id])

    def rejected(self) -> list[dict[str, Any]]:
        """The malformed queue messages reported so far, oldest first."""
        return [json.loads(x) for x in self._r.lrange(self.k("rejected"), 0, -1)]

    def pending(self, spec: str) -> dict[str, int]:
        """Messages delivered and not yet acknowledged, per consumer."""
        self.ensure_group(spec)
        info = self._r.xpending(self.queue_key(spec), GROUP)
        return {_s(c["name"]): int(c["pending"]) for c in info.get("consumers", [])}

    def __repr__(self) -> str:
        return f"RedisVault({self.url!r}, prefix={self.prefix!r})"


def _job(job_id: str, h: dict[Any, Any]) -> JobRecord:
    f = {_s(k): _s(v) for k, v in h.items()}
    return JobRecord(
        job_id,
        f.get("spec", "?"),
        f.get("status", "requested"),
        f.get("parent") or None,
        json.loads(f["options"]) if f.get("options") else None,
        float(f.get("created", 0.0)),
    )


def _status(job_id: str, fields: dict[Any, Any]) -> StatusRecord:
    f = {_s(k): _s(v) for k, v in fields.items()}
    return StatusRecord(job_id, f.get("status", "?"), float(f.get("time", 0.0)), f.get("detail"))
