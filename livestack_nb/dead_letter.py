"""Dead letters: a value a job could not process goes to an ``errors`` stream, and the run goes on.

Why: one malformed line among 200,000 should not fail a long run (and every
flow it is part of). With ``on_error="dead_letter"`` on a spec (or on a whole
flow), a value whose processing still raises after the worker's retries is
sent, with its error and traceback, to the job's ``errors`` stream: live like
any stream (a table, a plot, another spec can read it), recorded by a
durable vault like any output, and drawn in the flow graph as an ``errors``
node fed by every job that dead-letters.

This module only describes a dead letter and sends one; the worker decides
when (see :mod:`livestack_nb.worker`).
"""

from __future__ import annotations

import traceback as tb
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ._types import TagType
from .errors import LivestackError

if TYPE_CHECKING:
    from .job import LiveJob

__all__ = ["ERRORS", "ON_ERROR", "DeadLetter", "check_on_error"]

ERRORS = "errors"
"""The tag of a job's dead-letter stream (``handle.errors``, ``handle.output("errors")``)."""

ON_ERROR = ("fail", "skip", "dead_letter")
"""What a worker does with a value whose processing raised after its retries."""


class DeadLetter(BaseModel):
    """A value a job could not process: what it was, where, and why.

    Attributes
    ----------
    job_id, spec, node:
        The job, its spec, and its label in the flow (the spec name outside one).
    tag:
        The input tag the value came on.
    value:
        The value itself, as it was given to the processor.
    error:
        ``"ExceptionType: message"``.
    traceback:
        The formatted traceback of the last attempt.
    attempts:
        How many times the value was tried (1 + the retries).
    """

    job_id: str
    spec: str
    node: str
    tag: str
    value: Any = None
    error: str
    traceback: str
    attempts: int = 1


DEAD_LETTER_TYPE = TagType(DeadLetter)


def check_on_error(on_error: str, where: str) -> str:
    """``on_error`` if it names a policy, else a clear error naming ``where`` and the choices."""
    if on_error not in ON_ERROR:
        choices = ", ".join(repr(c) for c in ON_ERROR)
        raise LivestackError(f"{where}: on_error must be one of {choices}, not {on_error!r}")
    return on_error


def send(
    job: LiveJob,
    tag: str,
    value: Any,
    exc: BaseException,
    attempts: int,
    parent: tuple[str, int] | None,
) -> None:
    """Send ``value`` (which raised ``exc``) to ``job``'s errors stream, and say so in its log."""
    stream = job._life.errors
    assert stream is not None
    letter = DeadLetter(
        job_id=job.job_id,
        spec=job.spec.name,
        node=job._life.label,
        tag=tag,
        value=value,
        error=f"{type(exc).__name__}: {exc}",
        traceback="".join(tb.format_exception(type(exc), exc, exc.__traceback__)),
        attempts=attempts,
    )
    job.logger.warning(
        "dead letter: a value on %r raised %s: %s; it went to the errors stream and the job goes on",
        tag,
        type(exc).__name__,
        exc,
    )
    if parent is None:
        stream.push([letter])
    else:
        stream.push([letter], parent[0], (parent[1],))
