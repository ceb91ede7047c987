"""A real redis-server for the Redis tests, and helpers to run worker processes.

The server listens on a free loopback port only, keeps its files in a temp
dir and persists nothing. Each test gets its own key prefix, so tests share
one server (started once per session) without seeing each other's keys.
When ``CI`` is set a missing ``redis-server`` fails the tests instead of
skipping them: CI must not pass by testing nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from livestack_nb.testing import wait_until

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinged(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_exe() -> str:
    """The redis-server binary; a test fails without it under CI, and is skipped elsewhere."""
    exe = shutil.which("redis-server")
    if exe is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return exe


@contextmanager
def running_redis(workdir: Path, port: int | None = None, *, aof: bool = False) -> Iterator[str]:
    """A redis-server on ``127.0.0.1:port`` (a free one by default), stopped after the block.

    It persists nothing, unless ``aof``: then every write is in its append-only
    file (fsynced at once) in ``workdir`` before it is acknowledged, and a server
    started again on the same ``workdir`` has it all back.
    """
    port = port or free_port()
    # loopback only, files in a temp dir
    args = ["--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir), "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
    args += ["--protected-mode", "yes", "--daemonize", "no"]
    proc = subprocess.Popen([redis_exe(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _pinged(port) or proc.poll() is not None, timeout=10, message="redis answers")
        if proc.poll() is not None:
            pytest.fail(f"redis-server exited with {proc.returncode}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of a redis-server started for this session."""
    redis_exe()
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's server with a key prefix of this test's own."""
    return f"{redis_server}?prefix=t{uuid.uuid4().hex[:10]}"


class Worker:
    """A ``livestack-nb worker`` subprocess (stopped at teardown if still running)."""

    def __init__(self, target: str, url: str, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(TESTS) + os.pathsep + str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "livestack_nb.cli", "worker", target, "--env", url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=TESTS,
            env=env,
        )
        self.out = ""
        self.err = ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        self.out += out
        self.err += err
        return self.proc.returncode


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Worker subprocesses a test starts (append to the list); all are ended after it."""
    started: list[Worker] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
        w.proc.communicate(timeout=30)
