"""The long fault suite: ``make faults`` (or ``python tests/faults/run.py --rounds N [--seed S]``).

Starts a redis-server on a free loopback port, runs ``--rounds`` rounds
(seeds ``S, S+1, ...``; ``S`` random unless given) and prints one line per
round and the totals. Exits 1 if any round failed; each failure names its
seed, to replay with ``--seed SEED --rounds 1``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent.parent)]

from harness import Pool, run_round  # noqa: E402
from redis_support import running_redis  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=300)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    print(f"fault suite: {args.rounds} rounds from seed {seed}", flush=True)
    failed, faults, takeovers = [], 0, 0
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp)) as url:
        pool = Pool(f"{url}?prefix=faults", Path(tmp))
        try:
            for s in range(seed, seed + args.rounds):
                out = run_round(s, pool)
                faults += len(out.faults)
                takeovers += out.takeovers
                state = "ok" if not out.failures else "FAILED"
                print(f"seed {s}: {state} in {out.seconds:.1f}s; {'; '.join(out.faults)}", flush=True)
                for f in out.failures:
                    print(f"  {f}", flush=True)
                if out.failures:
                    failed.append(s)
        finally:
            pool.close()
    print(
        f"{args.rounds} rounds, {faults} faults injected, {takeovers} jobs taken over, "
        f"{len(failed)} rounds failed {failed} in {time.monotonic() - began:.0f}s",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
