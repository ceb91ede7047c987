"""Jobs that run in another process: the notebook's side and the worker's side.

Why a module of its own: an env with a Redis vault and ``autostart=False`` is
a pure client. ``spec.start()`` records the job and puts it on the spec's
queue; what the notebook feeds is written to the job's input stream in
Redis; a worker process (``livestack-nb worker module:spec``) takes the job
from the queue, runs it with an ordinary in-process :class:`LiveWorker`, and
its outputs and statuses flow back. This module is the notebook's side;
:mod:`livestack_nb.queue_worker` the worker's; both work against the queue
contract (:mod:`livestack_nb.vault.queue`), which the Redis vault
implements, and only move entries through it.

Who owns a job's statuses: the process that runs it. The client mirrors them
(``LiveJob.detached``: it records none itself), except a cancel asked for by
the caller, which it records and the running worker obeys.

At-least-once, seen exactly once: a queue message is acknowledged only after
its job has ended and that is in Redis. A worker that dies leaves its
messages pending; once they have been idle for ``lease`` seconds (a live
worker refreshes them every ``lease / 3``), another worker takes them over
(``XAUTOCLAIM``) and runs the job again from its stored input. Outputs are
stored by seq, so what the earlier run already stored is dropped, and a
reader sees each output once; the job's end is written only after all of
its outputs are in Redis. This assumes the processor emits the same
outputs for the same input, in order (a deterministic processor). A job
taken over more than ``max_deliveries`` times (each worker that ran it went
silent) is recorded failed rather than handed on for ever.

A worker that was only stalled (stopped, swapping, starved of CPU) past its
lease and then wakes has lost the job: every write it makes for it is
*fenced* (refused by Redis unless its queue message is still that worker's),
and its next heartbeat finds the job gone and stops its copy, recording
nothing. So it neither adds to nor overwrites the new owner's work.

The client's lease: a job's input stays open until the process that started
it ends it. That process renews a lease key (``{prefix}:lease:{job}``,
``client_lease`` seconds, 30 by default) while any input of the job is
open; a worker running a job whose lease has expired with input still open
fails it, "client gone", and frees its slot (the notebook was killed, or its
machine cut off, while feeding).

The server losing its data: a Redis server restarted with persistence
(``appendonly yes``) keeps everything, and both sides carry on once it is
back (writes are resent, readers retry, with backoff). One restarted
without it has lost every job it held: each waiting client's job fails with
a :class:`~livestack_nb.LivestackError` saying so, and each worker drops its
copies (nothing to record them in); a server unreachable for longer than
``reconnect_timeout`` is given up the same way.
"""

from __future__ import annotations

from ._queued import prepare_remote, reattach_remote, share_named
from .queue_worker import QueueWorker
from .relay import RemoteFailure

__all__ = ["QueueWorker", "RemoteFailure", "prepare_remote", "reattach_remote", "share_named"]
