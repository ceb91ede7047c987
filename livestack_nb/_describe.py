"""Reading a processor's form (map, flat-map, processor) and types from its signature.

Kept apart from the spec so the worker definition (which checks a processor's
form) and the ``@job_spec`` decorator share it without importing each other.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from types import NoneType
from typing import Any

from pydantic import BaseModel

from ._types import _strip_optional, _yield_type
from .errors import LivestackError

__all__ = ["describe_processor"]


_PROCESSOR_HINT = "LiveJob"


def _is_job_param(param: inspect.Parameter, hint: Any) -> bool:
    if hint is not inspect.Parameter.empty and hint is not None:
        name = hint if isinstance(hint, str) else getattr(hint, "__name__", "")
        return str(name).split(".")[-1] == _PROCESSOR_HINT
    return param.name == "job"


def _resolve_one(fn: Callable[..., Any], hint: Any, localns: dict[str, Any] | None) -> Any:
    """Evaluate one string annotation where ``fn`` was defined; keep it if unknown."""
    if not isinstance(hint, str):
        return hint
    try:
        return eval(hint, dict(getattr(fn, "__globals__", {})), localns or {})
    except Exception:
        return hint


def _unresolved(spec_name: str, side: str, hint: Any, override: str) -> LivestackError:
    return LivestackError(
        f"spec {spec_name!r}: the {side} annotation {hint!r} names no type visible where "
        f"the processor was defined; import or define it at module level, or pass {override}="
    )


def describe_processor(fn: Callable[..., Any], localns: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Work out a processor's form and its tag and option types from its signature.

    ``localns`` are the names visible where the processor was defined: with
    postponed annotations (``from __future__ import annotations``) a type
    defined inside a function is only a string, and only that scope knows it.
    An annotation that still cannot be resolved is left as its string.

    Returns a dict with ``form`` (``"map"``, ``"flatmap"``, ``"processor"``),
    ``is_async``, ``input``, ``output``, ``options`` and ``takes_options``.
    """
    if not callable(fn):
        raise LivestackError(f"a processor must be callable, not {fn!r}")
    sig = inspect.signature(fn)
    local = dict(localns) if localns else None
    try:
        hints = typing.get_type_hints(fn, localns=local, include_extras=True)
    except Exception:
        hints = {k: p.annotation for k, p in sig.parameters.items()}
        if sig.return_annotation is not inspect.Signature.empty:
            hints["return"] = sig.return_annotation
        hints = {k: _resolve_one(fn, h, local) for k, h in hints.items()}
    params = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    name = getattr(fn, "__name__", repr(fn))
    is_asyncgen = inspect.isasyncgenfunction(fn)
    is_gen = inspect.isgeneratorfunction(fn) or is_asyncgen
    is_async = inspect.iscoroutinefunction(fn) or is_asyncgen
    info: dict[str, Any] = {
        "is_async": is_async,
        "takes_options": False,
        "takes_worker_params": False,
        "options": None,
    }
    if params and _is_job_param(params[0], hints.get(params[0].name, inspect.Parameter.empty)):
        info.update(form="processor", input=Any, output=Any)
        return info
    data = [p for p in params if p.name not in ("options", "worker_params")]
    info["takes_worker_params"] = any(p.name == "worker_params" for p in params)
    if not data:
        raise LivestackError(
            f"processor {name!r} takes no data parameter: a map takes one value, "
            "a processor takes 'job: LiveJob'"
        )
    if len(data) > 1 and any(p.default is inspect.Parameter.empty for p in data[1:]):
        raise LivestackError(
            f"processor {name!r} takes several data parameters {[p.name for p in data]}; "
            "use one value parameter (and 'options'), or 'job: LiveJob' for several inputs"
        )
    if any(p.name == "options" for p in params):
        info["takes_options"] = True
        opt = hints.get("options")
        if isinstance(opt, type) and issubclass(opt, BaseModel):
            info["options"] = opt
    ret = hints.get("return", Any)
    if is_gen:
        out = _yield_type(ret)
    else:
        out = _strip_optional(ret) if ret is not NoneType else Any
    info.update(
        form="flatmap" if is_gen else "map",
        input=hints.get(data[0].name, Any),
        output=out,
    )
    return info
