"""Tag types: how a value is checked against a spec's tag, and which types may feed which.

Why a module of its own, below the spec: streams, dead letters and the
operator check values against a tag's type without needing the spec itself,
and every layer above checks them the same way.
"""

from __future__ import annotations

import inspect
import reprlib
from collections.abc import Iterable
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    PydanticSchemaGenerationError,
    Strict,
    TypeAdapter,
    ValidationError,
)

from .errors import DataValidationError

__all__ = ["DEFAULT", "NoOptions", "TagType", "as_list", "can_feed", "validation_error", "validator_raised"]

DEFAULT = "default"


class NoOptions(BaseModel):
    """The options model of a spec that takes none; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


def _unannotated(tp: Any) -> Any:
    """``X`` for ``Annotated[X, ...]`` (a strict or constrained ``X``), else ``tp``."""
    return get_args(tp)[0] if get_origin(tp) is Annotated else tp


def _strict_class(tp: Any) -> type | None:
    """``X`` for a strict plain class (``StrictBool`` is ``Annotated[bool, Strict()]``).

    An instance of ``X`` is always valid for it, so the ``isinstance`` fast path
    holds; any other metadata (``Field(gt=0)``) needs pydantic for every value.
    """
    if get_origin(tp) is not Annotated:
        return None
    base, *meta = get_args(tp)
    if not meta or not all(isinstance(m, Strict) and m.strict for m in meta):
        return None
    return base if isinstance(base, type) and get_origin(base) is None else None


def _type_name(tp: Any) -> str:
    if tp is Any:
        return "Any"
    strict = _strict_class(tp)
    if strict is not None:
        return f"strict {strict.__name__}"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


class TagType:
    """The type of one tag, with a fast path for values that already fit.

    ``check`` costs an ``isinstance`` when the value already is the tag's
    class (the hot path); anything else goes through a pydantic ``TypeAdapter``
    (dicts become models, ``"12"`` becomes ``12`` where pydantic allows it).
    """

    __slots__ = ("_adapter", "cls", "tp")

    def __init__(self, tp: Any) -> None:
        if tp is None or tp is inspect.Parameter.empty or tp is object:
            tp = Any
        self.tp = tp
        plain = tp is not Any and isinstance(tp, type) and get_origin(tp) is None
        self.cls: type | None = tp if plain else _strict_class(tp)
        self._adapter: TypeAdapter[Any] | None = None

    @property
    def name(self) -> str:
        return _type_name(self.tp)

    @property
    def is_any(self) -> bool:
        return self.tp is Any

    def _validate(self, value: Any) -> Any:
        if self._adapter is None:
            self._adapter = _adapter(self.tp)
        return self._adapter.validate_python(value)

    def check(self, value: Any, *, spec: str, tag: str, side: str) -> Any:
        """Return ``value`` coerced to this type, or raise DataValidationError."""
        cls = self.cls
        if cls is not None and isinstance(value, cls) and not (cls is int and type(value) is bool):
            return value
        if self.tp is Any:
            return value
        try:
            return self._validate(value)
        except ValidationError as e:
            raise validation_error(e, value, spec=spec, tag=tag, side=side, type_name=self.name) from None
        except Exception as e:  # a user validator raising what pydantic does not wrap
            raise validator_raised(e, value, spec=spec, tag=tag, side=side, type_name=self.name) from e

    def check_many(self, values: list[Any], *, spec: str, tag: str, side: str) -> list[Any]:
        """Check a batch; returns the same list when every value already fits."""
        if self.tp is Any:
            return values
        cls = self.cls
        if cls is not None and set(map(type, values)) == {cls}:  # one C-level pass
            return values
        return [self.check(v, spec=spec, tag=tag, side=side) for v in values]

    def __repr__(self) -> str:
        return f"TagType({self.name})"


def _adapter(tp: Any) -> TypeAdapter[Any]:
    """A pydantic adapter for ``tp``; classes pydantic has no schema for (a
    ``pandas.DataFrame``, an ndarray) are checked with ``isinstance``, also
    inside a union or a container."""
    try:
        return TypeAdapter(tp)
    except PydanticSchemaGenerationError:
        return TypeAdapter(tp, config=ConfigDict(arbitrary_types_allowed=True))


def validation_error(
    e: ValidationError, value: Any, *, spec: str, tag: str, side: str, type_name: str
) -> DataValidationError:
    """Turn a pydantic error into one that says which spec, tag and field."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    field = loc or None
    where = f"field {field!r}: " if field else ""
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    got = _shown(value)
    msg = f"spec {spec!r}, {side} tag {tag!r} expects {type_name}: {where}{err['msg']}{more}; got {got}"
    return DataValidationError(msg, spec=spec, tag=tag, field=field)


def validator_raised(
    e: Exception, value: Any, *, spec: str, tag: str, side: str, type_name: str
) -> DataValidationError:
    """A validator of ``type_name`` raised ``e`` itself (not a ``ValueError``): say where."""
    msg = (
        f"spec {spec!r}, {side} tag {tag!r} expects {type_name}: its validation raised "
        f"{type(e).__name__}: {e}; got {_shown(value)}"
    )
    return DataValidationError(msg, spec=spec, tag=tag, field=None)


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80


def _shown(value: Any) -> str:
    """A short repr of ``value``, cheap even for a huge or deeply nested one, never raising."""
    try:
        shown = _repr.repr(value)
    except Exception:
        return f"a {type(value).__name__} whose repr() raised"
    return shown if len(shown) <= 80 else shown[:77] + "..."


def can_feed(out_tp: TagType, in_tp: TagType) -> bool:
    """Whether values of ``out_tp`` can feed an input of ``in_tp`` without a transform.

    The rule (checked when a flow is wired):

    - the same type, a subclass, or ``Any`` on either side;
    - a pydantic model only from the same model or a subclass: two models
      with the same field names are different types (pydantic itself refuses
      an instance of one for the other), so a structural fit is not accepted;
    - an untyped ``dict`` into a model, and a bare container (``list``) into a
      parametrised one (``list[int]``) or back: their contents are only known
      per value, and are checked per value (``DataValidationError``);
    - ``int`` into ``float`` (pydantic converts it exactly), nothing else lossy
      (``str`` into ``int``);
    - a union output only if every member fits (``Optional[X]`` does not feed
      ``X``: ``None`` would not fit), a union input if the output fits any member;
    - containers of the same kind if their parameters fit (``list[Dough]`` does
      not feed ``list[Order]``); any other class (a ``pandas.DataFrame``) only by
      the class rule.
    """
    a, b = out_tp.tp, in_tp.tp
    if a is Any or b is Any or a == b:
        return True
    if get_origin(a) is Annotated or get_origin(b) is Annotated:
        # strictness and constraints are checked per value; the wiring rule is the class's
        return can_feed(TagType(_unannotated(a)), TagType(_unannotated(b)))
    b_opts = _union_members(b)
    if b_opts is not None:
        return any(can_feed(out_tp, TagType(m)) for m in b_opts)
    a_opts = _union_members(a)
    if a_opts is not None:
        return all(can_feed(TagType(m), in_tp) for m in a_opts)
    ao, bo = get_origin(a), get_origin(b)
    if isinstance(a, type) and isinstance(b, type) and ao is None and bo is None:
        if issubclass(a, b):
            return True
        if b is float and a is int:
            return True
        return issubclass(b, BaseModel) and a is dict
    if isinstance(b, type) and bo is None and issubclass(b, BaseModel):
        return ao is dict  # dict[str, ...] into a model: checked per value
    if ao is not None and ao == bo:
        return all(can_feed(TagType(x), TagType(y)) for x, y in zip(get_args(a), get_args(b), strict=False))
    return (ao is None and a is bo) or (bo is None and b is ao)  # list into list[int], and back


def _union_members(tp: Any) -> tuple[Any, ...] | None:
    if get_origin(tp) in (Union, UnionType):
        return get_args(tp)
    return None


def _strip_optional(tp: Any) -> Any:
    members = _union_members(tp)
    if members is not None and NoneType in members:
        rest = tuple(m for m in members if m is not NoneType)
        return rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007
    return tp


def _yield_type(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin is not None and origin.__name__ in (
        "Iterator",
        "Iterable",
        "Generator",
        "AsyncIterator",
        "AsyncIterable",
        "AsyncGenerator",
    ):
        args = get_args(tp)
        return args[0] if args else Any
    return Any


def as_list(values: Iterable[Any]) -> list[Any]:
    """A list of ``values`` without copying when it already is one."""
    return values if isinstance(values, list) else list(values)
