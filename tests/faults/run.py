"""The long fault suite: ``make faults`` (or ``python tests/faults/run.py --rounds N [--seed S]``).

Starts a redis-server (append-only file) on a free loopback port, runs ``--rounds`` rounds
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

from harness import Pool, Server, run_round  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=300)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--restarts", action="store_true", help="also restart redis-server (AOF) mid-round")
    p.add_argument("--logs", type=Path, default=None, help="keep workers' logs and server files here")
    args = p.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    print(f"fault suite: {args.rounds} rounds from seed {seed}", flush=True)
    failed, takeovers = [], 0
    kinds = {"SIGKILL": 0, "SIGSTOP": 0, "restarted": 0}
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = args.logs or Path(tmp_dir)
        tmp.mkdir(parents=True, exist_ok=True)
        server = Server(Path(tmp))
        server.start()
        pool = Pool(f"{server.url}?prefix=faults", Path(tmp), server=server if args.restarts else None)
        try:
            for s in range(seed, seed + args.rounds):
                out = run_round(s, pool)
                for f in out.faults:
                    for k in kinds:
                        kinds[k] += k in f
                takeovers += out.takeovers
                state = "ok" if not out.failures else "FAILED"
                print(f"seed {s}: {state} in {out.seconds:.1f}s; {'; '.join(out.faults)}", flush=True)
                for f in out.failures:
                    print(f"  {f}", flush=True)
                if out.failures:
                    failed.append(s)
        finally:
            pool.close()
            server.stop()
    print(
        f"{args.rounds} rounds, {sum(kinds.values())} faults injected ({kinds['SIGKILL']} SIGKILL, "
        f"{kinds['SIGSTOP']} SIGSTOP+SIGCONT, {kinds['restarted']} redis-server restarts), "
        f"{takeovers} jobs taken over, "
        f"{len(failed)} rounds failed {failed} in {time.monotonic() - began:.0f}s",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
