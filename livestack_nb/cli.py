"""``livestack-nb``: run a worker process for a spec, list the jobs of an env.

Why a command: scaling out means starting the same worker on more processes
or machines, under whatever supervises processes there (systemd, a container
runtime, a terminal). A worker is one command line with the spec to serve
and the env to serve it from; stopping it with SIGTERM lets its running jobs
finish, and killing it outright loses nothing (another worker takes its jobs
over).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from .errors import LivestackError

__all__ = ["main"]

DEFAULT_ENV = "redis://127.0.0.1:6379/0"

_DESCRIPTION = """\
Scale livestack-nb out with Redis: a notebook with
LiveEnv(vault="redis://...", autostart=False) puts the jobs it starts on a
queue per spec, and worker processes started with this command run them.
"""

_EPILOG = """\
examples:
  livestack-nb worker pizzeria:bake --env redis://127.0.0.1:6379/0 --concurrency 4
  livestack-nb worker pizzeria:knead pizzeria:bake --env redis://127.0.0.1:6379/0
  livestack-nb jobs --env redis://127.0.0.1:6379/0

The env URL may also come from the LIVESTACK_ENV environment variable.
"""


def _parser() -> argparse.ArgumentParser:
    env_default = os.environ.get("LIVESTACK_ENV", DEFAULT_ENV)
    p = argparse.ArgumentParser(
        prog="livestack-nb",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    w = sub.add_parser(
        "worker",
        help="run the jobs of one or more specs from their queues",
        description=(
            "Import MODULE, find the spec SPEC in it, and run the jobs any process puts on its "
            "queue in ENV (several MODULE:SPEC serve several specs, each with its own "
            "--concurrency). SIGTERM (or Ctrl-C) stops taking jobs, lets running ones finish, and "
            "exits 0; a worker killed outright has its jobs taken over by another one after "
            "--lease seconds."
        ),
    )
    w.add_argument(
        "targets",
        nargs="+",
        metavar="MODULE:SPEC",
        help="e.g. pizzeria:bake (MODULE is importable from here)",
    )
    w.add_argument(
        "--env", default=env_default, metavar="URL", help=f"the env's vault URL (default: {env_default})"
    )
    w.add_argument("--concurrency", type=int, default=4, metavar="N", help="jobs run at once (default: 4)")
    w.add_argument(
        "--lease",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="silence after which another worker takes this one's jobs over (default: 10)",
    )
    w.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long SIGTERM waits for running jobs; what is left goes to another worker (default: 30)",
    )
    w.add_argument(
        "--max-deliveries",
        type=int,
        default=5,
        metavar="N",
        help="a job taken over more often than this is recorded failed, not retried (default: 5)",
    )
    w.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a worker parameter (job.worker_params[KEY]); VALUE is read as JSON if it can be, "
        "else kept as text; repeat for several",
    )
    w.add_argument(
        "--name",
        default=None,
        help="consumer name in the queue (default: host-pid-random; with several specs, NAME-SPEC each)",
    )
    w.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for a server that cannot be reached at start (restarting, say) (default: 60)",
    )
    w.add_argument("-v", "--verbose", action="store_true", help="log every job taken")

    j = sub.add_parser(
        "jobs", help="list the jobs of an env with their status", description="List jobs: id, spec, status."
    )
    j.add_argument(
        "--env", default=env_default, metavar="URL", help=f"the env's vault URL (default: {env_default})"
    )
    j.add_argument("--spec", default=None, help="only the jobs of this spec")
    j.add_argument("--limit", type=int, default=None, metavar="N", help="only the newest N jobs")
    return p


def _load_spec(target: str) -> object:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise LivestackError(f"{target!r}: expected MODULE:SPEC, for example pizzeria:bake")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules next to where it runs
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise LivestackError(f"{target!r}: cannot import module {module_name!r}: {e}") from None
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LivestackError(f"{target!r}: module {module_name!r} has no {attr!r}") from None
    return obj


def _params(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise LivestackError(f"--param {pair!r}: expected KEY=VALUE, for example --param gpu=1")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _worker(args: argparse.Namespace) -> int:
    from .env import LiveEnv
    from .queue_worker import QueueWorker
    from .spec import JobSpec
    from .vault.redis import safe_url

    specs = []
    for target in args.targets:
        spec = _load_spec(target)
        if not isinstance(spec, JobSpec):
            raise LivestackError(f"{target!r} is a {type(spec).__name__}, not a JobSpec")
        specs.append(spec)
    if args.concurrency < 1:
        raise LivestackError(f"--concurrency must be >= 1, not {args.concurrency}")
    if args.param:
        params = _params(args.param)
        for spec in specs:
            if spec.worker_def is None:
                raise LivestackError(f"spec {spec.name!r} has no worker to give --param to")
            spec.worker_def = spec.worker_def.with_params(**params)
    env = _open_env(LiveEnv, args.env, args.wait)
    if not env.vault.queues:
        env.close()
        raise LivestackError(f"--env {args.env!r}: a worker needs a redis:// or rediss:// env")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        workers = [
            QueueWorker(
                env,
                spec,
                concurrency=args.concurrency,
                lease=args.lease,
                name=args.name if len(specs) == 1 or args.name is None else f"{args.name}-{spec.name}",
                max_deliveries=args.max_deliveries,
            )
            for spec in specs
        ]
        for worker in workers:
            print(
                f"livestack-nb worker {worker.name}: serving spec {worker.spec.name!r} from "
                f"{safe_url(args.env)} (concurrency {args.concurrency}, lease {args.lease:g}s)",
                flush=True,
            )
        # one thread per spec; the main thread waits for the signal
        threads = [
            threading.Thread(
                target=w.serve,
                args=(stop,),
                kwargs={"drain_timeout": args.drain_timeout},
                name=f"livestack-serve-{w.spec.name}",
                daemon=True,
            )
            for w in workers[1:]
        ]
        for t in threads:
            t.start()
        workers[0].serve(stop, drain_timeout=args.drain_timeout)
        for t in threads:
            t.join()
        for worker in workers:
            print(
                f"livestack-nb worker {worker.name}: stopped after {worker.completed} jobs "
                f"({worker.rejected} malformed messages reported, {worker.taken_over} taken over by "
                f"another worker, {worker.clients_gone} failed as client gone, {worker.lost} lost "
                "with the server's data)",
                flush=True,
            )
    finally:
        env.close()
    return 0


def _open_env(make: Any, url: str, wait: float) -> Any:
    """The worker's env, once its server answers: a worker started while Redis restarts (by a
    supervisor bringing both back up) waits for it, with backoff, up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            return make(vault=url)
        except LivestackError as e:
            if "cannot be reached" not in str(e) or time.monotonic() + delay > deadline:
                raise
            if delay == 0.1:
                print(
                    f"livestack-nb worker: {e}; waiting up to {wait:g}s for it", file=sys.stderr, flush=True
                )
            time.sleep(delay)
            delay = min(2.0, delay * 2)


def _jobs(args: argparse.Namespace) -> int:
    from .vault.open import open_vault

    vault = open_vault(args.env)
    try:
        jobs = vault.jobs()
    finally:
        vault.close()
    if args.spec is not None:
        jobs = [j for j in jobs if j.spec == args.spec]
    if args.limit is not None:
        jobs = jobs[-args.limit :] if args.limit > 0 else []
    rows = [("ID", "SPEC", "STATUS", "CREATED")]
    for j in jobs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.created)) if j.created else "-"
        rows.append((j.job_id, j.spec, j.status, created))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    if not jobs:
        print("(no jobs)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    # on the handler: job loggers log at every level and propagate to the root
    handler.setLevel(logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        if args.command == "worker":
            return _worker(args)
        return _jobs(args)
    except LivestackError as e:
        print(f"livestack-nb: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
