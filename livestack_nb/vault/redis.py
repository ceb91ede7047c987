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

The class is put together from one module per part: the Lua scripts
(:mod:`._redis_lua`), what is written and read (:mod:`._redis_entries`), the
writer's pipelines (:mod:`._redis_writer`), the reader thread and the server's
epoch (:mod:`._redis_live`) and the job queues with their fences and leases
(:mod:`._redis_queue`); this module holds the connection, the keys and the
contract's reads. It implements :class:`~livestack_nb.vault.queue.QueueVault`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._redis_entries import (
    End,
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
from ._redis_writer import RedisWriter
from ._writebehind import WriteBehindVault
from .base import (
    BatchRecord,
    JobRecord,
    StatusRecord,
    StreamRecord,
    ValidationFailureRecord,
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


class RedisVault(RedisQueues, RedisFollowers, RedisWriter, WriteBehindVault):
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

    def __repr__(self) -> str:
        return f"RedisVault({self.url!r}, prefix={self.prefix!r})"


if TYPE_CHECKING:

    def _implements_the_queue_contract(vault: RedisVault) -> QueueVault:
        return vault  # mypy checks RedisVault against QueueVault here
