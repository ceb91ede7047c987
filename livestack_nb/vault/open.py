"""``LiveEnv(vault=...)``: from a URL (or ``None``, or a vault) to a vault.

Kept out of :mod:`.base` so the contract imports no backend: each backend
imports the contract, and only this module imports the backends (each on
first use: SQLite and Redis cost nothing until an env asks for them).
"""

from __future__ import annotations

from ..errors import LivestackError
from .base import Vault
from .memory import MemoryVault

__all__ = ["open_vault"]


def open_vault(spec: Vault | str | None) -> Vault:
    """Build a vault from an env's ``vault=`` argument.

    ``"sqlite:///relative.db"`` and ``"sqlite:////absolute/path.db"`` follow
    the usual URL form (three slashes, then the path); ``"redis://..."`` and
    ``"rediss://..."`` open a :class:`~livestack_nb.vault.redis.RedisVault`.
    """
    if spec is None or spec == "memory":
        return MemoryVault()
    if isinstance(spec, Vault):
        return spec
    if isinstance(spec, str) and spec.startswith("sqlite:///"):
        from .sqlite import SQLiteVault

        if spec[len("sqlite:///") :] in ("", ":memory:"):
            raise LivestackError(f"vault {spec!r} names no file: use vault='memory' to keep nothing on disk")

        return SQLiteVault(spec[len("sqlite:///") :])
    if isinstance(spec, str) and spec.split(":", 1)[0] in ("redis", "rediss"):
        from .redis import RedisVault

        return RedisVault(spec)
    raise LivestackError(
        f"unknown vault {spec!r}: use 'memory', 'sqlite:///path.db', 'redis://host:port/db' "
        "or a Vault instance"
    )
