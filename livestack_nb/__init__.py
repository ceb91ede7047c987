"""livestack-nb: live data pipelines in Jupyter, on the Livestack model.

A :class:`JobSpec` is a recipe, a :class:`LiveJob` one cooking of it, a
:class:`LiveWorker` the staff that runs jobs, a :class:`DataStream` carries
data between jobs, and a :class:`Liveflow` wires specs together. Importing the
package is cheap: widgets, pandas and anything optional load on first use.
"""

from . import _kernel, agg
from ._version import VERSION as __version__
from .attempts import Attempt, ParallelAttempts, attempt
from .dead_letter import DeadLetter
from .env import LiveEnv, current_env, use_env
from .errors import (
    DataValidationError,
    JobCancelled,
    JobClosedError,
    JobFailed,
    LivestackError,
    StreamEnded,
    WaitTimeout,
    WiringError,
)
from .flow import Liveflow, conn, expose
from .job import JobHandle, JobStatus, LiveJob
from .keys import Keyed, key_by
from .reading import TruncatedHistoryWarning
from .spec import JobSpec, job_spec
from .step import Hop
from .storage import LocalDirStorage, MemoryStorage, StorageProvider, StorageRef
from .stream import Datapoint, DataStream
from .window import window
from .worker import LiveWorker, LiveWorkerDef

_kernel.register_display_hooks()  # in a kernel only; imports nothing heavy


def __getattr__(name: str) -> object:
    """``ls.widgets`` on first use: the widgets (and ipywidgets) load only then."""
    if name == "widgets":
        import importlib

        return importlib.import_module(".widgets", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "widgets"})


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the built front end is, for ``jupyter labextension develop``."""
    return [{"src": "labextension", "dest": "livestack-nb"}]


__all__ = [
    "Attempt",
    "DataStream",
    "DataValidationError",
    "Datapoint",
    "DeadLetter",
    "Hop",
    "JobCancelled",
    "JobClosedError",
    "JobFailed",
    "JobHandle",
    "JobSpec",
    "JobStatus",
    "Keyed",
    "LiveEnv",
    "LiveJob",
    "LiveWorker",
    "LiveWorkerDef",
    "Liveflow",
    "LivestackError",
    "LocalDirStorage",
    "MemoryStorage",
    "ParallelAttempts",
    "StorageProvider",
    "StorageRef",
    "StreamEnded",
    "TruncatedHistoryWarning",
    "WaitTimeout",
    "WiringError",
    "__version__",
    "agg",
    "attempt",
    "conn",
    "current_env",
    "expose",
    "job_spec",
    "key_by",
    "use_env",
    "window",
]
