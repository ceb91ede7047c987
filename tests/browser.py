"""A real JupyterLab server and headless Chromium for the browser tests.

Chromium is Debian's (``.ci/run`` installs it); playwright only drives it.
Without it the browser tests skip on a developer's machine and fail in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from livestack_nb.testing import wait_until

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    """Debian's chromium, or a failure in CI / a skip elsewhere."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        import playwright  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed")
        pytest.skip("playwright is not installed")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A JupyterLab server on 127.0.0.1 serving ``root``."""

    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen[bytes]) -> None:
        self.root = root
        self.port = port
        self.token = token
        self.proc = proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False


@contextmanager
def jupyter_server(
    root: Path, log: Path, python: str = sys.executable, pythonpath: bool = True
) -> Iterator[Server]:
    """Start ``jupyter lab`` (which also serves Notebook 7's pages) and stop it afterwards.

    ``python`` is the interpreter it runs with (an installed venv's); ``pythonpath=False``
    keeps this checkout off the path of the server and its kernels.
    """
    settings = root.parent / "lab-settings"
    news = settings / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True, exist_ok=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port = _free_port()
    token = uuid.uuid4().hex
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(root.parent / "lab-workspaces"),
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])
        ),
    )
    if not pythonpath:
        env.pop("PYTHONPATH")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                python, "-m", "jupyterlab", "--no-browser", "--allow-root",
                f"--port={port}", "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=",
            ],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
        )  # fmt: skip
    server = Server(root, port, token, proc)
    try:
        wait_until(lambda: proc.poll() is not None or server.up(), timeout=60, message="jupyter lab started")
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited: {log.read_text()[-2000:]}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class VoilaServer:
    """A ``voila`` server on 127.0.0.1 serving the notebooks of ``root``."""

    def __init__(self, root: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.root = root
        self.port = port
        self.proc = proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answers
        except OSError:
            return False


def voila_path(python: str = sys.executable) -> None:
    """Voila importable from ``python``, or a failure in CI / a skip elsewhere."""
    ok = subprocess.run([python, "-c", "import voila"], capture_output=True, timeout=60).returncode == 0
    if not ok:
        message = "voila is not installed (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def voila_server(
    root: Path, log: Path, python: str = sys.executable, pythonpath: bool = True
) -> Iterator[VoilaServer]:
    """Start ``voila`` (its tree of ``root``) with ``python`` and stop it afterwards."""
    voila_path(python)
    port = _free_port()
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])
        )
    else:
        env.pop("PYTHONPATH", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [python, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
             "--show_tracebacks=True", str(root)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
        )  # fmt: skip
    server = VoilaServer(root, port, proc)
    try:
        wait_until(lambda: proc.poll() is not None or server.up(), timeout=60, message="voila started")
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited: {log.read_text()[-2000:]}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def chromium() -> Iterator[Any]:
    """A playwright Browser on Debian's chromium."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def shot(locator: Any, name: str) -> Path:
    """Screenshot one element into tests/artifacts/ (the page scrolls inside its panel)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(path))
    return path


def deadline(seconds: float) -> float:
    return time.monotonic() + seconds
