"""A notebook's stand-in for the client-death test: starts two jobs, ends the input of
the first (slow: it still runs when this process dies), feeds part of the second's
input without ending it, says so, and waits to be killed."""

from __future__ import annotations

import sys
import time

import fault_specs

import livestack_nb as ls

if __name__ == "__main__":
    env = ls.LiveEnv(vault=sys.argv[1], autostart=False)
    ended = fault_specs.triple.start(options={"delay": 0.3}, env=env)
    ended.feed_many([1, 2, 3, 4, 5])
    ended.end()
    open_ = fault_specs.double_some.start(env=env)
    open_.feed_many([1, 2, 3])
    env.flush()
    print(ended.job_id, open_.job_id, flush=True)
    while True:  # killed here, feeding
        time.sleep(0.1)
