"""Feeding a job from the browser: a form built from a tag's type, and bound controls.

Livestack's ``useInput`` / ``useJobBinding`` in a notebook. :class:`JobInput`
composes plain ipywidgets controls (no front end of its own), so it works
wherever ipywidgets do. Everything goes through the job's public
``job.input(tag).feed``: a value that does not fit is refused before anything
is sent, and its :class:`~livestack_nb.DataValidationError` is shown next to
the field it names.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets

from ..errors import DataValidationError, LivestackError
from ..job import InputFeeder, JobHandle
from ._form import SCALAR, Form, build_form

__all__ = ["Binding", "JobInput", "bind"]


def _track(obj: Any) -> None:
    """Dispose ``obj`` when the cell that made it runs again."""
    from ._scope import scope

    scope.track(obj)


class JobInput(ipywidgets.VBox):  # type: ignore[misc]
    """A form that feeds one input tag of a job, with Feed and End buttons.

    The form follows the tag's type: a pydantic model's fields become
    controls (str -> text, int/float -> number, bool -> checkbox,
    ``Literal``/``Enum`` -> dropdown, a nested model -> a fieldset), a scalar
    tag one control named ``value``; other types take JSON text.

    Parameters
    ----------
    job:
        The job's handle (``spec.start()`` or a flow's ``flow.start()``).
    tag:
        The input tag to feed.

    Examples
    --------
    >>> form = JobInput(job)                       # doctest: +SKIP
    >>> form.submit(pizza="funghi", size=10)       # what clicking Feed does  # doctest: +SKIP
    """

    def __init__(self, job: JobHandle, tag: str = "default", *, title: str | None = None) -> None:
        if not isinstance(job, JobHandle):
            raise TypeError(
                f"JobInput expects a JobHandle (what spec.start() returns), not {type(job).__name__}"
            )
        self.job = job
        self.tag = tag
        self.feeder: InputFeeder = job.input(tag)  # raises naming the tags that exist
        self.form: Form = build_form(job.spec.inputs[tag], SCALAR)
        #: How many values this form fed.
        self.fed = 0
        #: The error of the last Feed, by field path (``""``: the whole value), or empty.
        self.errors: dict[str, str] = {}
        self.title = title or f"feed {job.spec.name} · {tag}"
        self._head = ipywidgets.HTML(value=f"<b>{html.escape(self.title)}</b>")
        self.feed_button = ipywidgets.Button(description="Feed", button_style="primary", icon="play")
        self.end_button = ipywidgets.Button(description="End", icon="stop")
        self.feed_button.add_class("lsnb-feed")
        self.end_button.add_class("lsnb-end")
        self.status = ipywidgets.Label(value="")
        self.status.add_class("lsnb-input-status")
        self.feed_button.on_click(lambda _b: self.submit())
        self.end_button.on_click(lambda _b: self.end())
        buttons = ipywidgets.HBox([self.feed_button, self.end_button, self.status])
        super().__init__([self._head, self.form.box, buttons])
        self.add_class("lsnb-input")
        # The static snapshot that follows is hidden next to a shown form (see style/index.css).
        self.add_class("lsnb-live")
        self._snapshot_handle: Any = None
        _track(self)

    # -- what the buttons do ------------------------------------------------------

    def submit(self, **fields: Any) -> bool:
        """Put ``fields`` into the form (if given), then do what clicking Feed does.

        Returns whether a value was fed. A value that does not fit feeds
        nothing and shows the error next to the field it names (see
        :attr:`errors`); so does a job whose input has ended.

        Raises
        ------
        TypeError
            A name in ``fields`` is not a field of the form.
        """
        self._clear_errors()
        if fields:
            wrong = self.form.set(fields)
            for path, message in wrong.items():  # a control cannot even hold it
                self._show_error(path, f"{message} (nothing fed)")
            if wrong:
                return False
        try:
            self.feeder.feed(self.form.value())
        except DataValidationError as e:
            self._show_error(e.field, str(e))
            return False
        except LivestackError as e:  # the input has ended, the job is gone
            self.errors[""] = str(e)
            self.status.value = f"not fed: {e}"
            return False
        self.fed += 1
        self.status.value = f"fed {self.fed}"
        if self._snapshot_handle is not None:
            self._snapshot_handle.update(
                {"text/html": self.snapshot_html(), "text/plain": self._text()}, raw=True
            )
        return True

    def end(self) -> None:
        """End the tag (what clicking End does); the form then feeds nothing more."""
        self.feeder.end()
        self.feed_button.disabled = True
        self.end_button.disabled = True
        self.status.value = f"fed {self.fed} · ended"

    # -- errors -----------------------------------------------------------------------

    def _clear_errors(self) -> None:
        self.errors = {}
        for f in self.form.fields.values():
            f.error.value = ""
            f.error.tooltip = None

    def _show_error(self, path: str | None, message: str) -> None:
        target = self._field_for(path)
        key = target.path if target is not None else ""
        self.errors[key] = message
        if target is not None:
            target.error.value = _short(message, path)
            target.error.tooltip = message
            self.status.value = f"not fed: {key}"
        else:
            self.status.value = f"not fed: {message}"

    def _field_for(self, path: str | None) -> Any:
        fields = self.form.fields
        if self.form.scalar:
            return fields[SCALAR]
        while path:
            if path in fields:
                return fields[path]
            path = path.rpartition(".")[0]  # a list item's error goes to the list's field
        return None

    # -- display and lifetime ------------------------------------------------------------

    def snapshot_html(self) -> str:
        """Escaped HTML of the form, as a saved notebook shows it."""
        rows = "".join(
            f"<li>{html.escape(p)}: {html.escape(type(f.control).__name__)}</li>"
            for p, f in self.form.fields.items()
        )
        return (
            f'<div class="lsnb-snapshot"><b>{html.escape(self.title)}</b> · fed {self.fed}'
            f"<ul>{rows}</ul></div>"
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        bundle = dict(self._repr_mimebundle_())
        bundle["text/plain"] = f"[JobInput: {self.title}]"
        display(bundle, raw=True)  # type: ignore[no-untyped-call]
        snapshot = {"text/html": self.snapshot_html(), "text/plain": self._text()}
        self._snapshot_handle = display(snapshot, raw=True, display_id=True)  # type: ignore[no-untyped-call]

    def _text(self) -> str:
        return f"{self.title}: fed {self.fed}"

    def dispose(self) -> None:
        """Close the form and its controls (when its cell runs again)."""
        for w in [*self.form.fields.values()]:
            w.control.close()
            w.error.close()
        for w in (self.feed_button, self.end_button, self.status, self._head):
            w.close()
        self.close()

    def __repr__(self) -> str:
        return f"<JobInput {self.job.job_id} {self.tag!r}>"


def _short(message: str, path: str | None) -> str:
    """What fits next to a field: pydantic's words, without the spec and the value."""
    if path:
        message = message.split(f"field {path!r}: ", 1)[-1]
    return message.rsplit("; got ", 1)[0]


class Binding:
    """A control feeding a job's input on each change; :meth:`dispose` unbinds it.

    Attributes
    ----------
    fed:
        How many values were fed.
    error:
        The last error a change raised (nothing is fed for that change), or ``None``.
    """

    def __init__(
        self, control: Any, feeder: InputFeeder, transform: Callable[[Any], Any] | None, names: str
    ) -> None:
        self.control = control
        self.feeder = feeder
        self.transform = transform
        self.names = names
        self.fed = 0
        self.error: Exception | None = None
        self.disposed = False
        control.observe(self._changed, names=names)
        if hasattr(control, "add_class"):
            control.add_class("lsnb-live")  # its snapshot is hidden next to it
        _track(self)

    def _changed(self, change: dict[str, Any]) -> None:
        try:
            value = change["new"] if self.transform is None else self.transform(change["new"])
            self.feeder.feed(value)
        except (LivestackError, ValueError, TypeError) as e:
            self.error = e
            if hasattr(self.control, "has_trait") and self.control.has_trait("tooltip"):
                self.control.tooltip = str(e)
            return
        self.error = None
        self.fed += 1

    def snapshot_html(self) -> str:
        """Escaped HTML of the binding, as a saved notebook shows it."""
        value = html.escape(str(getattr(self.control, self.names, "")))
        where = html.escape(f"{self.feeder.tag!r} ({self.feeder.stream.stream_id})")
        return (
            f'<div class="lsnb-snapshot">{html.escape(type(self.control).__name__)} = {value}'
            f" · feeds input {where} · fed {self.fed}</div>"
        )

    def _ipython_display_(self) -> None:
        """Show the control, then a static snapshot of it for readers without widgets."""
        from IPython.display import display

        bundle = dict(self.control._repr_mimebundle_())
        bundle["text/plain"] = repr(self)
        display(bundle, raw=True)  # type: ignore[no-untyped-call]
        display({"text/html": self.snapshot_html(), "text/plain": repr(self)}, raw=True)  # type: ignore[no-untyped-call]

    def dispose(self) -> None:
        """Stop feeding (the control and the job are left alone)."""
        if not self.disposed:
            self.disposed = True
            self.control.unobserve(self._changed, names=self.names)

    def __repr__(self) -> str:
        return f"<Binding {type(self.control).__name__} -> {self.feeder.tag!r} fed {self.fed}>"


def bind(
    control: Any, input: InputFeeder, transform: Callable[[Any], Any] | None = None, *, names: str = "value"
) -> Binding:
    """Feed ``input`` a value each time ``control`` changes (a slider steering an oven).

    Parameters
    ----------
    control:
        Any ipywidgets control (or traitlets object) with a ``value`` trait.
    input:
        Where to feed: ``job.input(tag)``.
    transform:
        Applied to the new value before it is fed.
    names:
        The trait watched (default ``"value"``).

    A value that does not fit the tag is not fed; the error is kept in
    ``binding.error`` and shown as the control's tooltip. The binding ends
    when the cell that made it runs again, or with ``binding.dispose()``.
    """
    if not isinstance(input, InputFeeder):
        raise TypeError(f"bind() feeds job.input(tag), not {type(input).__name__}")
    if not hasattr(control, "observe") or not control.has_trait(names):
        raise TypeError(f"bind() needs a control with a {names!r} trait, not {type(control).__name__}")
    return Binding(control, input, transform, names)
