"""livestack-nb: live data pipelines in Jupyter, on the Livestack model.

A :class:`JobSpec` is a recipe, a :class:`LiveJob` one cooking of it, a
:class:`LiveWorker` the staff that runs jobs, a :class:`DataStream` carries
data between jobs, and a :class:`Liveflow` wires specs together. Importing the
package is cheap: widgets, pandas and anything optional load on first use.
"""

from __future__ import annotations

from .env import LiveEnv, current_env, use_env
from .errors import (
    DataValidationError,
    JobClosedError,
    JobFailed,
    LivestackError,
    WaitTimeout,
    WiringError,
)
from .flow import Liveflow, conn, expose
from .job import JobHandle, JobStatus, LiveJob
from .spec import JobSpec, job_spec
from .storage import LocalDirStorage, MemoryStorage, StorageProvider, StorageRef
from .stream import Datapoint, DataStream
from .worker import LiveWorker, LiveWorkerDef

__version__ = "0.1.0"

__all__ = [
    "DataStream",
    "DataValidationError",
    "Datapoint",
    "JobClosedError",
    "JobFailed",
    "JobHandle",
    "JobSpec",
    "JobStatus",
    "LiveEnv",
    "LiveJob",
    "LiveWorker",
    "LiveWorkerDef",
    "Liveflow",
    "LivestackError",
    "LocalDirStorage",
    "MemoryStorage",
    "StorageProvider",
    "StorageRef",
    "WaitTimeout",
    "WiringError",
    "__version__",
    "conn",
    "current_env",
    "expose",
    "job_spec",
    "use_env",
]
