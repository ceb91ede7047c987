"""A notebook's stand-in for the client-death test: starts a job, feeds part of its
input, says so, and waits to be killed (it never ends the input)."""

from __future__ import annotations

import sys
import time

import fault_specs

import livestack_nb as ls

if __name__ == "__main__":
    env = ls.LiveEnv(vault=sys.argv[1], autostart=False)
    job = fault_specs.double_some.start(env=env)
    job.feed_many([1, 2, 3])
    env.flush()
    print(job.job_id, flush=True)
    while True:  # killed here, feeding
        time.sleep(0.1)
