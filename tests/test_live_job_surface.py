"""A processor's LiveJob shows the seed's parts and ``job_id``; what runs the job
(its statuses, its end, its cancel from outside) is kept apart, in its lifecycle."""

from __future__ import annotations

import livestack_nb as ls
from livestack_nb._lifecycle import JobLife

SEED_PARTS = {"options", "logger", "spec", "graph", "input", "output", "invoke", "storage", "env"}
# Also public, and why: `status` (a processor looping on its own stops once its job is
# done), `cancel()` (a processor may cancel its own job), `worker_params` (the worker's
# parameters), `state` (per-key state), `parent_id` (with job_id, who started it).
ALSO = {"job_id", "status", "cancel", "worker_params", "state", "parent_id"}


def test_a_processor_sees_the_seeds_parts_and_no_lifecycle(env):
    seen: dict[str, set[str]] = {}

    @ls.job_spec(name="surface")
    def surface(job: ls.LiveJob) -> None:
        seen["names"] = {n for n in dir(job) if not n.startswith("_")}
        for x in job.input:
            job.output.emit(x + 1)

    assert surface.run([1, 2]) == [2, 3]
    assert seen["names"] == SEED_PARTS | ALSO
    assert not {"complete", "fail", "mark_running", "restore", "release", "add_done_callback"} & seen["names"]


def test_the_lifecycle_is_the_runners_and_the_handle_reads_it(env):
    @ls.job_spec(name="surface-map")
    def double(x: int) -> int:
        return 2 * x

    handle = double.start()
    life = handle._job._life
    assert isinstance(life, JobLife)
    handle.feed(4)
    handle.end()
    assert handle.result(timeout=10) == [8]
    assert handle.status is life.status is ls.JobStatus.COMPLETED
    assert [s for s, _ in handle.statuses] == [s for s, _ in life.statuses]
    assert [s.value for s, _ in life.statuses] == ["requested", "running", "completed"]
