"""Starting a run in step mode (``spec.start(step=True)``): the env's side of :mod:`livestack_nb.step`.

Kept apart from the step machinery (gates, the stepper, the handle's methods),
which sits with jobs and streams: starting a stepped run makes a flow and
starts it on an env, which only the env's layer may do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .flow import Liveflow
from .step import Stepper, _building

if TYPE_CHECKING:
    from .env import LiveEnv
    from .job import JobHandle
    from .spec import JobSpec

__all__ = ["start_stepped"]


def start_stepped(spec: JobSpec, options: Any, env: LiveEnv, job_id: str | None) -> JobHandle:
    """``spec.start(step=True)``: a flow started with a gate on every hop; a single spec
    is run as a one-node flow named ``"<spec>.step"`` whose ports are the spec's tags."""
    flow: Liveflow
    if isinstance(spec, Liveflow):
        flow = spec
    else:
        with env:  # selected for this thread only: the flow is made in this env, not the default
            flow = Liveflow(f"{spec.name}.step")
            flow.add(spec)
            for tag in spec.in_tags:
                flow.expose(spec.input(tag), tag)
            for tag in spec.out_tags:
                flow.expose(spec.output(tag), tag)
        options = {spec.name: options}
    stepper = Stepper()
    with _building(stepper):
        handle = env.start(flow, options, job_id=job_id, before_launch=lambda h: _bind(stepper, h))
    return handle


def _bind(stepper: Stepper, handle: JobHandle) -> None:
    job = handle._job
    job._life.stepper = stepper
    stepper.started(job)
