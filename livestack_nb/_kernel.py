"""What ``import livestack_nb`` hooks into a running kernel, by name only.

In a kernel, streams, flows and jobs display as live widgets, and the comm
target of JupyterLab's Kitchen side panel answers. Neither IPython nor the
widgets are imported here: IPython is only looked up in ``sys.modules``, and
the widgets package loads on the first display (see
``livestack_nb.widgets._display``) or when the panel first asks.
"""

from __future__ import annotations

import sys

from ._displayed import DISPLAYED, KITCHEN_TARGET

__all__ = ["register_display_hooks"]


def display_live(obj: object) -> None:
    from .widgets import show

    show(obj)


def open_kitchen(comm: object, msg: object) -> None:
    from .widgets.kitchen import open_kitchen

    open_kitchen(comm, msg)


def register_display_hooks() -> None:
    """In a running kernel, show streams, flows and jobs as live widgets, and
    register the Kitchen side panel's comm target (its module loads when the
    panel asks)."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    ip = get_ipython() if callable(get_ipython) else None
    if ip is None or getattr(ip, "kernel", None) is None:
        return
    formatter = ip.display_formatter.ipython_display_formatter
    for module, name in DISPLAYED:
        formatter.for_type_by_name(module, name, display_live)
    comm_manager = getattr(ip.kernel, "comm_manager", None)
    if comm_manager is not None:
        comm_manager.register_target(KITCHEN_TARGET, open_kitchen)
