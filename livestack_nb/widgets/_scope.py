"""Cell-scoped lifetime of widgets, through IPython's event hooks.

Re-running a cell must not leave the previous run's widgets subscribed to
their streams (each would keep formatting and sending). Every widget is
recorded under the id of the cell that created it; ``pre_run_cell`` for that
cell id disposes them before the new run starts. ``post_execute`` refreshes
the static snapshots, on the kernel's main thread with the running cell's
parent message, so a notebook executed headless (nbclient) saves them
current. Outside IPython nothing is hooked and widgets live until
``dispose()``.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._base import LiveWidget

__all__ = ["CellScope", "scope"]


def _ipython() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipywidgets depends on IPython
        return None
    return get_ipython()


def _cell_id_of_parent(ip: Any) -> str | None:
    """The running cell's id from the execute request's metadata (JupyterLab, nbclient)."""
    kernel = getattr(ip, "kernel", None)
    parent: Any = None
    if kernel is not None:
        get_parent = getattr(kernel, "get_parent", None)
        if callable(get_parent):
            try:
                parent = get_parent("shell")
            except TypeError:
                parent = get_parent()
    if not parent:
        parent = getattr(ip, "parent_header", None)
    if isinstance(parent, dict):
        cell = parent.get("metadata", {}).get("cellId")
        return str(cell) if cell else None
    return None


class CellScope:
    """Which widgets each cell created; disposes them when the cell runs again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_cell: dict[str, list[weakref.ref[LiveWidget]]] = {}
        self._current: str | None = None
        self._hooked: Any = None

    @property
    def current_cell(self) -> str | None:
        return self._current

    def track(self, widget: LiveWidget) -> None:
        """Record ``widget`` under the running cell (hooking IPython on first use)."""
        self._hook()
        cell = self._current
        if cell is None:
            return
        with self._lock:
            self._by_cell.setdefault(cell, []).append(weakref.ref(widget))

    def enter_cell(self, cell_id: str | None) -> None:
        """A cell starts: dispose what its previous run created."""
        self._current = cell_id
        if cell_id is None:
            return
        with self._lock:
            old = self._by_cell.pop(cell_id, [])
        for ref in old:
            w = ref()
            if w is not None:
                w.dispose()

    def _hook(self) -> None:
        ip = _ipython()
        if ip is None or self._hooked is ip:
            return
        self._hooked = ip
        # The cell that creates the first widget already passed pre_run_cell.
        self._current = _cell_id_of_parent(ip)
        ip.events.register("pre_run_cell", self._pre_run_cell)
        ip.events.register("post_execute", self._post_execute)

    def _pre_run_cell(self, info: Any = None) -> None:
        cell = getattr(info, "cell_id", None) or _cell_id_of_parent(_ipython())
        self.enter_cell(cell)

    def _post_execute(self) -> None:
        from ._base import live_widgets

        for w in live_widgets():
            if w._polled:
                w._settle()
            if w._snap_dirty or w._polled:
                w.refresh_snapshot()


scope = CellScope()
