"""Content-addressed storage for values too large to keep inline in a stream.

A stream carries a small :class:`StorageRef` instead of a multi-megabyte blob;
readers get the original value back. Keys are sha256 digests of the content, so
storing the same value twice costs nothing and a key can never name a path
chosen by user data.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import LivestackError

__all__ = ["LocalDirStorage", "MemoryStorage", "StorageProvider", "StorageRef"]

_KEY = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class StorageRef:
    """A reference to a value held by a storage provider.

    Attributes
    ----------
    key:
        The sha256 hex digest of the stored bytes.
    size:
        Size of the stored bytes.
    kind:
        ``"bytes"`` or ``"str"`` (stored as UTF-8): what :meth:`StorageProvider.load`
        gives back.
    """

    key: str
    size: int
    kind: Literal["bytes", "str"] = "bytes"


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise LivestackError(f"invalid storage key {key!r}: expected a sha256 hex digest")
    return key


class StorageProvider(ABC):
    """Where large values live; the job sees it as ``job.storage``.

    Subclasses implement :meth:`_write` and :meth:`_read` for raw bytes under a
    validated key; hashing, references and text round-trips are shared here.
    """

    def put(self, value: bytes | bytearray | memoryview | str) -> StorageRef:
        """Store ``value`` and return its reference (idempotent)."""
        if isinstance(value, str):
            data, kind = value.encode("utf-8"), "str"
        elif isinstance(value, (bytes, bytearray, memoryview)):
            data, kind = bytes(value), "bytes"
        else:
            raise LivestackError(
                f"storage holds bytes or str, not {type(value).__name__}; serialise it first"
            )
        key = hashlib.sha256(data).hexdigest()
        if not self.has(key):
            self._write(key, data)
        return StorageRef(key=key, size=len(data), kind=kind)  # type: ignore[arg-type]

    def get(self, ref: StorageRef | str) -> bytes:
        """Return the stored bytes of ``ref`` (a reference or a bare key)."""
        key = _check_key(ref.key if isinstance(ref, StorageRef) else ref)
        try:
            return self._read(key)
        except KeyError:
            raise LivestackError(f"storage has no value for key {key}") from None

    def load(self, ref: StorageRef) -> bytes | str:
        """Return the original value of ``ref``: ``str`` if a ``str`` was stored."""
        data = self.get(ref)
        return data.decode("utf-8") if ref.kind == "str" else data

    @abstractmethod
    def has(self, key: str) -> bool:
        """Whether a value is stored under ``key``."""

    @abstractmethod
    def _write(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def _read(self, key: str) -> bytes:
        """Return the bytes under ``key``; raise ``KeyError`` when absent."""


class MemoryStorage(StorageProvider):
    """Values kept in this process's memory: the default, needs nothing."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def has(self, key: str) -> bool:
        return _check_key(key) in self._data

    def _write(self, key: str, data: bytes) -> None:
        with self._lock:
            self._data[key] = data

    def _read(self, key: str) -> bytes:
        return self._data[key]

    def __repr__(self) -> str:
        return f"MemoryStorage({len(self._data)} values)"


class LocalDirStorage(StorageProvider):
    """Values kept as files in a local directory, shared across processes.

    Files are named by their digest only (``ab/abcdef...``) and written to a
    temporary file first, then renamed, so a reader never sees half a value and
    no part of a path ever comes from user data.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def _file(self, key: str) -> Path:
        key = _check_key(key)
        return self.path / key[:2] / key

    def has(self, key: str) -> bool:
        return self._file(key).exists()

    def _write(self, key: str, data: bytes) -> None:
        target = self._file(key)
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read(self, key: str) -> bytes:
        try:
            return self._file(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def __repr__(self) -> str:
        return f"LocalDirStorage({str(self.path)!r})"


def open_storage(spec: StorageProvider | str | None) -> StorageProvider:
    """Build a provider from an env's ``storage=`` argument."""
    if spec is None or spec == "memory":
        return MemoryStorage()
    if isinstance(spec, StorageProvider):
        return spec
    if isinstance(spec, str) and spec.startswith("dir://"):
        return LocalDirStorage(spec[len("dir://") :])
    if isinstance(spec, (str, os.PathLike)):
        return LocalDirStorage(spec)
    raise LivestackError(
        f"unknown storage {spec!r}: use 'memory', 'dir:///path', a path, or a StorageProvider"
    )
