"""The base of every live widget: coalesced sends, a static snapshot, disposal.

Live data never travels in synced traits (a trait update carries the whole
value): a widget sends a ``reset`` with its current state when the front end
says ``hello`` and small ``delta`` messages after that, when the pump lets
it. Displaying a widget also displays a static snapshot (escaped HTML of its
latest state) under a display id, refreshed at most twice a second and after
every cell, so a saved notebook reads well where widgets cannot run; the
front end hides the snapshot next to a live view.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ipywidgets
import traitlets

from .._version import VERSION
from ._messages import KernelMessage
from ._pump import PER_WIDGET_RATE, SNAPSHOT_RATE, pump
from ._scope import forget, live_widgets, register

__all__ = ["LiveWidget", "live_widgets"]


class LiveWidget(ipywidgets.DOMWidget):  # type: ignore[misc]
    """Shared behaviour of StreamTable, StreamPlot, FlowGraph and JobPanel.

    Subclasses implement :meth:`_reset` (the full current state),
    :meth:`_delta` (what changed since the last send, or ``None``) and
    :meth:`_snapshot` (``(html, text)`` of the latest state).
    """

    _model_module = traitlets.Unicode("livestack-nb").tag(sync=True)
    _view_module = traitlets.Unicode("livestack-nb").tag(sync=True)
    _model_module_version = traitlets.Unicode(f"^{VERSION}").tag(sync=True)
    _view_module_version = traitlets.Unicode(f"^{VERSION}").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    #: Seconds between two live messages of this widget.
    min_interval = 1.0 / PER_WIDGET_RATE
    #: Whether the state is looked at (statuses) rather than pushed by a stream:
    #: then a change is only seen by the pump's next look, so the snapshot is
    #: refreshed after every cell whether or not the pump has looked yet.
    _polled = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._send_lock = threading.RLock()
        self._dirty = False
        self._snap_dirty = False
        self._last_send = float("-inf")
        self._last_snap = float("-inf")
        self._snapshot_handle: Any = None
        self._shown_html: str | None = None
        self._cleanups: list[Callable[[], None]] = []
        self._disposed = False
        self.messages_sent = 0
        self.on_msg(self._on_front_end)
        register(self)
        pump.add(self)

    # -- for subclasses -------------------------------------------------------

    def _reset(self) -> KernelMessage:
        raise NotImplementedError

    def _delta(self) -> KernelMessage | None:
        raise NotImplementedError

    def _snapshot(self) -> tuple[str, str]:
        raise NotImplementedError

    def _changed(self) -> None:
        """Record that something is pending (any thread; cheap)."""
        self._dirty = True
        self._snap_dirty = True

    def _settle(self) -> None:
        """Catch up with what changed before a cell's snapshots are refreshed."""

    def after_cell(self) -> None:
        """A cell ran: catch up, and refresh the snapshot if anything changed
        (a polled widget's change is only seen by looking, so it always is)."""
        self._settle()
        if self._snap_dirty or self._polled:
            self.refresh_snapshot()

    def _on_dispose(self, cleanup: Callable[[], None]) -> None:
        self._cleanups.append(cleanup)

    # -- sending ----------------------------------------------------------------

    def _send_live(self, msg: KernelMessage) -> None:
        self.messages_sent += 1
        self.send(msg)

    def _on_front_end(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "hello" and not self._disposed:
            with self._send_lock:
                self._send_live(self._reset())

    def pump_due(self, now: float) -> bool:
        if self._dirty and now - self._last_send >= self.min_interval:
            return True
        return (
            self._snap_dirty
            and self._snapshot_handle is not None
            and now - self._last_snap >= 1.0 / SNAPSHOT_RATE
        )

    def pump_flush(self, now: float) -> int:
        sent = 0
        with self._send_lock:
            if self._disposed:
                return 0
            if self._dirty and now - self._last_send >= self.min_interval:
                self._dirty = False
                self._last_send = now
                msg = self._delta()
                if msg is not None:
                    self._send_live(msg)
                    sent += 1
        if (
            self._snap_dirty
            and self._snapshot_handle is not None
            and now - self._last_snap >= 1.0 / SNAPSHOT_RATE
        ):
            self._last_snap = now
            self.refresh_snapshot()
            sent += 1
        return sent

    # -- display ----------------------------------------------------------------

    def snapshot_html(self) -> str:
        """Escaped HTML of the latest state, as a saved notebook shows it."""
        return self._snapshot()[0]

    def refresh_snapshot(self) -> None:
        """Bring the displayed snapshot up to date (no-op before display)."""
        handle = self._snapshot_handle
        if handle is None:
            return
        self._snap_dirty = False
        html, text = self._snapshot()
        if html == self._shown_html:
            return
        self._shown_html = html
        handle.update({"text/html": html, "text/plain": text}, raw=True)

    def _ipython_display_(self) -> None:
        """Show the live view, then the static snapshot under its own display id.

        The snapshot is a separate output because nbconvert renders the widget
        view (not a ``text/html`` in the same bundle) and then has nothing
        to show without the front end.
        """
        from IPython.display import display

        bundle = dict(self._repr_mimebundle_())
        # What a reader without the live view sees in its place: nothing stale.
        bundle["text/plain"] = f"[live {type(self).__name__}: {self.title}; its latest state follows]"
        display(bundle, raw=True)  # type: ignore[no-untyped-call]
        html, text = self._snapshot()
        snapshot = {"text/html": html, "text/plain": text}
        self._snapshot_handle = display(snapshot, raw=True, display_id=True)  # type: ignore[no-untyped-call]
        self._shown_html = html
        self._snap_dirty = False

    # -- lifecycle --------------------------------------------------------------

    @property
    def disposed(self) -> bool:
        return self._disposed

    def dispose(self) -> None:
        """Unsubscribe from what this widget watches, stop its updates, close it."""
        if self._disposed:
            return
        self._disposed = True
        pump.remove(self)
        forget(self)
        for cleanup in self._cleanups:
            cleanup()
        self._cleanups.clear()
        # Widgets held in traits (a DOMWidget's ``layout``) have comms of their
        # own that closing this one leaves open: one leaked per widget per re-run.
        owned = [getattr(self, name, None) for name in self.trait_names()]
        self.close()
        for w in owned:
            if isinstance(w, ipywidgets.Widget) and w is not self:
                w.close()
