"""livestack-nb: live data pipelines in Jupyter, on the Livestack model.

A :class:`JobSpec` is a recipe, a :class:`LiveJob` one cooking of it, a
:class:`LiveWorker` the staff that runs jobs, a :class:`DataStream` carries
data between jobs, and a :class:`Liveflow` wires specs together. Importing the
package is cheap: widgets, pandas and anything optional load on first use.
"""

from __future__ import annotations

import sys

from . import agg
from ._version import VERSION
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

__version__ = VERSION


#: The classes a kernel displays as live widgets, by module and name.
_DISPLAYED = (
    ("livestack_nb.stream", "DataStream"),
    ("livestack_nb.flow", "Liveflow"),
    ("livestack_nb.attempts", "ParallelAttempts"),
    ("livestack_nb.job", "JobHandle"),
)


def _display_live(obj: object) -> None:
    from .widgets import show

    show(obj)


def _register_display_hooks() -> None:
    """In a running kernel, show streams, flows and jobs as live widgets.

    Also registers the comm target of JupyterLab's Kitchen side panel
    (``livestack_nb.widgets.kitchen``), whose module loads when the panel asks.

    IPython is only looked up (never imported here) and the widgets package
    is imported on first display; see ``livestack_nb.widgets._display``.
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    ip = get_ipython() if callable(get_ipython) else None
    if ip is None or getattr(ip, "kernel", None) is None:
        return
    formatter = ip.display_formatter.ipython_display_formatter
    for module, name in _DISPLAYED:
        formatter.for_type_by_name(module, name, _display_live)
    comm_manager = getattr(ip.kernel, "comm_manager", None)
    if comm_manager is not None:  # the Kitchen side panel's target, by name only
        comm_manager.register_target("livestack-nb:kitchen", _open_kitchen)


def _open_kitchen(comm: object, msg: object) -> None:
    from .widgets.kitchen import open_kitchen

    open_kitchen(comm, msg)


_register_display_hooks()


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
