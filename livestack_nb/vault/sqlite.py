"""The embedded durable vault: one SQLite file, written behind the hot path.

Why SQLite: it ships with Python, one file survives a kernel restart, and in
WAL mode one process writes while others read, and a second writer waits its
turn (busy timeout) instead of corrupting anything.

Writes go behind the hot path (see :mod:`._writebehind`): the writer thread
merges consecutive chunks of a stream into one row, encodes the values as
JSON and commits each batch in one transaction, so a batch is in the file
whole or not at all. After one fails nothing more is written: a later batch
committed after a lost one would leave a gap in a stream.

What is durable when: :meth:`SQLiteVault.flush` returns once everything
recorded before it is committed. The env flushes when a job ends (so
``job.wait()`` returns only after the job's outputs and final status are in
the file), on ``env.flush()`` and on ``env.close()``. Commits use
``synchronous=NORMAL``: a committed transaction survives the process being
killed at any point; after a power cut or an OS crash the last few commits
may be lost, never the file's consistency.

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
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, NamedTuple, get_origin

from pydantic_core import to_json

from ._json import Codec, decode_seqs, load_refs, load_values, split_refs
from ._writebehind import Child, WriteBehindVault
from .base import (
    BatchRecord,
    ChunkLike,
    JobRecord,
    Recorder,
    StatusRecord,
    StreamRecord,
    ValidationFailureRecord,
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


class _StreamType(NamedTuple):
    """A ``streams`` row, queued when a stream gets its recorder."""

    stream_id: str
    tag: str
    type: str


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


class SQLiteVault(WriteBehindVault):
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
        self.busy_timeout = busy_timeout
        self._error: BaseException | None = None  # the write that failed: nothing is written after it
        self._read_lock = threading.Lock()
        self._read = self._open()
        self._con = self._connect()  # the writer thread's
        self._con.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint (copy the log into the file, with an fsync) every ~40 MB
        # rather than every 4 MB: fewer stalls while a fast flow is recorded.
        self._con.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        super().__init__(
            name=f"livestack-vault-{self.path.name}",
            interval=interval,
            batch_values=batch_values,
            max_backlog=max_backlog,
        )

    @property
    def _label(self) -> str:
        return f"sqlite vault {str(self.path)!r}"

    # -- opening ------------------------------------------------------------------

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

    # -- writing (see _writebehind) ----------------------------------------------

    def recorder(self, stream_id: str, tag: str, value_type: Any) -> Recorder:
        self._put(_StreamType(stream_id, tag, _type_name(value_type)))
        return super().recorder(stream_id, tag, value_type)

    def _write(self, batch: list[Any]) -> BaseException | None:
        """Commit ``batch`` in one transaction; after a failure, commit nothing more.

        A later batch committed after a lost one would leave a gap in a
        stream, so the first error is kept and every flush raises it from
        then on.
        """
        jobs: list[tuple[Any, ...]] = []
        statuses: list[tuple[Any, ...]] = []
        streams: list[tuple[Any, ...]] = []
        links: list[tuple[Any, ...]] = []
        children: list[tuple[Any, ...]] = []
        failures: list[tuple[Any, ...]] = []
        data: dict[Codec, list[ChunkLike]] = {}
        for item in batch:
            kind = type(item)
            if kind is tuple:  # (codec, chunk): the bulk of a batch
                codec, chunk = item
                of = data.get(codec)
                if of is None:
                    of = data[codec] = []
                of.append(chunk)
            elif kind is StatusRecord:
                statuses.append((item.job_id, item.status, item.time, item.detail))
            elif kind is JobRecord:
                options = None if item.options is None else json.dumps(item.options)
                jobs.append((item.job_id, item.spec, item.parent_id, options, item.created))
                statuses.append((item.job_id, item.status, item.created, None))
            elif kind is StreamRecord:
                links.append((item.job_id, item.direction, item.tag, item.stream_id))
            elif kind is _StreamType:
                streams.append(item)
            elif kind is Child:
                children.append(item)
            elif kind is ValidationFailureRecord:
                failures.append((item.job_id, item.spec, item.tag, item.field, item.message, item.time))
        if self._error is None:
            try:
                rows = [row for codec, of in data.items() for row in _rows(codec, of)]
                self._commit(jobs, statuses, streams, links, children, failures, rows)
            except Exception as e:
                self._error = e
                log.exception("%s: a write failed; nothing more is written to this file", self._label)
        return self._error

    def _commit(self, *tables: list[tuple[Any, ...]]) -> None:
        jobs, statuses, streams, links, children, failures, rows = tables
        if not any(tables):
            return
        con = self._con
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

    def _release(self) -> None:
        self._con.close()
        with self._read_lock:
            self._read.close()

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
    if get_origin(tp) is Annotated:  # a strict or constrained type: named as the spec names it
        from .._types import TagType

        return TagType(tp).name
    return getattr(tp, "__name__", None) or repr(tp)
