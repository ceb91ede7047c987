"""The record of an env: jobs, statuses, streams, datapoints and lineage.

Every backend implements the small contract in :mod:`.base`; the in-memory one
is the default and the test double; :mod:`.sqlite` is the durable one (imported
only when an env asks for it).
"""

from __future__ import annotations

from .base import (
    BatchRecord,
    DatapointRecord,
    JobRecord,
    StatusRecord,
    StreamRecord,
    ValidationFailureRecord,
    Vault,
    open_vault,
)
from .memory import MemoryVault

__all__ = [
    "BatchRecord",
    "DatapointRecord",
    "JobRecord",
    "MemoryVault",
    "StatusRecord",
    "StreamRecord",
    "ValidationFailureRecord",
    "Vault",
    "open_vault",
]
