"""Window and keyed-state specs a worker process or a child process imports by module name."""

from __future__ import annotations

import livestack_nb as ls

per_two = ls.window(count=2, key="k", agg={"n": ls.agg.count(), "total": ls.agg.sum("v")}, name="per_two")


@ls.job_spec(outputs={"default": dict})
def running_totals(job: ls.LiveJob):
    """Per pizza: how many ordered so far, across jobs and restarts (job.state)."""
    for key, order in job.input:
        seen = job.state.get(key, 0) + order["n"]
        job.state[key] = seen
        job.output.emit({"pizza": key, "so_far": seen})
