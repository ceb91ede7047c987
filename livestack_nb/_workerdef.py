"""A worker definition: a spec's processor and the policy its workers follow.

It sits with the spec (``spec.worker_def``, made by ``spec.define_worker``)
rather than with the worker that runs it: it is data about the recipe
(concurrency, retries, the error policy, worker parameters), checked when it
is written, and a spec must be able to hold one without importing the
machinery that runs jobs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ._describe import describe_processor
from ._types import DEFAULT
from .dead_letter import ERRORS, check_on_error
from .errors import LivestackError

if TYPE_CHECKING:
    from .spec import JobSpec

__all__ = ["LiveWorkerDef"]


class LiveWorkerDef:
    """How a spec is cooked: its processor and its worker's policy.

    Made by ``@job_spec`` or ``spec.define_worker(...)``; see there for the
    parameters. A separate worker process can define the worker of a spec
    that a notebook only declares.
    """

    def __init__(
        self,
        spec: JobSpec,
        processor: Callable[..., Any],
        *,
        concurrency: int = 8,
        init: Callable[..., Any] | None = None,
        retries: int = 0,
        retry_backoff: float = 0.05,
        on_error: str = "fail",
        worker_params: Mapping[str, Any] | BaseModel | None = None,
    ) -> None:
        where = f"worker of spec {spec.name!r}"
        if not isinstance(concurrency, int) or concurrency < 1:
            raise LivestackError(f"{where}: concurrency must be an int >= 1, not {concurrency!r}")
        if not isinstance(retries, int) or retries < 0:
            raise LivestackError(f"{where}: retries must be an int >= 0, not {retries!r}")
        if retry_backoff < 0:
            raise LivestackError(f"{where}: retry_backoff must be >= 0, not {retry_backoff!r}")
        check_on_error(on_error, where)
        if on_error == "dead_letter" and ERRORS in spec.out_tags:
            raise LivestackError(
                f"{where}: on_error='dead_letter' sends failing values to the output tag {ERRORS!r}, "
                f"but the spec has an output tag of that name itself; rename it"
            )
        if init is not None and not callable(init):
            raise LivestackError(f"{where}: init must be callable, not {init!r}")
        if worker_params is not None and not isinstance(worker_params, (Mapping, BaseModel)):
            raise LivestackError(
                f"{where}: worker_params must be a dict or a pydantic model, "
                f"not {type(worker_params).__name__}"
            )
        info = describe_processor(processor)
        if info["form"] != "processor" and (len(spec.in_tags) != 1 or DEFAULT not in spec.in_tags):
            raise LivestackError(
                f"{where}: a map or flat-map processor needs a spec with only the 'default' "
                f"input, but it has {sorted(spec.in_tags)}; take 'job: LiveJob' instead"
            )
        self.spec = spec
        self.processor = processor
        self.concurrency = concurrency
        self.init = init
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.on_error = on_error
        self.form: str = info["form"]
        self.is_async: bool = info["is_async"]
        self.takes_options: bool = info["takes_options"]
        self.takes_worker_params: bool = info["takes_worker_params"]
        self.worker_params: Mapping[str, Any] | BaseModel = (
            dict(worker_params) if isinstance(worker_params, Mapping) else worker_params or {}
        )

    def with_params(self, **params: Any) -> LiveWorkerDef:
        """The same definition with ``params`` added to its worker parameters (a worker
        process started with ``--param key=value``)."""
        if isinstance(self.worker_params, BaseModel):
            merged: Mapping[str, Any] | BaseModel = self.worker_params.model_copy(update=params)
        else:
            merged = {**self.worker_params, **params}
        new = copy.copy(self)
        new.worker_params = merged
        return new

    def __repr__(self) -> str:
        kind = ("async " if self.is_async else "") + self.form
        return f"<LiveWorkerDef {self.spec.name!r} {kind} concurrency={self.concurrency}>"
