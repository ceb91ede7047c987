"""The record of an env: jobs, statuses, streams, datapoints and lineage.

Every backend implements the small contract in :mod:`.base`; the in-memory one
is the default and the test double.
"""

from __future__ import annotations

from .base import DatapointRecord, JobRecord, StatusRecord, StreamRecord, Vault, open_vault
from .memory import MemoryVault

__all__ = [
    "DatapointRecord",
    "JobRecord",
    "MemoryVault",
    "StatusRecord",
    "StreamRecord",
    "Vault",
    "open_vault",
]
