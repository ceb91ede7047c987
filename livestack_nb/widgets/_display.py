"""What ``display(stream)``, ``display(flow)`` and ``display(job)`` show.

Why a formatter and not methods on the core classes: the core must run
without IPython or ipywidgets (in a worker process, in plain Python), and
layers point one way, widgets on top. So the core classes know nothing of
widgets; ``import livestack_nb`` inside a running kernel registers
:func:`show` with IPython's ``ipython_display_formatter`` by class *name*
(importing neither IPython nor this package), and this package is imported
only when something is first displayed. Outside a kernel the plain ``repr``
stays.
"""

from __future__ import annotations

from typing import Any

from .._displayed import DISPLAYED
from ..attempts import ParallelAttempts
from ..flow import Liveflow
from ..job import JobHandle
from ..stream import DataStream
from ._base import LiveWidget

__all__ = ["TARGETS", "register", "show", "widget_for"]

#: The classes displayed as widgets, by module and name.
TARGETS = DISPLAYED


def widget_for(obj: Any) -> LiveWidget:
    """The widget that shows ``obj``: a table for a stream, a graph for a flow or job."""
    from .graph import FlowGraph
    from .table import StreamTable

    if isinstance(obj, DataStream):
        return StreamTable(obj)
    if isinstance(obj, (Liveflow, ParallelAttempts, JobHandle)):
        return FlowGraph(obj)
    raise TypeError(f"livestack-nb has no widget for {type(obj).__name__}")


def show(obj: Any) -> None:
    """Display ``obj`` as its live widget (IPython calls this for ``display(obj)``)."""
    widget_for(obj)._ipython_display_()


def register(ip: Any = None) -> bool:
    """Register :func:`show` for streams, flows and jobs with IPython; ``False`` outside a kernel."""
    if ip is None:
        from IPython import get_ipython

        ip = get_ipython()
    if ip is None or getattr(ip, "kernel", None) is None:
        return False
    formatter = ip.display_formatter.ipython_display_formatter
    for module, name in TARGETS:
        formatter.for_type_by_name(module, name, show)
    return True
