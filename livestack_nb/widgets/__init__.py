"""Live widgets for streams, flows and jobs: the only part that imports ipywidgets.

``display(stream)`` shows a :class:`StreamTable`, ``display(flow)`` or
``display(job)`` a :class:`FlowGraph`; the classes can also be made directly
(:class:`JobTimeline` draws jobs over time, one lane per worker slot).
Every widget sends coalesced deltas (at most ~30 messages a second each, and a
kernel-wide budget), shows values as text only, is followed by a static
snapshot for readers without widgets, and is disposed when the cell that made
it runs again. The browser side is the ``livestack-nb`` JupyterLab extension,
installed with the package.
"""

from __future__ import annotations

from ._base import LiveWidget, live_widgets
from ._display import register, show, widget_for
from ._pump import KERNEL_BUDGET, PER_WIDGET_RATE, pump
from .graph import FlowGraph
from .input import Binding, JobInput, bind
from .panel import JobPanel
from .plot import StreamPlot
from .table import StreamTable
from .timeline import JobTimeline

__all__ = [
    "Binding",
    "FlowGraph",
    "JobInput",
    "JobPanel",
    "JobTimeline",
    "KERNEL_BUDGET",
    "LiveWidget",
    "PER_WIDGET_RATE",
    "StreamPlot",
    "StreamTable",
    "bind",
    "dispose_all",
    "live_widgets",
    "pump",
    "register",
    "show",
    "widget_for",
]


def dispose_all() -> None:
    """Dispose every live widget of this kernel (their streams are left alone)."""
    for w in live_widgets():
        w.dispose()
