"""Recipes: what a job consumes, produces and is parameterised by.

A :class:`JobSpec` names typed input and output tags and an options model. It is
an interface first: it can exist without code (a worker in another process may
implement it), and ``@job_spec`` is the short way to declare one together with
its processor. Type adapters live here too, because every layer above checks
values against a spec's tags the same way.
"""

from __future__ import annotations

import inspect
import reprlib
import sys
import typing
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import NoneType, UnionType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Union, get_args, get_origin, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PydanticSchemaGenerationError,
    Strict,
    TypeAdapter,
    ValidationError,
    create_model,
)

from .errors import DataValidationError, LivestackError

if TYPE_CHECKING:
    import reactivex

    from .env import LiveEnv
    from .graph import Graph
    from .job import JobHandle
    from .worker import LiveWorkerDef

__all__ = ["DEFAULT", "InputRef", "JobSpec", "NoOptions", "Node", "OutputRef", "TagType", "job_spec"]

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


def _options_model(model: Any, where: str) -> type[BaseModel]:
    if model is None:
        return NoOptions
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    raise LivestackError(f"{where}: options must be a pydantic BaseModel subclass, not {model!r}")


def _ephemeral(spec: JobSpec, tags: bool | Iterable[str]) -> frozenset[str]:
    """The tags of ``spec`` whose streams are never written (see ``JobSpec(ephemeral=...)``),
    as ``"in:<tag>"`` and ``"out:<tag>"``."""
    known = {f"in:{t}" for t in spec.in_tags} | {f"out:{t}" for t in spec.out_tags}
    if tags is True:
        return frozenset(known)
    if tags is False:
        return frozenset()
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise LivestackError(
            f"spec {spec.name!r}: ephemeral must be True, False or a list of tag names, not {tags!r}"
        )
    out: set[str] = set()
    unknown: list[str] = []
    for name in tags:
        side, _, tag = str(name).rpartition(":")
        sides = [side] if side in ("in", "out") else ["in", "out"]
        found = {f"{s}:{tag if side in ('in', 'out') else name}" for s in sides} & known
        if not found:
            unknown.append(str(name))
        out |= found
    if unknown:
        raise LivestackError(
            f"spec {spec.name!r}: ephemeral names unknown tag(s) {sorted(unknown)}; its tags are "
            f"inputs {sorted(spec.in_tags)}, outputs {sorted(spec.out_tags)} "
            f"(a name marks that tag on both sides; 'in:<tag>' or 'out:<tag>' only one)"
        )
    return frozenset(out)


def _tags(spec_name: str, side: str, one: Any, many: Mapping[str, Any] | None) -> dict[str, TagType]:
    if many is not None:
        if not many:
            raise LivestackError(f"spec {spec_name!r}: {side}s= must name at least one tag")
        return {str(tag): TagType(tp) for tag, tp in many.items()}
    return {DEFAULT: TagType(one)}


class Node:
    """A spec placed in a flow under a label; ``spec.labeled(name)`` makes one.

    The same spec can appear several times in one flow under different labels
    (two ovens). A plain spec used in a flow is a node labelled with its name.
    """

    __slots__ = ("label", "spec")

    def __init__(self, spec: JobSpec, label: str) -> None:
        self.spec = spec
        self.label = label

    def input(self, tag: str = DEFAULT) -> InputRef:
        """This node's input ``tag``, for ``flow.connect`` and ``flow.expose``."""
        return InputRef(self, tag)

    def output(self, tag: str = DEFAULT) -> OutputRef:
        """This node's output ``tag``, for ``flow.connect`` and ``flow.expose``."""
        return OutputRef(self, tag)

    def __repr__(self) -> str:
        if self.label == self.spec.name:
            return self.label
        return f"{self.spec.name}[{self.label}]"


class _PortRef:
    """One tag of a node in a flow; ``side`` says which way it faces."""

    __slots__ = ("node", "tag")
    side: ClassVar[str]

    def __init__(self, node: Node, tag: str) -> None:
        self.node = node
        self.tag = tag

    def __repr__(self) -> str:
        return f"{self.node!r}.{self.side}({self.tag!r})"


class InputRef(_PortRef):
    """One input tag of a node in a flow."""

    __slots__ = ()
    side = "input"


class OutputRef(_PortRef):
    """One output tag of a node in a flow."""

    __slots__ = ()
    side = "output"


class JobSpec:
    """A recipe: a name, typed input and output tags, and an options model.

    Parameters
    ----------
    name:
        Unique name of the spec in its env; defining the same name again (a
        re-run cell) replaces the earlier definition.
    input, output:
        The type of the ``"default"`` input and output tag.
    inputs, outputs:
        Several tags at once, ``{tag: type}``; these replace ``input``/``output``.
    options:
        A pydantic model of the job options (default: no options).
    ephemeral:
        Tags whose streams are live and in memory only, never written to a
        durable vault: ``True`` for every tag of the spec, or tag names (a
        name marks the input and the output tag of that name;
        ``"in:<tag>"`` or ``"out:<tag>"`` only one side). For high-rate data
        nobody needs after a restart; see the README's "What is stored".

    Examples
    --------
    >>> spec = JobSpec("bake", input=int, output=str)
    >>> sorted(spec.inputs), sorted(spec.outputs)
    (['default'], ['default'])
    """

    declared: ClassVar[bool] = True
    """Whether a new spec of this class becomes the process's spec of its name (see :func:`declare`)."""

    def __init__(
        self,
        name: str,
        *,
        input: Any = Any,
        output: Any = Any,
        inputs: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        options: type[BaseModel] | None = None,
        ephemeral: bool | Iterable[str] = (),
    ) -> None:
        if not isinstance(name, str) or not name:
            raise LivestackError(f"a spec needs a non-empty name, not {name!r}")
        self.name = name
        self.in_tags: dict[str, TagType] = _tags(name, "input", input, inputs)
        self.out_tags: dict[str, TagType] = _tags(name, "output", output, outputs)
        self.options_model: type[BaseModel] = _options_model(options, f"spec {name!r}")
        self.worker_def: LiveWorkerDef | None = None
        self.ephemeral: frozenset[str] = _ephemeral(self, ephemeral)
        if self.declared:
            declare(self)

    @property
    def inputs(self) -> dict[str, Any]:
        """The input tags and their types, ``{tag: type}``."""
        return {t: tp.tp for t, tp in self.in_tags.items()}

    @property
    def outputs(self) -> dict[str, Any]:
        """The output tags and their types, ``{tag: type}``."""
        return {t: tp.tp for t, tp in self.out_tags.items()}

    # -- type checks -------------------------------------------------------

    def validate_options(self, options: Any) -> BaseModel:
        """Return ``options`` as this spec's options model (``None`` -> defaults)."""
        model = self.options_model
        if isinstance(options, model):
            return options
        try:
            return model.model_validate({} if options is None else options)
        except ValidationError as e:
            raise validation_error(
                e, options, spec=self.name, tag="options", side="options", type_name=model.__name__
            ) from None
        except Exception as e:  # a user validator raising what pydantic does not wrap
            raise validator_raised(
                e, options, spec=self.name, tag="options", side="options", type_name=model.__name__
            ) from e

    def _tag(self, side: str, tag: str) -> TagType:
        tags = self.in_tags if side == "input" else self.out_tags
        try:
            return tags[tag]
        except KeyError:
            raise LivestackError(
                f"spec {self.name!r} has no {side} tag {tag!r}; its {side} tags are {sorted(tags)}"
            ) from None

    def sole_tag(self, side: str, what: str) -> str:
        """The tag a call that names none uses: ``"default"``, else the only one there is.

        Raises :class:`LivestackError` naming the tags when there are several
        and none is ``"default"``.
        """
        tags = self.in_tags if side == "input" else self.out_tags
        if DEFAULT in tags:
            return DEFAULT
        if len(tags) == 1:
            return next(iter(tags))
        raise LivestackError(
            f"spec {self.name!r}: {what} cannot choose among its {side} tags {sorted(tags)}, "
            "none of which is 'default': name the tag"
        )

    # -- flow wiring -------------------------------------------------------

    def input(self, tag: str = DEFAULT) -> InputRef:
        """The input ``tag`` of this spec, for ``flow.connect``/``flow.expose``."""
        return Node(self, self.name).input(tag)

    def output(self, tag: str = DEFAULT) -> OutputRef:
        """The output ``tag`` of this spec, for ``flow.connect``/``flow.expose``."""
        return Node(self, self.name).output(tag)

    def labeled(self, label: str) -> Node:
        """This spec placed in a flow under ``label`` (the same spec twice: two labels)."""
        if not isinstance(label, str) or not label:
            raise LivestackError(f"a label must be a non-empty string, not {label!r}")
        return Node(self, label)

    # -- workers -----------------------------------------------------------

    def define_worker(
        self,
        processor: Callable[..., Any],
        *,
        concurrency: int = 8,
        init: Callable[..., Any] | None = None,
        retries: int = 0,
        retry_backoff: float = 0.05,
        on_error: str = "fail",
        worker_params: Mapping[str, Any] | BaseModel | None = None,
    ) -> LiveWorkerDef:
        """Define how this spec is cooked: its processor and its worker's policy.

        ``processor`` takes the form ``@job_spec`` documents: a map function, a
        generator (flat-map), or a function of ``job: LiveJob``.
        ``worker_params`` are the worker's own parameters (Livestack's
        ``instanceParams``: a model path, a GPU, a region), the same for every
        job it runs and distinct from each job's options: a processor reads
        them as ``job.worker_params``, a map or flat-map by taking a parameter
        named ``worker_params``; a worker process adds some with ``--param
        key=value``.
        """
        from .worker import LiveWorkerDef

        self.worker_def = LiveWorkerDef(
            self,
            processor,
            concurrency=concurrency,
            init=init,
            retries=retries,
            retry_backoff=retry_backoff,
            on_error=on_error,
            worker_params=worker_params,
        )
        return self.worker_def

    def derive(self, name: str, *, options: Mapping[str, Any] | None = None) -> JobSpec:
        """A new spec from this one (Livestack's ``derive``): the same tags and worker
        under another ``name``, with ``options`` as new defaults of its job options.

        The options model of the new spec is a subclass of this one's (a
        processor annotated with the old model still accepts it); options
        given at ``start`` still override these defaults.

        Raises
        ------
        LivestackError
            The name is taken by this spec, or a default names no option or
            does not fit its type (the message names the spec and the field).
        """
        if not isinstance(name, str) or not name or name == self.name:
            raise LivestackError(f"spec {self.name!r}: derive() needs a new, non-empty name, not {name!r}")
        model = self.options_model
        if options:
            fields = model.model_fields
            unknown = sorted(str(k) for k in options if k not in fields)
            if unknown:
                raise LivestackError(
                    f"spec {self.name!r}: derive({name!r}) got defaults for unknown option(s) {unknown}; "
                    f"its options are {sorted(fields)}"
                )
            model = create_model(  # type: ignore[call-overload]
                model.__name__,
                __base__=model,
                __module__=model.__module__,
                **{
                    k: (fields[k].annotation, Field(default=v, validate_default=True))
                    for k, v in options.items()
                },
            )
            try:
                model.model_validate({})
            except ValidationError as e:
                raise validation_error(
                    e, dict(options), spec=name, tag="options", side="options", type_name=model.__name__
                ) from None
        new = JobSpec(
            name, inputs=self.inputs, outputs=self.outputs, options=model, ephemeral=sorted(self.ephemeral)
        )
        d = self.worker_def
        if d is not None:
            new.define_worker(
                d.processor,
                concurrency=d.concurrency,
                init=d.init,
                retries=d.retries,
                retry_backoff=d.retry_backoff,
                on_error=d.on_error,
                worker_params=d.worker_params,
            )
        new.__doc__ = self.__doc__
        from .env import register_spec

        register_spec(new)
        return new

    # -- running -----------------------------------------------------------

    def start(
        self,
        options: Any = None,
        *,
        env: LiveEnv | None = None,
        job_id: str | None = None,
        step: bool = False,
    ) -> JobHandle:
        """Start a job of this spec and return its handle at once.

        The job runs in the background (worker threads or the env's event
        loop); feed it with ``handle.feed``, end it with ``handle.end()``.
        ``job_id`` names the job (Livestack's ``enqueueJob({jobId})``), so
        another cell finds it with ``env.job(job_id)``; an id already taken in
        the env or its vault is refused with a :class:`LivestackError`.
        ``step=True`` starts it in step mode: every hop of a datapoint waits
        until ``handle.step()`` releases it (see :mod:`livestack_nb.step`).
        """
        from .env import current_env

        if step:
            from .step import start_stepped

            return start_stepped(self, options, env or current_env(), job_id)
        return (env or current_env()).start(self, options, job_id=job_id)

    def run(
        self,
        values: Iterable[Any] | Mapping[str, Iterable[Any]] = (),
        options: Any = None,
        *,
        output: str | None = None,
        timeout: float | None = None,
        env: LiveEnv | None = None,
        job_id: str | None = None,
    ) -> list[Any]:
        """One-shot (Livestack's ``enqueueAndGetResult``): feed, end, wait, return the outputs.

        ``values`` go to the spec's one input tag (``"default"``, or the only
        one it has); ``{"dough": [...], "sauce": [...]}`` feeds several tags.
        The values returned are every one of the output tag (``"default"``,
        the only one, or ``output=``), also those emitted before any input
        was read. A choice that is ambiguous raises :class:`LivestackError`
        naming the tags.
        """
        from .env import current_env

        return (env or current_env()).run(
            self, values, options, output=output, timeout=timeout, job_id=job_id
        )

    def op(self, **options: Any) -> Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]]:
        """This spec as a reactivex operator: ``source.pipe(spec.op(spice=2))``.

        Each subscription starts one job; items are fed in order, completion
        ends the input, a failure arrives as ``on_error``.
        """
        from .rx_operator import spec_operator

        return spec_operator(self, options)

    def run_graph(self, job_id: str) -> Graph | None:
        """The graph a job of this spec shows when it runs outside a flow (none:
        one node); a spec that runs others inside (parallel attempts) draws them."""
        return None

    def __repr__(self) -> str:
        ins = ", ".join(f"{t}: {tp.name}" for t, tp in self.in_tags.items())
        outs = ", ".join(f"{t}: {tp.name}" for t, tp in self.out_tags.items())
        return f"<JobSpec {self.name!r} in({ins}) out({outs})>"


# -- specs known by name -------------------------------------------------------

_declared: dict[str, list[weakref.ref[JobSpec]]] = {}


def declare(spec: JobSpec) -> None:
    """Make ``spec`` the process's spec of its name (the newest definition still alive wins).

    Why: a job read back from a vault names its spec; once the module that
    defines the spec is imported, every env of the process reads that job's
    values as the spec's types, not only the env that was current when the
    module ran (see ``LiveEnv.job``). Held weakly: a spec nothing else holds
    is forgotten, and the definition before it is found again.
    """
    refs = _declared.setdefault(spec.name, [])
    refs[:] = [r for r in refs if r() is not None and r() is not spec]
    refs.append(weakref.ref(spec))


def declared_spec(name: str) -> JobSpec | None:
    """The spec of that name defined last in this process and still alive, if any."""
    for ref in reversed(_declared.get(name, ())):
        spec = ref()
        if spec is not None:
            return spec
    return None


# -- the decorator -------------------------------------------------------------

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


@overload
def job_spec(fn: Callable[..., Any], /) -> JobSpec: ...


@overload
def job_spec(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
    input: Any = None,
    output: Any = None,
    options: type[BaseModel] | None = None,
    concurrency: int = 8,
    retries: int = 0,
    retry_backoff: float = 0.05,
    init: Callable[..., Any] | None = None,
    on_error: str = "fail",
    worker_params: Mapping[str, Any] | BaseModel | None = None,
    ephemeral: bool | Iterable[str] = (),
) -> Callable[[Callable[..., Any]], JobSpec]: ...


def job_spec(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
    input: Any = None,
    output: Any = None,
    options: type[BaseModel] | None = None,
    concurrency: int = 8,
    retries: int = 0,
    retry_backoff: float = 0.05,
    init: Callable[..., Any] | None = None,
    on_error: str = "fail",
    worker_params: Mapping[str, Any] | BaseModel | None = None,
    ephemeral: bool | Iterable[str] = (),
) -> JobSpec | Callable[[Callable[..., Any]], JobSpec]:
    """Declare a spec and its processor in one go.

    The form is read from the function:

    - **map**: one value parameter (its annotation is the input type), an
      optional ``options`` parameter (a pydantic model), and a return
      annotation (the output type). ``None`` returned emits nothing.
    - **flat-map**: a generator or async generator; every yielded value is emitted.
    - **processor**: a first parameter ``job: LiveJob`` for several tags, state
      or full control. Sync processors run in a worker thread, ``async def``
      ones on the env's event loop.

    Parameters
    ----------
    name:
        Spec name (default: the function's name).
    inputs, outputs:
        ``{tag: type}`` for specs with several tags.
    input, output, options:
        Override the types read from the signature.
    concurrency:
        How many jobs of this spec a worker runs at once.
    retries, retry_backoff:
        A raising processor is retried this many times per datapoint, waiting
        ``retry_backoff * 2**attempt`` seconds in between.
    init:
        Called once per worker before its first job (``init(worker)`` or ``init()``).
    on_error:
        ``"fail"`` (the job fails after the retries), ``"skip"`` (the
        datapoint is logged, counted and dropped, and the job goes on) or
        ``"dead_letter"`` (the datapoint, its error and traceback go to the
        job's ``errors`` stream as an ``ls.DeadLetter``, and the job goes on;
        see :mod:`livestack_nb.dead_letter`).
    ephemeral:
        ``True``, or names of tags, whose streams a durable vault never
        writes (see :class:`JobSpec`).
    worker_params:
        The worker's own parameters, distinct from job options (see
        :meth:`JobSpec.define_worker`).
    """
    # The defining scope: types local to a function are only strings under
    # postponed annotations, and only this frame can resolve them.
    caller = sys._getframe(1).f_locals

    def make(f: Callable[..., Any]) -> JobSpec:
        info = describe_processor(f, caller)
        spec_name = name or getattr(f, "__name__", None)
        if not spec_name or spec_name == "<lambda>":
            raise LivestackError("a spec made from a lambda needs name=")
        if input is None and inputs is None and isinstance(info.get("input"), str):
            raise _unresolved(spec_name, "input", info["input"], "input")
        if output is None and outputs is None and isinstance(info.get("output"), str):
            raise _unresolved(spec_name, "output", info["output"], "output")
        opts = options or info["options"]
        spec = JobSpec(
            spec_name,
            input=input if input is not None else info["input"],
            output=output if output is not None else info["output"],
            inputs=inputs,
            outputs=outputs,
            options=opts,
            ephemeral=ephemeral,
        )
        if info["form"] != "processor" and (
            len(spec.in_tags) != 1 or DEFAULT not in spec.in_tags or DEFAULT not in spec.out_tags
        ):
            raise LivestackError(
                f"spec {spec_name!r}: a map or flat-map reads the 'default' input and writes "
                "the 'default' output; use a processor (job: LiveJob) for other tags"
            )
        spec.define_worker(
            f,
            concurrency=concurrency,
            init=init,
            retries=retries,
            retry_backoff=retry_backoff,
            on_error=on_error,
            worker_params=worker_params,
        )
        spec.__doc__ = f.__doc__
        from .env import register_spec

        register_spec(spec)
        return spec

    if fn is not None:
        return make(fn)
    return make


def as_list(values: Iterable[Any]) -> list[Any]:
    """A list of ``values`` without copying when it already is one."""
    return values if isinstance(values, list) else list(values)
