"""The public exceptions, in one place so every layer can raise them.

All of them derive from :class:`LivestackError`, so ``except ls.LivestackError``
catches anything the library raises on purpose, while the more specific classes
also derive from the matching builtin (``ValueError``, ``TimeoutError``) so code
written against plain Python keeps working. The one exception is
:class:`JobCancelled`, which unwinds a cancelled job's processor and so must
get past ``except Exception`` in it, like ``KeyboardInterrupt``.
"""

from __future__ import annotations

__all__ = [
    "DataValidationError",
    "JobCancelled",
    "JobClosedError",
    "JobFailed",
    "LivestackError",
    "StreamEnded",
    "WaitTimeout",
    "WiringError",
]


class LivestackError(Exception):
    """Base class of every error livestack-nb raises on purpose."""


class DataValidationError(LivestackError, ValueError):
    """A value does not fit the type of the tag it was fed to or emitted on.

    Attributes
    ----------
    spec, tag, field:
        Where the value was rejected: the spec's name, the tag, and the
        offending field inside the value (``None`` when the whole value is
        wrong).
    """

    def __init__(self, message: str, *, spec: str, tag: str, field: str | None = None) -> None:
        super().__init__(message)
        self.spec = spec
        self.tag = tag
        self.field = field


class WiringError(LivestackError):
    """A flow connection or exposure that cannot work, found when it is written."""


class JobFailed(LivestackError):
    """A job ended in failure; ``__cause__`` is the original exception.

    Attributes
    ----------
    job_id:
        The failed job.
    traceback:
        The formatted traceback of the original exception, kept even after the
        exception object itself is gone (for example when read from a vault).
    """

    def __init__(self, message: str, *, job_id: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.traceback = traceback


class WaitTimeout(LivestackError, TimeoutError):
    """``wait(timeout=...)`` ran out before the job ended; the job goes on."""


class StreamEnded(LivestackError):
    """``stream.next_value()`` was called on a stream that has ended, after its last value.

    A ``for`` loop over a stream simply stops there; ``next_value`` has no
    value to return, so it says so (Livestack's ``nextValue`` returns ``null``).
    """


class JobClosedError(LivestackError):
    """Input was fed to a job (or tag) whose input has already ended."""


class JobCancelled(BaseException):
    """Raised inside a processor whose job was cancelled, to unwind it.

    A sync processor runs on a thread that Python cannot stop from outside, so
    a cancel reaches it at its next call into its job: reading input, emitting,
    logging to ``job.logger`` or ``job.invoke``. Let it propagate (``finally``
    blocks run); the worker then frees the processor's thread. A processor that
    makes none of these calls runs on until it returns, holding its thread: its
    job's logs say so and ``worker.stats.busy_after_cancel`` counts it.

    A ``BaseException``, not a :class:`LivestackError`, so that ``except
    Exception`` in a processor does not swallow it.
    """
