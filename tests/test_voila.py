"""Voilà serves a notebook as a dashboard: live widgets draw and a JobInput feeds a job, in Chromium.

Voilà serves the front end from its own static handler, which refuses files
reached through a symlink out of its root (what ``jupyter labextension
develop`` makes); ``make`` installs a copy for that reason, and this test
fetches the extension the way the page does.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from browser import ARTIFACTS, chromium, chromium_path, shot, voila_server
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from livestack_nb.testing import wait_until

DASHBOARD = """\
import time
import livestack_nb as ls
from pydantic import BaseModel, Field

@ls.job_spec(inputs={"default": int}, outputs={"default": float})
def sensor(job: ls.LiveJob):
    for n in job.input:
        for i in range(n):
            time.sleep(0.01)
            job.output.emit(i / 10)

readings = sensor.start()
readings.feed(1500)
readings.end()
readings.output()
"""

COUNTER = """\
class Click(BaseModel):
    by: int = Field(1, ge=1, le=10)

@ls.job_spec(inputs={"default": Click}, outputs={"default": int})
def counter(job: ls.LiveJob):
    count = 0
    for click in job.input:
        count += click.by
        job.output.emit(count)

tally = counter.start()
display(ls.widgets.JobInput(tally))
tally.output()
"""


def dashboard() -> nbformat.NotebookNode:
    """A notebook as a dashboard: a live table filling, and a counter fed from a form."""
    return new_notebook(
        cells=[new_markdown_cell("# Kitchen dashboard"), new_code_cell(DASHBOARD), new_code_cell(COUNTER)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )


def _count(table: Any) -> int:
    m = re.search(r"(\d+) events", table.locator(".lsnb-header").text_content() or "")
    return int(m.group(1)) if m else -1


def check_dashboard(browser: Any, base_url: str, name: str, shots: str) -> None:
    """Open ``name`` in the Voilà at ``base_url``: the table fills live, the form feeds."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{base_url}/voila/render/{name}", timeout=120_000)
        tables = page.locator(".lsnb-table.lsnb-live")
        wait_until(lambda: tables.count() == 2, timeout=120, message="both live tables drew")
        readings = tables.nth(0)
        seen = {_count(readings)}
        wait_until(
            lambda: seen.add(_count(readings)) or len({c for c in seen if 0 < c < 1500}) >= 3,
            timeout=60,
            message="the table filled live",
        )
        shot(readings, f"{shots}-table-filling")
        form = page.locator(".lsnb-input")
        by = form.locator(".lsnb-field-by input")
        by.fill("4")
        by.press("Enter")
        for clicks in (1, 2):
            form.locator("button.lsnb-feed").click()
            wait_until(lambda c=clicks: _count(tables.nth(1)) == c, timeout=30, message=f"{clicks} fed")
        assert tables.nth(1).locator("tbody tr td").nth(2).text_content() == "8"
        by.fill("11")
        by.press("Enter")
        form.locator("button.lsnb-feed").click()
        error = form.locator(".widget-hbox:has(.lsnb-field-by) .lsnb-field-error")
        wait_until(lambda: error.text_content() == "Input should be less than or equal to 10", timeout=30)
        assert _count(tables.nth(1)) == 2
        shot(page.locator("body"), f"{shots}-dashboard")
        assert "javascript error" not in (page.locator("body").text_content() or "").lower()
        assert not errors, errors
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / f"{shots}-failure.png"))
        raise
    finally:
        page.close()


def extension_served(base_url: str) -> list[int]:
    """HTTP status of the extension's package.json and every file of its static dir, as Voilà serves them."""
    url = f"{base_url}/voila/labextensions/livestack-nb"
    with urllib.request.urlopen(f"{url}/package.json", timeout=10) as r:
        meta = json.load(r)
    entry = meta["jupyterlab"]["_build"]["load"]
    with urllib.request.urlopen(f"{url}/{entry}", timeout=10) as r:
        return [r.status]


@pytest.fixture(scope="module")
def voila(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium_path()
    root = tmp_path_factory.mktemp("voila") / "notebooks"
    root.mkdir()
    ARTIFACTS.mkdir(exist_ok=True)
    nbformat.write(dashboard(), root / "dashboard.ipynb")
    with voila_server(root, ARTIFACTS / "voila.log") as s:
        yield s


def test_voila_serves_the_front_end_of_this_install(voila: Any) -> None:
    assert extension_served(voila.url) == [200]


def test_a_dashboard_in_voila_fills_its_table_live_and_takes_input_from_a_form(voila: Any) -> None:
    with chromium() as browser:
        check_dashboard(browser, voila.url, "dashboard.ipynb", "voila")
