"""Cell-scoped lifetime of widgets, through IPython's event hooks.

Re-running a cell must not leave the previous run's widgets subscribed to
their streams (each would keep formatting and sending). Every widget is
recorded under the id of the cell that created it; ``pre_run_cell`` for that
cell id disposes them before the new run starts. ``post_execute`` refreshes
the static snapshots, on the kernel's main thread with the running cell's
parent message, so a notebook executed headless (nbclient) saves them
current. Outside IPython nothing is hooked and widgets live until
``dispose()``.

The registry of live widgets is kept here too, and a widget is known here
only by the :class:`Scoped` protocol: ``_base`` imports this module, never
the other way round.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol

__all__ = ["CellScope", "Scoped", "forget", "live_widgets", "register", "scope"]


class Scoped(Protocol):
    """What the cell scope needs of a widget."""

    def dispose(self) -> None:
        """Unsubscribe and close (the cell that made it runs again)."""

    def after_cell(self) -> None:
        """Catch up and refresh the static snapshot once a cell has run."""


_live: list[Any] = []  # the widgets not yet disposed, oldest first (a LiveWidget each)
_live_lock = threading.Lock()


def register(widget: Scoped) -> None:
    """Record a new widget as live, under the running cell."""
    scope.track(widget)
    with _live_lock:
        _live.append(widget)


def forget(widget: Scoped) -> None:
    """A widget was disposed: it is no longer live."""
    with _live_lock:
        if widget in _live:
            _live.remove(widget)


def live_widgets() -> list[Any]:
    """Every widget not yet disposed, oldest first (``LiveWidget`` s)."""
    with _live_lock:
        return list(_live)


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
        self._by_cell: dict[str, list[weakref.ref[Scoped]]] = {}
        self._current: str | None = None
        self._hooked: Any = None

    def track(self, widget: Scoped) -> None:
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
        for w in live_widgets():
            w.after_cell()


scope = CellScope()
