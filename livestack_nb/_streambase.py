"""What every part of a :class:`~livestack_nb.stream.DataStream` shares: its fields.

A stream's code is split by what it does (making and keeping chunks in
``stream.py``, delivering them in ``_delivery.py``, reading them back in
``_reads.py``), one class above the other. The fields are set in
``DataStream.__init__``; they are declared here, with the few methods one part
calls on a part above it, so each part is type-checked on its own.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import reactivex

if TYPE_CHECKING:
    from ._chunk import Activity, Chunk
    from ._delivery import _End, _Join, _Listener
    from ._flusher import Flusher
    from ._types import TagType
    from .reading import StreamReader
    from .storage import StorageProvider
    from .stream import DataStream

__all__ = ["StreamFields"]


class StreamFields(reactivex.Observable[Any]):
    """The fields of a stream (see the module docstring); no behaviour of its own."""

    stream_id: str
    tag: str
    type: TagType
    history: int
    fused: bool
    consumer_idle: bool
    on_subscriber_error: Callable[[DataStream], None] | None
    subscriber_errors: int
    _storage: StorageProvider | None
    _threshold: int | None
    _offload: bool
    _activity: Activity | None
    _buf: list[Any]
    _buf_parent: str | None
    _flusher: Flusher | None
    _state_lock: threading.Lock
    _chunks: deque[Chunk]
    _held: int
    _count: int
    _pending: deque[Chunk | _End | _Join]
    _delivering: int
    _listeners: tuple[_Listener, ...]
    _closed: bool
    _end_delivered: bool
    _ending: list[_Listener]
    _telling: list[_Listener] | None
    _error: BaseException | None
    _last_time: float | None
    _samples: deque[tuple[float, int]]
    _last_sample: float
    _recorder: Callable[[Chunk], bool] | None
    _wait_for_room: Callable[[], None] | None
    _archive: Callable[[int, int], Iterable[Any]] | None
    _sync_archive: Callable[[], None] | None
    _cursor: StreamReader | None

    # Defined by the parts above (stream.py, _reads.py), called by those below.
    def flush(self) -> None:
        raise NotImplementedError

    def _let_go(self, me: int) -> None:
        raise NotImplementedError

    def _archived(self, stop: int) -> Iterator[Chunk]:
        raise NotImplementedError

    def _history_chunks(self, before: int | None = None) -> list[Chunk]:
        raise NotImplementedError

    def _resolved(self, chunk: Chunk) -> list[Any]:
        raise NotImplementedError

    def _now(self) -> float:
        raise NotImplementedError
