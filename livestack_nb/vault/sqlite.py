"""The embedded durable vault: one SQLite file, written behind the hot path.

Why SQLite: it ships with Python, one file survives a kernel restart, and in
WAL mode one process writes while others read, and a second writer waits its
turn (busy timeout) instead of corrupting anything.

Why write-behind: a fused flow pushes a million values a second, far more
than one row per value could keep up with. A stream hands each chunk it
accepts to :meth:`SQLiteVault.recorder`'s callable, which only appends it to
an in-memory queue. One background thread takes whatever has queued, merges
consecutive chunks of a stream into one row, encodes the values as JSON and
writes everything in one transaction: when ``batch_values`` values are
waiting, or ``interval`` seconds after the last write, whichever comes first.
A producer that gets ``max_backlog`` values ahead is held back until the
writer catches up, so memory stays bounded.

What is durable when: :meth:`SQLiteVault.flush` puts a marker in the queue
and returns once everything queued before it is committed. The env flushes
when a job ends (so ``job.wait()`` returns only after the job's outputs and
final status are in the file), on ``env.flush()`` and on ``env.close()``.
Commits use ``synchronous=NORMAL``: a committed transaction survives the
process being killed at any point; after a power cut or an OS crash the last
few commits may be lost, never the file's consistency.

Schema (version :data:`SCHEMA_VERSION` in ``PRAGMA user_version``, marked as
ours by ``PRAGMA application_id``):

``jobs``
    One row per job: id, spec name, parent job, options (JSON), created.
``job_statuses``
    Append-only status history; a job's status is its last row here.
``streams`` / ``job_streams``
    Each stream's tag and type name, and which job reads (``in``) or writes
    (``out``) it on which tag.
``job_children``
    Parent/child jobs (``job.invoke``, a flow's jobs).
``datapoints``
    Consecutive datapoints of a stream, one row per batch keyed by
    ``(stream_id, seq0)``: ``n`` values as a JSON array (``payload``), their
    timestamps (``time``, or runs of ``[offset, time]`` in ``times`` when they
    differ), storage references of offloaded large values (``refs``: the
    value itself stays in the storage provider), and the lineage: the stream
    the values were derived from and the seq of each one's parent.
``validation_failures``
    Values refused at a tag: job, spec, tag, field, message, time.

Values are encoded with pydantic by the tag's type (``bytes`` as base64) and
validated by it when read back; nothing is ever pickled.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from pydantic_core import to_json

from ..errors import LivestackError
from ..storage import StorageRef
from ._json import Codec, Flush, decode_seqs, load_refs, load_values, split_refs
from .base import (
    BatchRecord,
    ChunkLike,
    DatapointRecord,
    JobRecord,
    Recorder,
    StatusRecord,
    StreamRecord,
    ValidationFailureRecord,
    Vault,
)

__all__ = ["SCHEMA_VERSION", "SQLiteVault"]

log = logging.getLogger("livestack_nb")

SCHEMA_VERSION = 1
APPLICATION_ID = 0x4C534E42  # "LSNB"
MAX_ROW = 16_384  # values per datapoints row: bounds what a reader decodes to reach one value
READ_PAGE = 64  # rows per query when reading a stream back
CHECKPOINT_PAGES = 10_000

_SCHEMA = (
    """CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        parent_id TEXT,
        options TEXT,
        created REAL NOT NULL
    )""",
    """CREATE TABLE job_statuses (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        status TEXT NOT NULL,
        time REAL NOT NULL,
        detail TEXT
    )""",
    "CREATE INDEX job_statuses_by_job ON job_statuses (job_id, id)",
    """CREATE TABLE streams (
        stream_id TEXT PRIMARY KEY,
        tag TEXT NOT NULL,
        type TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE job_streams (
        job_id TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        tag TEXT NOT NULL,
        stream_id TEXT NOT NULL,
        PRIMARY KEY (job_id, direction, tag)
    ) WITHOUT ROWID""",
    "CREATE INDEX job_streams_by_stream ON job_streams (stream_id)",
    """CREATE TABLE job_children (
        parent_id TEXT NOT NULL,
        child_id TEXT NOT NULL,
        UNIQUE (parent_id, child_id)
    )""",
    """CREATE TABLE datapoints (
        stream_id TEXT NOT NULL,
        seq0 INTEGER NOT NULL,
        n INTEGER NOT NULL CHECK (n > 0),
        time REAL NOT NULL,
        times TEXT,
        payload BLOB NOT NULL,
        refs TEXT,
        parent_stream TEXT,
        parent_seqs TEXT,
        PRIMARY KEY (stream_id, seq0)
    ) WITHOUT ROWID""",
    """CREATE TABLE validation_failures (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        spec TEXT NOT NULL,
        tag TEXT NOT NULL,
        field TEXT,
        message TEXT NOT NULL,
        time REAL NOT NULL
    )""",
)


class _Ref:
    """Placeholder of an offloaded value in a chunk built from DatapointRecords."""

    __slots__ = ("ref",)

    def __init__(self, ref: StorageRef) -> None:
        self.ref = ref


class _Points:
    """DatapointRecords of one stream, seen as a chunk (the per-datapoint API)."""

    __slots__ = ("offloaded", "parent_seqs", "parent_stream", "seq0", "stored", "time")

    def __init__(self, records: Sequence[DatapointRecord]) -> None:
        first = records[0]
        self.seq0 = first.seq
        self.time = first.time
        self.stored = [_Ref(r.value) if isinstance(r.value, StorageRef) else r.value for r in records]
        self.offloaded = any(isinstance(r.value, StorageRef) for r in records)
        parent = first.parents[0].rsplit(":", 1) if first.parents else None
        self.parent_stream = parent[0] if parent else None
        self.parent_seqs: Sequence[int] | None = (
            [int(r.parents[0].rsplit(":", 1)[1]) for r in records] if parent else None
        )


def _rows(codec: Codec, chunks: list[ChunkLike]) -> list[tuple[Any, ...]]:
    """``datapoints`` rows for a stream's chunks (in seq order): runs that follow
    on from each other are merged, up to :data:`MAX_ROW` values a row.

    Runs on the writer thread once per chunk, so it is kept to local variables.
    """
    rows: list[tuple[Any, ...]] = []
    i, n = 0, len(chunks)
    while i < n:
        first = chunks[i]
        ps, seqs = first.parent_stream, first.parent_seqs
        lone = seqs is None
        # Lineage stays one range while each chunk's parents follow the last's.
        ranged = type(seqs) is range and seqs.step == 1
        parent_stop = seqs.stop if ranged else 0  # type: ignore[union-attr]
        count = len(first.stored)
        following = first.seq0 + count
        j = i + 1
        while j < n:
            c = chunks[j]
            k = len(c.stored)
            if c.seq0 != following or count + k > MAX_ROW or c.parent_stream != ps:
                break
            cs = c.parent_seqs
            if (cs is None) != lone:
                break
            if ranged:
                if type(cs) is range and cs.start == parent_stop and cs.step == 1:
                    parent_stop = cs.stop
                else:
                    ranged = False
            following += k
            count += k
            j += 1
        group = chunks[i:j] if j - i > 1 else [first]
        if lone:
            parents = None
        elif ranged:
            parents = json.dumps({"range": [seqs.start, parent_stop]})  # type: ignore[union-attr]
        else:
            parents = to_json([s for c in group for s in c.parent_seqs]).decode()  # type: ignore[union-attr]
        rows.append(_row(codec, group, count, parents))
        i = j
    return rows


def _row(codec: Codec, group: list[ChunkLike], n: int, parents: str | None) -> tuple[Any, ...]:
    first = group[0]
    if len(group) == 1:
        values = first.stored
        runs: list[Any] = [(0, first.time)]
    else:
        values = list(chain.from_iterable([c.stored for c in group]))
        runs = []
        off, last = 0, None
        for c in group:
            t = c.time
            if t != last:
                runs.append((off, t))
                last = t
            off += len(c.stored)
    refs = None
    if any(c.offloaded for c in group):
        values, refs = split_refs(values)
    return (
        codec.stream_id,
        first.seq0,
        n,
        runs[0][1],
        to_json(runs).decode() if len(runs) > 1 else None,
        codec.dump(values, loose=refs is not None),
        refs,
        first.parent_stream,
        parents,
    )


def _parent_stream(record: DatapointRecord) -> str | None:
    return record.parents[0].rsplit(":", 1)[0] if record.parents else None


class SQLiteVault(Vault):
    """A vault in one SQLite file, durable across processes; see the module docstring.

    Parameters
    ----------
    path:
        The database file (created, with its directory, if missing).
    batch_values:
        Wake the writer once this many values are waiting.
    interval:
        Otherwise write what is waiting this often (seconds).
    max_backlog:
        Hold producers back while this many values wait to be written.
    busy_timeout:
        How long a write waits for another process holding the file (seconds).

    Raises
    ------
    LivestackError
        The path cannot be opened or created, is not an SQLite database, is
        another application's database, or has another schema version. The
        message names the path; the file is left untouched.
    """

    durable = True

    def __init__(
        self,
        path: str | Path,
        *,
        batch_values: int = 50_000,
        interval: float = 0.1,
        max_backlog: int = 2_000_000,
        busy_timeout: float = 10.0,
    ) -> None:
        self.path = Path(path).expanduser()
        self.batch_values = batch_values
        self.interval = interval
        self.max_backlog = max_backlog
        self.busy_timeout = busy_timeout
        self._queue: deque[Any] = deque()  # records and flush markers
        self._data: deque[tuple[Codec, ChunkLike]] = deque()  # chunks of streams (see _run)
        self._backlog = 0  # values queued and not yet written (approximate; a trigger only)
        self._kicked = False
        # entered as their locks: see livestack_nb/_interrupt.py
        self._cond_lock, self._room_lock = threading.RLock(), threading.RLock()
        self._cond = threading.Condition(self._cond_lock)
        self._room = threading.Condition(self._room_lock)
        self._stopping = False
        self._closed = False
        self._error: BaseException | None = None
        self._read_lock = threading.Lock()
        self._read = self._open()
        self._writer = threading.Thread(
            target=self._run, name=f"livestack-vault-{self.path.name}", daemon=True
        )
        self._writer.start()

    # -- opening ------------------------------------------------------------------

    def _fail(self, what: str, e: BaseException | None = None) -> LivestackError:
        why = f": {e}" if e is not None else ""
        return LivestackError(f"sqlite vault {str(self.path)!r}: {what}{why}")

    def _connect(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise self._fail("is a directory, not a database file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._fail("cannot create its directory", e) from None
        try:
            con = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise self._fail("cannot open the file", e) from None
        return con

    def _open(self) -> sqlite3.Connection:
        """Open (or create) the file and check it is a vault of our schema version.

        The file is only read until it is known to be a vault of this version
        (or empty): a foreign or newer file is left exactly as it was. Opening
        races with another process creating the same file are retried until
        the busy timeout.
        """
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.005
        while True:
            con = self._connect()
            try:
                self._check(con)
                return con
            except sqlite3.OperationalError as e:
                con.close()
                busy = "locked" in str(e) or "busy" in str(e)
                if not busy or time.monotonic() >= deadline:
                    raise self._fail("cannot be opened as a vault", e) from None
            except sqlite3.DatabaseError as e:
                con.close()
                if "not a database" in str(e):
                    raise self._fail("is not an SQLite database", e) from None
                raise self._fail("cannot be opened as a vault", e) from None
            except BaseException:
                con.close()
                raise
            time.sleep(delay)  # another process holds the file while creating it
            delay = min(delay * 2, 0.1)

    def _check(self, con: sqlite3.Connection) -> None:
        con.execute("BEGIN")  # one snapshot: another process may be creating the schema right now
        try:
            ready = self._verify(con)
        finally:
            con.execute("COMMIT")
        if ready:
            con.execute("PRAGMA journal_mode=WAL")
        else:  # an empty file: make it a vault, unless another process just did
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise self._fail(f"cannot use write-ahead logging here (journal mode {mode!r})")
            con.execute("BEGIN IMMEDIATE")
            try:
                if not self._verify(con):
                    for statement in _SCHEMA:
                        con.execute(statement)
                    con.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        con.execute("PRAGMA synchronous=NORMAL")

    def _verify(self, con: sqlite3.Connection) -> bool:
        """``True`` for a vault of this schema version, ``False`` for an empty file; else raise."""
        version = con.execute("PRAGMA user_version").fetchone()[0]
        app = con.execute("PRAGMA application_id").fetchone()[0]
        tables = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables == 0 and version == 0 and app == 0:
            return False
        if app != APPLICATION_ID:
            raise self._fail("is an SQLite database of another application, not a livestack-nb vault")
        if version != SCHEMA_VERSION:
            newer = "a newer" if version > SCHEMA_VERSION else "an older"
            raise self._fail(
                f"has vault schema version {version}, written by {newer} livestack-nb; "
                f"this version reads version {SCHEMA_VERSION} (the file was left untouched)"
            )
        return True

    # -- the write queue ----------------------------------------------------------

    def _put(self, item: Any, values: int = 0) -> bool:
        if self._closed:
            raise self._fail("is closed; it records nothing more")
        self._queue.append(item)
        backlog = self._backlog = self._backlog + values
        if backlog >= self.batch_values and not self._kicked:
            self._kick()
        return backlog > self.max_backlog

    def _put_chunk(self, codec: Codec, chunk: ChunkLike) -> bool:
        """Queue a chunk of a stream; what :meth:`recorder`'s callable does, inlined there."""
        if self._closed:
            raise self._fail("is closed; it records nothing more")
        self._data.append((codec, chunk))
        backlog = self._backlog = self._backlog + len(chunk.stored)
        if backlog >= self.batch_values and not self._kicked:
            self._kick()
        return backlog > self.max_backlog

    def _kick(self) -> None:
        """Wake the writer now rather than at the end of its interval."""
        self._kicked = True
        with self._cond_lock:
            self._cond.notify()

    def recorder(self, stream_id: str, tag: str, value_type: Any) -> Recorder:
        self._put(("stream", stream_id, tag, _type_name(value_type)))
        codec = Codec(stream_id, value_type)
        append = self._data.append
        batch, high = self.batch_values, self.max_backlog

        def record(chunk: ChunkLike) -> bool:
            # _put_chunk, inlined: this runs for every chunk of every stream
            if self._closed:
                raise self._fail("is closed; it records nothing more")
            append((codec, chunk))
            backlog = self._backlog = self._backlog + len(chunk.stored)
            if backlog >= batch and not self._kicked:
                self._kick()
            return backlog > high

        return record

    def wait_for_room(self) -> None:
        with self._room_lock:
            while self._backlog > self.max_backlog // 2 and self._writer.is_alive() and not self._stopping:
                self._room.wait(0.1)

    def flush(self) -> None:
        """Return once everything recorded before the call is committed to the file.

        Raises
        ------
        LivestackError
            Writing failed (the error says why), or the vault is closed.
        """
        if self._closed:
            return
        marker = Flush()
        self._put(marker)
        with self._cond_lock:
            self._kicked = True
            self._cond.notify()
        while not marker.done.wait(0.5):
            if not self._writer.is_alive():
                raise self._fail("its writer has stopped", self._error)
        if marker.error is not None:
            raise self._fail("writing failed", marker.error)

    def close(self) -> None:
        """Write what is queued, stop the writer thread and close the file."""
        if self._closed:
            return
        error: BaseException | None = None
        try:
            self.flush()
        except LivestackError as e:
            error = e
        self._closed = True
        with self._cond_lock:
            self._stopping = True
            self._cond.notify()
        self._writer.join()
        with self._read_lock:
            self._read.close()
        if error is not None:
            raise error

    # -- the writer thread ------------------------------------------------------

    def _run(self) -> None:
        con = self._connect()
        con.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint (copy the log into the file, with an fsync) every ~40 MB
        # rather than every 4 MB: fewer stalls while a fast flow is recorded.
        con.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        try:
            while True:
                with self._cond_lock:
                    if not self._stopping and not self._kicked:
                        self._cond.wait(self.interval)
                    self._kicked = False
                    stopping = self._stopping
                # Records and markers first, then chunks: every chunk queued
                # before a flush marker was taken is then taken too, so the
                # marker's transaction holds it.
                queue, data = self._queue, self._data
                items = []
                while queue:
                    items.append(queue.popleft())
                chunks = []
                while data:
                    chunks.append(data.popleft())
                if items or chunks:
                    self._write(con, items, chunks)
                if stopping and not queue and not data:
                    return
        finally:
            con.close()
            with self._room_lock:
                self._room.notify_all()

    def _write(
        self, con: sqlite3.Connection, items: list[Any], chunks: list[tuple[Codec, ChunkLike]]
    ) -> None:
        markers: list[Flush] = []
        jobs: list[tuple[Any, ...]] = []
        statuses: list[tuple[Any, ...]] = []
        streams: list[tuple[Any, ...]] = []
        links: list[tuple[Any, ...]] = []
        children: list[tuple[Any, ...]] = []
        failures: list[tuple[Any, ...]] = []
        rows: list[tuple[Any, ...]] = []
        data: dict[Codec, list[ChunkLike]] = {}
        taken = 0
        for codec, chunk in chunks:
            of = data.get(codec)
            if of is None:
                of = data[codec] = []
            of.append(chunk)
            taken += len(chunk.stored)
        for item in items:
            kind = type(item)
            if kind is tuple:
                head = item[0]
                if head == "stream":
                    streams.append(item[1:])
                elif head == "child":
                    children.append(item[1:])
            elif kind is Flush:
                markers.append(item)
            elif kind is StatusRecord:
                statuses.append((item.job_id, item.status, item.time, item.detail))
            elif kind is JobRecord:
                options = None if item.options is None else json.dumps(item.options)
                jobs.append((item.job_id, item.spec, item.parent_id, options, item.created))
                statuses.append((item.job_id, item.status, item.created, None))
            elif kind is StreamRecord:
                links.append((item.job_id, item.direction, item.tag, item.stream_id))
            elif kind is ValidationFailureRecord:
                failures.append((item.job_id, item.spec, item.tag, item.field, item.message, item.time))
        error = self._error
        if error is None:
            try:
                for codec, of in data.items():
                    rows.extend(_rows(codec, of))
                self._commit(con, jobs, statuses, streams, links, children, failures, rows)
            except Exception as e:
                # Stop writing altogether: committing later batches after a lost
                # one would leave a gap in a stream. Every flush now raises.
                error = self._error = e
                log.exception(
                    "sqlite vault %r: a write failed; nothing more is written to this file", str(self.path)
                )
        self._backlog = max(0, self._backlog - taken)
        with self._room_lock:
            self._room.notify_all()
        for m in markers:
            m.error = error
            m.done.set()

    def _commit(self, con: sqlite3.Connection, *tables: list[tuple[Any, ...]]) -> None:
        jobs, statuses, streams, links, children, failures, rows = tables
        if not any(tables):
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            if jobs:
                con.executemany("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?)", jobs)
            if streams:
                con.executemany("INSERT OR IGNORE INTO streams VALUES (?, ?, ?)", streams)
            if links:
                con.executemany("INSERT OR REPLACE INTO job_streams VALUES (?, ?, ?, ?)", links)
            if children:
                con.executemany("INSERT OR IGNORE INTO job_children VALUES (?, ?)", children)
            if rows:
                con.executemany("INSERT INTO datapoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            if failures:
                con.executemany(
                    "INSERT INTO validation_failures (job_id, spec, tag, field, message, time) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    failures,
                )
            if statuses:
                con.executemany(
                    "INSERT INTO job_statuses (job_id, status, time, detail) VALUES (?, ?, ?, ?)", statuses
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    # -- the contract: writes ---------------------------------------------------

    def add_job(self, record: JobRecord) -> None:
        self._put(record)

    def add_status(self, record: StatusRecord) -> None:
        self._put(record)

    def add_stream(self, record: StreamRecord) -> None:
        self._put(record)

    def add_child(self, parent_id: str, child_id: str) -> None:
        self._put(("child", parent_id, child_id))

    def add_validation_failure(self, record: ValidationFailureRecord) -> None:
        self._put(record)

    def add_datapoints(self, records: Sequence[DatapointRecord]) -> None:
        by_stream: dict[str, list[DatapointRecord]] = {}
        for r in records:
            by_stream.setdefault(r.stream_id, []).append(r)
        for sid, recs in by_stream.items():
            codec = Codec(sid, Any)
            start = 0
            for i in range(1, len(recs) + 1):
                if (
                    i == len(recs)
                    or recs[i].seq != recs[i - 1].seq + 1
                    or recs[i].time != recs[start].time
                    or _parent_stream(recs[i]) != _parent_stream(recs[start])
                ):
                    self._put_chunk(codec, _Points(recs[start:i]))
                    start = i

    # -- the contract: reads (each first flushes, so a process reads its own writes)

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        self.flush()
        with self._read_lock:
            if self._closed:
                raise self._fail("is closed")
            return self._read.execute(sql, args).fetchall()

    def jobs(self) -> list[JobRecord]:
        return [
            _job(r)
            for r in self._query(
                "SELECT j.job_id, j.spec, j.parent_id, j.options, j.created, "
                "(SELECT s.status FROM job_statuses s WHERE s.job_id = j.job_id ORDER BY s.id DESC LIMIT 1) "
                "FROM jobs j ORDER BY j.created, j.rowid"
            )
        ]

    def job(self, job_id: str) -> JobRecord | None:
        rows = self._query(
            "SELECT j.job_id, j.spec, j.parent_id, j.options, j.created, "
            "(SELECT s.status FROM job_statuses s WHERE s.job_id = j.job_id ORDER BY s.id DESC LIMIT 1) "
            "FROM jobs j WHERE j.job_id = ?",
            (job_id,),
        )
        return _job(rows[0]) if rows else None

    def statuses(self, job_id: str) -> list[StatusRecord]:
        rows = self._query(
            "SELECT job_id, status, time, detail FROM job_statuses WHERE job_id = ? ORDER BY id", (job_id,)
        )
        return [StatusRecord(*r) for r in rows]

    def streams(self, job_id: str) -> list[StreamRecord]:
        rows = self._query(
            "SELECT stream_id, job_id, direction, tag FROM job_streams WHERE job_id = ? "
            "ORDER BY direction, tag",
            (job_id,),
        )
        return [StreamRecord(*r) for r in rows]

    def children(self, job_id: str) -> list[str]:
        rows = self._query("SELECT child_id FROM job_children WHERE parent_id = ? ORDER BY rowid", (job_id,))
        return [r[0] for r in rows]

    def validation_failures(self, job_id: str | None = None) -> list[ValidationFailureRecord]:
        sql = "SELECT job_id, spec, tag, field, message, time FROM validation_failures"
        rows = (
            self._query(sql + " ORDER BY id")
            if job_id is None
            else self._query(sql + " WHERE job_id = ? ORDER BY id", (job_id,))
        )
        return [ValidationFailureRecord(*r) for r in rows]

    def count(self, stream_id: str) -> int:
        rows = self._query(
            "SELECT seq0 + n FROM datapoints WHERE stream_id = ? ORDER BY seq0 DESC LIMIT 1", (stream_id,)
        )
        return int(rows[0][0]) if rows else 0

    def batches(
        self, stream_id: str, start: int = 0, stop: int | None = None, value_type: Any = Any
    ) -> Iterator[BatchRecord]:
        """Stored datapoints with ``start <= seq < stop``, decoded by ``value_type``.

        Reads a page of rows at a time, so replaying a long history does not
        hold it all in memory.
        """
        low = max(0, start - MAX_ROW)  # a row holding `start` begins at most MAX_ROW before it
        after = low - 1
        while True:
            rows = self._query(
                "SELECT seq0, n, time, times, payload, refs, parent_stream, parent_seqs FROM datapoints "
                "WHERE stream_id = ? AND seq0 > ? ORDER BY seq0 LIMIT ?",
                (stream_id, after, READ_PAGE),
            )
            for row in rows:
                seq0, n = row[0], row[1]
                after = seq0
                if seq0 + n <= start:
                    continue
                if stop is not None and seq0 >= stop:
                    return
                yield from self._decode(stream_id, row, value_type)
            if len(rows) < READ_PAGE:
                return

    def datapoints(self, stream_id: str, after: int = -1, limit: int | None = None) -> list[DatapointRecord]:
        out: list[DatapointRecord] = []
        for b in self.batches(stream_id, after + 1):
            parents = b.parent_seqs
            for i, v in enumerate(b.values):
                seq = b.seq0 + i
                if seq <= after:
                    continue
                lineage = () if parents is None else (f"{b.parent_stream}:{parents[i]}",)
                out.append(DatapointRecord(stream_id, seq, b.time, v, lineage))
                if limit is not None and len(out) >= limit:
                    return out
        return out

    def _decode(self, stream_id: str, row: tuple[Any, ...], value_type: Any) -> Iterator[BatchRecord]:
        seq0, n, t0, times, payload, refs, parent_stream, parent_seqs = row
        offloaded = load_refs(refs)
        values = load_values(stream_id, payload, value_type, bool(offloaded))
        for i, ref in offloaded.items():
            values[i] = ref
        seqs = decode_seqs(parent_seqs)
        runs = [(0, t0)] if times is None else [(int(o), float(t)) for o, t in json.loads(times)]
        for k, (off, t) in enumerate(runs):
            end = runs[k + 1][0] if k + 1 < len(runs) else n
            part = values if len(runs) == 1 else values[off:end]
            yield BatchRecord(
                stream_id,
                seq0 + off,
                t,
                part,
                parent_stream,
                None if seqs is None else (seqs if len(runs) == 1 else seqs[off:end]),
                tuple(i - off for i in offloaded if off <= i < end),
            )

    def __repr__(self) -> str:
        return f"SQLiteVault({str(self.path)!r})"


def _job(row: tuple[Any, ...]) -> JobRecord:
    job_id, spec, parent_id, options, created, status = row
    return JobRecord(
        job_id,
        spec,
        status or "requested",
        parent_id,
        None if options is None else json.loads(options),
        created,
    )


def _type_name(tp: Any) -> str:
    if tp is Any:
        return "Any"
    return getattr(tp, "__name__", None) or repr(tp)
