"""How durable vaults write values, lineage and storage references as JSON.

The SQLite and Redis vaults store the same things in different engines; the
encoding is one, here, so a value written by either reads back the same way:
JSON by pydantic with the tag's type (``bytes`` as base64, non-finite floats
kept), validated back into that type on read, never pickled.

Plain scalars are written by pydantic's JSON serializer. Everything else
(models above all: they keep their own JSON settings, which write NaN as
``null`` and bytes as UTF-8) is written from its Python form with bytes
tagged and NaN kept, behind a one-byte marker ``~``, and validated back in
Python mode on read.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import enum
import json
import logging
import threading
import uuid
from collections.abc import Sequence
from itertools import pairwise
from pathlib import PurePath
from typing import Any

from pydantic import ConfigDict, TypeAdapter

from ..storage import StorageRef

__all__ = ["Codec", "decode_seqs", "encode_seqs", "load_refs", "load_values", "ref_of", "split_refs"]

log = logging.getLogger("livestack_nb")

_JSON_CONFIG = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64", ser_json_inf_nan="constants")
_adapters: dict[Any, TypeAdapter[Any]] = {}
_adapters_lock = threading.Lock()


def _adapter(tp: Any) -> TypeAdapter[Any]:
    """``TypeAdapter(list[tp])`` with the vaults' JSON settings (cached per type)."""
    try:
        hash(tp)
    except TypeError:
        return _new_adapter(tp)
    with _adapters_lock:
        a = _adapters.get(tp)
        if a is None:
            a = _adapters[tp] = _new_adapter(tp)
        return a


def _new_adapter(tp: Any) -> TypeAdapter[Any]:
    try:
        return TypeAdapter(list[tp], config=_JSON_CONFIG)
    except Exception:  # a type that brings its own config, or one pydantic cannot build
        return TypeAdapter(list[tp])


class Codec:
    """How one stream's values become JSON (warns once when a value cannot)."""

    __slots__ = ("stream_id", "tp", "warned")

    def __init__(self, stream_id: str, tp: Any) -> None:
        self.stream_id = stream_id
        self.tp = tp
        self.warned = False

    def dump(self, values: list[Any], loose: bool) -> bytes:
        """``values`` as a JSON array; ``loose`` when some are ``None`` placeholders.

        A value with no JSON form is stored as its ``repr()`` (with a warning,
        once per stream) rather than failing the stream: it is still shown,
        and nothing else written with it is lost.
        """
        tp = Any if loose else self.tp
        try:
            if tp in _PLAIN_TYPES:
                return _adapter(tp).dump_json(values, warnings=False)
            # Models keep their own JSON settings (NaN as null, bytes as UTF-8),
            # which would lose data: their Python form is written instead, with
            # bytes tagged and NaN kept, and validated back on read.
            data = _adapter(tp).dump_python(values, mode="python", warnings=False)
            return _TAGGED + json.dumps(data, default=_tag, separators=(",", ":")).encode()
        except Exception as e:
            if not self.warned:
                self.warned = True
                log.warning(
                    "stream %r: a value is not JSON-serialisable (%s); the vault stores its repr()",
                    self.stream_id,
                    str(e).splitlines()[0],
                )
            try:
                return _adapter(Any).dump_json(values, warnings=False, fallback=repr)
            except Exception:  # e.g. bytes that are not UTF-8 inside a model
                return json.dumps([_plain(v) for v in values]).encode()


def _plain(value: Any) -> Any:
    """One value as JSON data, or its ``repr()`` when it has no JSON form."""
    try:
        return _adapter(Any).dump_python([value], mode="json", warnings=False)[0]
    except Exception:
        return repr(value)


_PLAIN_TYPES = frozenset({int, float, str, bool})
_TAGGED = b"~"  # a payload written from the values' Python form (JSON arrays start with "[")
_BYTES = "__livestack_bytes__"


def _tag(o: Any) -> Any:
    """JSON for what ``json.dumps`` does not know, in a form validation reads back."""
    if isinstance(o, (bytes, bytearray)):
        return {_BYTES: base64.b64encode(o).decode()}
    if isinstance(o, (datetime.date, datetime.time)):
        return o.isoformat()
    if isinstance(o, datetime.timedelta):
        return o.total_seconds()
    if isinstance(o, enum.Enum):
        return o.value
    if isinstance(o, (set, frozenset)):
        return list(o)
    if isinstance(o, (decimal.Decimal, uuid.UUID, PurePath)):
        return str(o)
    raise TypeError(f"{type(o).__name__} has no JSON form")


def _untag(d: dict[str, Any]) -> Any:
    if len(d) == 1 and _BYTES in d:
        return base64.b64decode(d[_BYTES])
    return d


def load_values(stream_id: str, payload: bytes | str, value_type: Any, holes: bool) -> list[Any]:
    """Decode a stored JSON array, validated into ``value_type`` (``None`` allowed
    at ``holes``, the places of offloaded values); plain JSON if it no longer fits."""
    raw = payload.encode() if isinstance(payload, str) else payload
    tagged = raw[:1] == _TAGGED
    data: Any = json.loads(raw[1:], object_hook=_untag) if tagged else None
    if value_type is Any:
        return list(data if tagged else json.loads(raw))
    try:
        tp = value_type | None if holes else value_type
        if tagged:
            return list(_adapter(tp).validate_python(data))
        return list(_adapter(tp).validate_json(raw))
    except Exception as e:
        log.warning(
            "stream %r: stored values do not fit %r any more (%s); reading them as plain JSON",
            stream_id,
            value_type,
            str(e).splitlines()[0],
        )
        return list(data if tagged else json.loads(raw))


def ref_of(v: Any) -> StorageRef | None:
    """The reference of an offloaded value (or of its placeholder, see ``ChunkLike``), else ``None``."""
    ref = getattr(v, "ref", v)
    return ref if isinstance(ref, StorageRef) else None


def split_refs(values: list[Any]) -> tuple[list[Any], str | None]:
    """Offloaded values out of ``values``: ``None`` in their place, and their
    references as JSON ``{index: [key, size, kind]}`` (``None`` when there are none)."""
    found = {i: r for i, v in enumerate(values) if (r := ref_of(v)) is not None}
    if not found:
        return values, None
    kept = [None if i in found else v for i, v in enumerate(values)]
    return kept, json.dumps({str(i): [r.key, r.size, r.kind] for i, r in found.items()})


def load_refs(text: str | bytes | None) -> dict[int, StorageRef]:
    """The inverse of :func:`split_refs`' references: ``{index: StorageRef}``."""
    if not text:
        return {}
    return {int(i): StorageRef(k, s, kind) for i, (k, s, kind) in json.loads(text).items()}


def encode_seqs(seqs: Sequence[int]) -> str:
    """Parent seqs: ``{"range": [a, b]}`` for one contiguous run (the usual map), else a list."""
    if seqs and seqs[-1] - seqs[0] == len(seqs) - 1 and all(b - a == 1 for a, b in pairwise(seqs)):
        return json.dumps({"range": [seqs[0], seqs[-1] + 1]})
    return json.dumps(list(seqs))


def decode_seqs(text: str | None) -> Sequence[int] | None:
    """The inverse of :func:`encode_seqs` (``None`` stays ``None``)."""
    if text is None:
        return None
    data = json.loads(text)
    if isinstance(data, dict):
        a, b = data["range"]
        return range(int(a), int(b))
    return [int(x) for x in data]
