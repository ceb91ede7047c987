"""A form of ipywidgets controls built from a tag's type, and read back into a value.

Kept apart from :class:`~livestack_nb.widgets.JobInput` so the mapping from
types to controls (str -> text, int/float -> number, bool -> checkbox,
Literal/Enum -> dropdown, a nested model -> a fieldset) is one small table,
and the widget only feeds. Anything else (lists, dicts, unions) gets a text
field read as JSON, so every tag can be fed from the browser.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import ipywidgets
import traitlets
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

__all__ = ["Field", "Form", "build_form"]

#: The path of the one field of a scalar tag.
SCALAR = "value"

_MISSING: Any = object()


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``Optional[X]``, else ``(tp, False)``."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


@dataclass
class Field:
    """One control of the form: where its value goes, how it is read, its error line."""

    path: str
    tp: Any
    control: Any
    error: Any
    optional: bool = False
    json_text: bool = False

    def read(self) -> Any:
        """The control's value as the tag's type expects it (JSON text parsed)."""
        v = self.control.value
        if self.optional and v in ("", None):
            return None
        if self.json_text:
            try:
                return json.loads(v)
            except ValueError:
                return v  # let the tag's type say what is wrong with it
        return v

    def write(self, value: Any) -> None:
        """Show ``value`` in the control (what ``submit`` was given)."""
        if self.json_text and not isinstance(value, str):
            value = json.dumps(value, default=str)
        elif value is None and self.optional:
            value = "" if isinstance(self.control, ipywidgets.Text) else self.control.value
        self.control.value = value


@dataclass
class Form:
    """The controls of a tag's form, by dotted path (``crust.thickness``)."""

    tp: Any
    box: Any
    fields: dict[str, Field] = field(default_factory=dict)
    scalar: bool = False

    def value(self) -> Any:
        """The value the form holds now: a dict for a model (nested dicts inside)."""
        if self.scalar:
            return self.fields[SCALAR].read()
        out: dict[str, Any] = {}
        for path, f in self.fields.items():
            *parents, leaf = path.split(".")
            node = out
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = f.read()
        return out

    def set(self, values: dict[str, Any]) -> dict[str, str]:
        """Put ``values`` (nested dicts) into the controls; return what did not fit, by path."""
        wrong: dict[str, str] = {}
        for path, v in _flatten(values, self.fields):
            f = self.fields[path]
            try:
                f.write(v)
            except traitlets.TraitError:
                kind = getattr(f.tp, "__name__", str(f.tp))
                wrong[path] = f"field {path!r} expects {kind}; got {_short(v)}"
        return wrong


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:59] + "…"


def _flatten(values: dict[str, Any], fields: dict[str, Field], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in values.items():
        path = f"{prefix}{k}"
        if path in fields:
            out.append((path, v))
        elif isinstance(v, dict) and any(p.startswith(path + ".") for p in fields):
            out.extend(_flatten(v, fields, path + "."))
        elif isinstance(v, BaseModel) and any(p.startswith(path + ".") for p in fields):
            out.extend(_flatten(dict(v), fields, path + "."))
        else:
            known = ", ".join(repr(p) for p in fields) or "none"
            raise TypeError(f"the form has no field {path!r} (its fields: {known})")
    return out


def _control(tp: Any, label: str, default: Any) -> tuple[Any, bool]:
    """An ipywidgets control for ``tp``, and whether it holds JSON text."""
    has = default is not _MISSING and default is not None
    style = {"description_width": "initial"}
    if get_origin(tp) is Annotated:  # a strict or constrained type: the tag's check enforces it
        tp = get_args(tp)[0]
    if tp is bool:
        return ipywidgets.Checkbox(
            value=bool(default) if has else False, description=label, indent=False
        ), False
    if tp is int:
        return ipywidgets.IntText(value=default if has else 0, description=label, style=style), False
    if tp is float:
        return ipywidgets.FloatText(value=default if has else 0.0, description=label, style=style), False
    if tp is str:
        return ipywidgets.Text(value=default if has else "", description=label, style=style), False
    if get_origin(tp) is Literal:
        options = list(get_args(tp))
        opts = [(str(o), o) for o in options]
        return ipywidgets.Dropdown(
            options=opts, value=default if has else options[0], description=label, style=style
        ), False
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        members = list(tp)
        return ipywidgets.Dropdown(
            options=[(m.name, m) for m in members],
            value=default if has else members[0],
            description=label,
            style=style,
        ), False
    text = "" if not has else default if isinstance(default, str) else json.dumps(default, default=str)
    return ipywidgets.Text(value=text, description=label, placeholder="JSON", style=style), True


def _error_line() -> Any:
    err = ipywidgets.Label(value="", style={"text_color": "#c62828"})
    err.add_class("lsnb-field-error")
    return err


def _model_fields(model: type[BaseModel], form: Form, prefix: str) -> list[Any]:
    rows: list[Any] = []
    hints = typing.get_type_hints(model)
    for name, info in model.model_fields.items():
        tp, optional = _strip_optional(hints.get(name, info.annotation))
        path = prefix + name
        if _is_model(tp):
            legend = ipywidgets.HTML(value=f"<b>{name}</b>")  # a field name: an identifier, not data
            inner = _model_fields(tp, form, path + ".")
            fieldset = ipywidgets.VBox([legend, *inner])
            fieldset.add_class("lsnb-fieldset")
            fieldset.layout.border = "1px solid #ccc"
            fieldset.layout.padding = "4px 8px"
            fieldset.layout.margin = "4px 0"
            rows.append(fieldset)
            continue
        default = info.default if info.default is not PydanticUndefined else _MISSING
        if default is _MISSING and info.default_factory is not None:
            default = info.default_factory()  # type: ignore[call-arg]
        control, as_json = _control(tp, name, default)
        control.add_class(f"lsnb-field-{path.replace('.', '-')}")
        err = _error_line()
        form.fields[path] = Field(path, tp, control, err, optional=optional, json_text=as_json)
        rows.append(ipywidgets.HBox([control, err]))
    return rows


def build_form(tp: Any, label: str) -> Form:
    """The form for a tag of type ``tp`` (``label`` names a scalar tag's one field)."""
    inner, _ = _strip_optional(tp)
    if _is_model(inner):
        form = Form(tp, None)
        form.box = ipywidgets.VBox(_model_fields(inner, form, ""))
        return form
    form = Form(tp, None, scalar=True)
    if tp is typing.Any:
        inner = typing.Any
    control, as_json = _control(inner, label, _MISSING)
    control.add_class(f"lsnb-field-{SCALAR}")
    err = _error_line()
    form.fields[SCALAR] = Field(SCALAR, inner, control, err, optional=inner is not tp, json_text=as_json)
    form.box = ipywidgets.VBox([ipywidgets.HBox([control, err])])
    return form
