"""One cooking of a recipe: the job as its processor sees it, and as its caller does.

:class:`LiveJob` is the worker's side (options, logger, spec, graph, input,
output, invoke, storage, env); :class:`JobHandle` is the caller's side (feed,
end, output streams, wait, result, cancel, logs). Both look at the same state;
keeping them apart keeps a notebook user from emitting into a job by accident
and a processor from ending its own input.
"""

from __future__ import annotations

from ._handle import InputFeeder as InputFeeder
from ._handle import JobHandle
from ._inbox import MAX_BACKLOG as MAX_BACKLOG
from ._livejob import LiveJob
from ._ports import TagReader as TagReader
from ._status import JobHost, JobStatus, LogEntry

__all__ = ["JobHandle", "JobHost", "JobStatus", "LiveJob", "LogEntry"]

# Defined in private modules, named by their public path: what IPython's display
# hooks (registered by module and class name), pickles, reprs and docs see.
for _public in (
    InputFeeder,
    JobHandle,
    JobHost,
    JobStatus,
    LiveJob,
    LogEntry,
    TagReader,
):
    _public.__module__ = __name__


# The implementation modules, by seam: _status (statuses, logs, the host a job
# reports to), _inbox (the queue in front of a processor), _ports (a processor's
# inputs and outputs), _livejob (the processor's view), _lifecycle (what runs the
# job: its statuses, its end, its cancel), _handle (the caller's).
# InputFeeder, TagReader and MAX_BACKLOG are re-exported for the widgets and tests.
