"""The record of an env: jobs, statuses, streams, datapoints and lineage.

Every backend implements the small contract in :mod:`.base`; the in-memory one
is the default and the test double; :mod:`.sqlite` is the durable one (imported
only when an env asks for it). A vault that can hand jobs to worker processes
also implements the queue contract in :mod:`.queue` (:mod:`.redis`, and
:mod:`.memory_queue` in one process). :mod:`.open` builds one from a URL.
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
)
from .memory import MemoryVault
from .open import open_vault
from .queue import QueueVault

__all__ = [
    "BatchRecord",
    "DatapointRecord",
    "JobRecord",
    "MemoryVault",
    "QueueVault",
    "StatusRecord",
    "StreamRecord",
    "ValidationFailureRecord",
    "Vault",
    "open_vault",
]
