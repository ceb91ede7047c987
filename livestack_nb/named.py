"""Named standalone streams: ``env.stream("orders", type=Order)`` (Livestack's
``DataStream.getOrCreate({uniqueName})``).

Why a stream outside any job: a feed of orders, a log or a chat channel that
several specs, cells and processes write to and read from, with no job that
owns it. A named stream is an ordinary :class:`DataStream` (subscribe, iterate,
``replay()``, widgets) plus :meth:`NamedStream.emit`, which checks values
against the stream's type.

What it is shared with depends on the vault:

- memory: every cell and spec of the env, in this process;
- SQLite: also other processes on the same file. Each reads what was stored
  when it opens the stream (SQLite cannot tell one process what another
  writes: not live). One process at a time publishes to a named stream: the
  first to publish holds a lock file beside the vault's file until its env
  closes or it dies; another one is refused at its first publish, and once
  it may publish it first takes in what was stored meanwhile;
- Redis: every process on the same server, live: what any of them publishes
  is appended at the stream's end in Redis, in the order the server took it,
  and every process's copy follows Redis (so a publish shows up here once the
  server has it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .errors import LivestackError
from .spec import TagType, as_list
from .stream import MAX_CHUNK, DataStream

if TYPE_CHECKING:
    from .env import LiveEnv

__all__ = ["NamedStream", "check_type", "named_stream_id", "publisher_lock"]


def named_stream_id(name: str) -> str:
    """The stream id of the named stream ``name`` (the same in every process)."""
    return f"streams/{name}"


class NamedStream(DataStream):
    """A stream with a name and no job; get one with ``env.stream(name, type=...)``."""

    def __init__(self, env: LiveEnv, name: str, value_type: TagType) -> None:
        super().__init__(
            named_stream_id(name),
            name,
            value_type,
            history=env.history,
            storage=env.storage,
            large_value_threshold=env.large_value_threshold,
        )
        self.name = name
        self._write: Callable[[list[Any]], None] = self._push_here
        self._end_remote: Callable[[BaseException | None], None] | None = None
        self._first_publish: Callable[[], None] | None = None

    def _push_here(self, values: list[Any]) -> None:
        self.push(values)

    def write_through(
        self, write: Callable[[list[Any]], None], end: Callable[[BaseException | None], None]
    ) -> None:
        """Publish through ``write`` and announce the end through ``end`` instead of here
        (a stream shared by processes: what comes back from the server is what it holds)."""
        self._write = write
        self._end_remote = end

    def emit(self, value: Any) -> None:
        """Append ``value`` (checked against the stream's type first); Livestack's ``pub``.

        (Not ``publish``: that name is RxPY's multicast operator, which a
        DataStream keeps.)

        Raises
        ------
        DataValidationError
            The value does not fit the stream's type (nothing is published).
        JobClosedError
            The stream has ended.
        """
        self.emit_many([value])

    def emit_many(self, values: Iterable[Any]) -> None:
        """Append several values (all checked first: a bad one publishes none)."""
        vals = self.type.check_many(
            as_list(values), spec=f"stream {self.name!r}", tag=self.name, side="input"
        )
        if not vals:
            return
        if self._first_publish is not None:
            check, self._first_publish = self._first_publish, None
            check()
        for i in range(0, len(vals), MAX_CHUNK):
            self._write(vals[i : i + MAX_CHUNK])

    def catch_up(self, batches: Iterable[Any]) -> None:
        """Take values another process stored after this one opened the stream
        (they are in the vault already: not recorded again)."""
        recorder, self._recorder = self._recorder, None
        try:
            for b in batches:
                have = len(self)
                values = b.values[max(0, have - b.seq0) :]
                if values and b.seq0 + len(b.values) > have:
                    self.push(values)
        finally:
            self._recorder = recorder

    def end(self, error: BaseException | None = None) -> None:
        """No more values, for every reader (in every process, with Redis)."""
        if self._end_remote is not None:
            self._end_remote(error)
        super().end(error)

    def __repr__(self) -> str:
        state = "ended" if self.ended else "live"
        return f"<NamedStream {self.name!r} {self.type.name} {state}, {len(self)} values>"


def check_type(stream: NamedStream, value_type: Any) -> None:
    """A named stream asked for again with another type is refused, naming both."""
    if value_type is None:
        return
    asked = TagType(value_type)
    if asked.tp != stream.type.tp:
        raise LivestackError(
            f"stream {stream.name!r} carries {stream.type.name}, not {asked.name}: a named stream "
            "has one type (ask for it without type=, or with the same type)"
        )


def publisher_lock(vault: Any, stream: NamedStream) -> IO[bytes]:
    """Hold the lock that makes this process the one publisher of ``stream`` on a file vault.

    An advisory lock on a file beside the vault's file, taken without waiting
    and released when the returned file is closed or the process dies (so a
    killed publisher never blocks the next one).

    Raises
    ------
    LivestackError
        Another process publishes to the stream now.
    """
    path = Path(f"{vault.path}.streams") / (hashlib.sha256(stream.name.encode()).hexdigest()[:32] + ".lock")
    path.parent.mkdir(exist_ok=True)
    f = open(path, "ab")  # noqa: SIM115 - held open as the lock, closed by the env
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock to take
        return f
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise LivestackError(
            f"stream {stream.name!r}: another process publishes to it in {vault!r}; with SQLite one "
            "process publishes to a named stream at a time (until its env closes); every process "
            "reads it. Use a Redis vault to publish from several processes at once"
        ) from None
    return f
