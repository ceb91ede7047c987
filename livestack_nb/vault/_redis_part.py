"""What each part of the Redis vault may use of the vault it is mixed into.

:class:`~livestack_nb.vault.redis.RedisVault` is put together from mixins
(followers, queues, the writer), one module each so none grows past what one
can read; each needs a few names the vault's ``__init__`` sets up. They are
declared once here, for the type checker only, instead of in every mixin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..errors import LivestackError

__all__ = ["RedisPart"]


class RedisPart:
    """The vault's connection, names and helpers its mixins share (see RedisVault.__init__)."""

    if TYPE_CHECKING:
        _r: Any
        _closed: bool
        _stopping: bool
        url: str
        prefix: str

        @property
        def _label(self) -> str: ...

        def _fail(self, what: str, error: BaseException | None = None) -> LivestackError: ...

        def _put(self, item: Any) -> None: ...

        def k(self, *parts: str) -> str: ...

        def stream_key(self, stream_id: str) -> str: ...

        def status_key(self, job_id: str) -> str: ...

        def queue_key(self, spec: str) -> str: ...

        def flush(self) -> None: ...
