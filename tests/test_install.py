"""A clean ``pip install``: the wheel, in a fresh venv far from this checkout, shows live widgets.

Users install a wheel, not a checkout. These tests build it (``pip wheel .``),
install it into a new venv in a temporary directory (with Voila, to serve a
dashboard from it too), and run JupyterLab and Voila from there with nothing
of the source tree on any path, in Chromium. The sdist carries the built front
end, so a wheel builds from it with no npm on the PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from browser import ARTIFACTS, chromium, chromium_path, jupyter_server, shot, voila_server
from nbformat.v4 import new_code_cell, new_notebook
from test_voila import check_dashboard, dashboard, extension_served

from livestack_nb import __version__
from livestack_nb.testing import wait_until

ROOT = Path(__file__).resolve().parent.parent
PIP_QUIET = ["--quiet", "--disable-pip-version-check"]


@dataclass
class Installed:
    venv: Path
    wheel: Path
    home: Path  # a directory with no source tree near it

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return subprocess.run(
            [self.python, *args], capture_output=True, text=True, timeout=timeout, cwd=self.home, env=env
        )


def _pip(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", *args, *PIP_QUIET],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    chromium_path()
    work = tmp_path_factory.mktemp("clean-install")
    dist = work / "dist"
    _pip("wheel", str(ROOT), "--no-deps", "-w", str(dist), cwd=work)
    (wheel,) = dist.glob("livestack_nb-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    home = work / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", str(wheel), "voila>=0.5", *PIP_QUIET],
        capture_output=True, text=True, timeout=900, cwd=home, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    ARTIFACTS.mkdir(exist_ok=True)
    yield Installed(venv, wheel, home)


def test_the_wheel_carries_the_built_front_end(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    share = f"livestack_nb-{__version__}.data/data/share/jupyter/labextensions/livestack-nb"
    assert f"{share}/package.json" in names and f"{share}/install.json" in names
    assert any(re.fullmatch(rf"{share}/static/remoteEntry\.\w+\.js", n) for n in names)
    assert not any("node_modules/" in n.split("static/")[0] for n in names)


def test_the_package_is_imported_from_the_venv_and_its_extension_is_installed_from_it(
    installed: Installed,
) -> None:
    where = installed.run("-c", "import livestack_nb, sys; print(livestack_nb.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(installed.venv)), where.stdout
    listed = installed.run("-m", "jupyter", "labextension", "list")
    text = listed.stdout + listed.stderr
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert re.search(rf"livestack-nb v{re.escape(__version__)} enabled OK \(python, livestack-nb\)", plain), (
        plain
    )
    assert str(installed.venv) in plain  # the venv's share/jupyter/labextensions, not a linked checkout
    ext = installed.venv / "share" / "jupyter" / "labextensions" / "livestack-nb"
    assert ext.is_dir() and not ext.is_symlink()


LIVE = """\
import time
import livestack_nb as ls
print("imported from", ls.__file__)

@ls.job_spec(inputs={"default": int}, outputs={"default": int})
def slow(job: ls.LiveJob):
    for n in job.input:
        for i in range(n):
            time.sleep(0.005)
            job.output.emit(i)

job = slow.start()
job.feed(1000)
job.end()
job.output()
"""


def test_jupyterlab_from_the_installed_wheel_shows_a_live_widget(installed: Installed) -> None:
    from test_browser import _count, _open_and_run

    root = installed.home / "lab"
    root.mkdir()
    log = ARTIFACTS / "clean-install-lab.log"
    with jupyter_server(root, log, installed.python, pythonpath=False) as server, chromium() as browser:
        nb = new_notebook(
            cells=[new_code_cell(LIVE)],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        )
        page, _ = _open_and_run(browser, server, "lab", nb)
        try:
            table = page.locator(".lsnb-table.lsnb-live")
            table.wait_for(timeout=60_000)
            seen = {_count(page)}
            wait_until(
                lambda: seen.add(_count(page)) or len({c for c in seen if 0 < c < 1000}) >= 2,
                timeout=60,
                message="the table filled live",
            )
            wait_until(lambda: _count(page) == 1000, timeout=60)
            printed = page.locator(".jp-OutputArea-output pre").first.text_content() or ""
            assert f"imported from {installed.venv}" in printed, printed
            shot(page.locator(".jp-OutputArea").first, "clean-install-lab-table")
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "clean-install-failure.png"))
            raise
        finally:
            page.close()


def test_voila_from_the_installed_wheel_serves_a_live_dashboard(installed: Installed) -> None:
    root = installed.home / "voila"
    root.mkdir()
    nbformat.write(dashboard(), root / "dashboard.ipynb")
    with voila_server(root, ARTIFACTS / "clean-install-voila.log", installed.python, pythonpath=False) as v:
        assert extension_served(v.url) == [200]
        with chromium() as browser:
            check_dashboard(browser, v.url, "dashboard.ipynb", "clean-install-voila")


def test_the_sdist_carries_the_built_front_end_and_a_wheel_builds_from_it_without_npm(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    (sdist,) = tmp_path.glob("livestack_nb-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    top = f"livestack_nb-{__version__}"
    for needed in ("livestack_nb/labextension/package.json", "livestack_nb/labextension/static/style.js",
                   "labextension/src/index.ts", "install.json", "CHANGELOG.md", "README.md"):  # fmt: skip
        assert f"{top}/{needed}" in names, needed
    assert not [n for n in names if "/labextension/node_modules/" in n or "/tests/artifacts/" in n]
    # no npm or node on the PATH: building the front end again would fail
    bare = tmp_path / "bin"
    bare.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = str(bare)
    _pip("wheel", str(sdist), "--no-deps", "-w", str(tmp_path / "dist"), cwd=tmp_path, env=env)
    (wheel,) = (tmp_path / "dist").glob("livestack_nb-*.whl")
    assert any(
        n.endswith("labextensions/livestack-nb/package.json") for n in zipfile.ZipFile(wheel).namelist()
    )
