"""The processes a teaching notebook starts, kept out of the lesson.

Notebook 08 starts a redis-server and worker processes. What it teaches is the
command line of each; what this module does is the care around them:

- every process is recorded the moment it starts, and stopped when the kernel
  stops or restarts (``atexit``), so a cell that fails half-way leaves nothing
  running;
- each runs in a session of its own, so *Interrupt kernel* (which signals the
  kernel's whole process group) interrupts the cell, not the kitchen;
- a process that must say it is ready (a worker logs ``serving spec``) is
  waited for, and if it never does, everything started so far is stopped;
- the scratch directory is removed when the kernel stops, whatever happened;
- cells that need a program which is not installed are skipped, and say so.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from livestack_nb.testing import wait_until

T = TypeVar("T")
HERE = Path(__file__).resolve().parent  # processes start here, so they can import pizza_line


def scratch_dir(prefix: str) -> Path:
    """A new temporary directory, removed when the kernel stops (even after a failed cell)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def livestack_nb_command() -> list[str]:
    """The ``livestack-nb`` command of this Python (the console script, or ``python -m``)."""
    cli = shutil.which("livestack-nb", path=os.path.dirname(sys.executable)) or shutil.which("livestack-nb")
    return [cli] if cli else [sys.executable, "-m", "livestack_nb.cli"]


def wait_for(condition: Callable[[], T], timeout: float = 30, interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy, and return that (at most ``timeout`` s)."""
    return wait_until(condition, timeout=timeout, interval=interval)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_answers(url: str) -> bool:
    """Whether a Redis server answers a PING at ``url``."""
    import redis

    try:
        with redis.Redis.from_url(url) as r:
            return bool(r.ping())
    except redis.ConnectionError:
        return False


class Processes:
    """Every process a notebook starts, stopped at the latest when the kernel stops.

    ``start`` records a process before anything can fail, in a session of its
    own, its output in a log file of ``workdir``; ``stop_all`` kills what still
    runs (``atexit`` calls it too).
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[subprocess.Popen[bytes]] = []
        self.redis_process: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop_all)

    def start(
        self,
        args: Sequence[str],
        *,
        log: str,
        env: dict[str, str] | None = None,
        ready: Callable[[], bool] | str | None = None,
        timeout: float = 30,
    ) -> subprocess.Popen[bytes]:
        """Start ``args`` in ``HERE``, its output going to ``workdir/log``; with ``ready``
        (a condition, or text its log must show) wait for it, stopping everything if
        it never comes."""
        with open(self.workdir / log, "w") as out:
            proc = subprocess.Popen(
                list(args),
                cwd=HERE,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.children.append(proc)
        if ready is not None:

            def check() -> bool:
                if proc.poll() is not None:  # ended before it was ready: say so now, with its log
                    raise RuntimeError(f"{args[0]} exited with {proc.returncode}:\n{self.log(log)}")
                return ready() if callable(ready) else ready in self.log(log)

            try:
                wait_until(check, timeout=timeout, message=f"{args[0]} ({log}) is ready")
            except BaseException:
                self.stop_all()  # nothing half-started is left running
                raise
        return proc

    def redis_server(self) -> str:
        """Start a redis-server on a free loopback port that saves nothing to disk; its URL."""
        server = shutil.which("redis-server")
        if server is None:
            raise FileNotFoundError("redis-server is not on PATH")
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        self.redis_process = self.start(
            [
                server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            log="redis-server.log",
            ready=lambda: redis_answers(url),
        )
        return url

    def log(self, name: str) -> str:
        """What the process logging to ``name`` has written so far."""
        return (self.workdir / name).read_text()

    def pids(self) -> list[int]:
        return [p.pid for p in self.children]

    def running(self) -> list[str]:
        """The programs still running."""
        return [os.path.basename(str(p.args[0])) for p in self.children if p.poll() is None]

    def stop_all(self) -> None:
        """Kill what still runs and reap every process."""
        for p in self.children:
            if p.poll() is None:
                p.kill()
            p.wait()


_MARK = "# needs "


def skip_cells_needing(program: str) -> str | None:
    """Skip every later cell whose first line is ``# needs <program>`` when ``program``
    is not installed (each such cell prints that it was skipped); its path otherwise."""
    from IPython import get_ipython

    found = shutil.which(program)
    mark = f"{_MARK}{program}"

    def skip(lines: list[str]) -> list[str]:
        if not found and lines and lines[0].strip() == mark:
            return [f"print('skipped: {program} is not installed')\n"]
        return lines

    skip.__name__ = f"skip_without_{program}"
    get_ipython().input_transformers_cleanup.append(skip)
    return found


def stop_skipping() -> None:
    """Remove what :func:`skip_cells_needing` installed."""
    from IPython import get_ipython

    cleanup = get_ipython().input_transformers_cleanup
    cleanup[:] = [t for t in cleanup if not getattr(t, "__name__", "").startswith("skip_without_")]
