"""What the Redis vault writes and reads: the items it queues, stream entries, records.

The writer thread merges consecutive chunks of a stream into one
:class:`Entry` (at most :data:`~._redis_lua.MAX_ENTRY` values) and sends its
:meth:`Entry.fields`; :func:`decode_entry` turns an entry read back into
:class:`~.base.BatchRecord` s, values validated by the reader's type.
Nothing read from Redis is ever unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from ..errors import LivestackError
from ._json import Codec, decode_seqs, encode_seqs, load_refs, load_values, split_refs
from ._redis_lua import MAX_ENTRY
from .base import BatchRecord, ChunkLike, JobRecord, StatusRecord

__all__ = [
    "End",
    "Enqueue",
    "Entry",
    "Lease",
    "Token",
    "as_str",
    "as_text",
    "decode_entry",
    "job_record",
    "status_record",
]


def as_str(b: Any) -> str:
    return b.decode() if isinstance(b, bytes) else str(b)


def as_text(b: Any) -> str:
    """Any bytes as text, for a report (undecodable bytes escaped, never an error)."""
    return b.decode("utf-8", "backslashreplace") if isinstance(b, bytes) else str(b)


class End(NamedTuple):
    """Queued by :meth:`RedisVault.end_stream`."""

    stream_id: str
    error: str | None


class Lease(NamedTuple):
    """Queued by :meth:`RedisVault.hold`: the lease's first setting."""

    key: str
    ttl: float


class Enqueue(NamedTuple):
    """Queued by :meth:`RedisVault.enqueue`."""

    spec: str
    job_id: str


class Token(NamedTuple):
    """A status record with the token that makes sending it again harmless."""

    record: StatusRecord
    token: str


class Entry:
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


def decode_entry(stream_id: str, fields: Mapping[Any, Any], value_type: Any) -> Iterator[BatchRecord]:
    """The batches of one stream entry, values validated by ``value_type``.

    Raises
    ------
    LivestackError
        The entry is not a datapoint entry (a malformed or foreign one).
    """
    try:
        f = {as_str(k): v for k, v in fields.items()}
        seq0, n = int(f["s"]), int(f["n"])
        runs = [(int(o), float(t)) for o, t in json.loads(f["t"])]
        refs = load_refs(f.get("r"))
        parent_stream = as_str(f["ps"]) if "ps" in f else None
        seqs = decode_seqs(as_str(f["pq"])) if "pq" in f else None
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


def job_record(job_id: str, h: Mapping[Any, Any]) -> JobRecord:
    f = {as_str(k): as_str(v) for k, v in h.items()}
    return JobRecord(
        job_id,
        f.get("spec", "?"),
        f.get("status", "requested"),
        f.get("parent") or None,
        json.loads(f["options"]) if f.get("options") else None,
        float(f.get("created", 0.0)),
    )


def status_record(job_id: str, fields: Mapping[Any, Any]) -> StatusRecord:
    f = {as_str(k): as_str(v) for k, v in fields.items()}
    return StatusRecord(job_id, f.get("status", "?"), float(f.get("time", 0.0)), f.get("detail"))
