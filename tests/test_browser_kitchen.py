"""The Kitchen side panel in real JupyterLab 4 and Notebook 7, in headless Chromium."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from browser import ARTIFACTS, chromium, chromium_path, jupyter_server, shot

from livestack_nb.testing import wait_until

KITCHEN = """\
import time
import livestack_nb as ls

@ls.job_spec(concurrency=2)
def ticker(job: ls.LiveJob):
    for i in range(10**9):
        job.output.emit(i)
        if job.status.done:
            return
        time.sleep(0.002)

@ls.job_spec
def double(x: int) -> int:
    return 2 * x

orders = ls.current_env().stream("orders", type=int)
for i in range(5):
    orders.emit(i)
done = double.start(job_id="double-1"); done.feed(3); done.end(); done.wait(10)
hot = ticker.start(job_id="hot-1")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium_path()
    root = tmp_path_factory.mktemp("kitchen") / "notebooks"
    root.mkdir()
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyter_server(root, ARTIFACTS / "jupyter-server-kitchen.log") as s:
        yield s


@pytest.fixture(scope="module")
def browser(server: Any) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _notebook(code: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("print('no livestack here yet')"), nbformat.v4.new_code_cell(code)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )


def _open(browser: Any, server: Any, ui: str) -> Any:
    name = f"kitchen-{ui}-{uuid.uuid4().hex[:6]}.ipynb"
    nbformat.write(_notebook(KITCHEN), Path(server.root) / name)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    if ui == "lab":
        url = f"{server.url}/lab/workspaces/{uuid.uuid4().hex}/tree/{name}?reset&token={server.token}"
    else:
        url = f"{server.url}/notebooks/{name}?token={server.token}"
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    if ui == "lab":
        page.get_by_text("| Idle").first.wait_for(timeout=60_000)
    else:
        page.get_by_text("Kernel status: Idle").first.wait_for(state="attached", timeout=60_000)
    return page


def _show_kitchen(page: Any, ui: str) -> Any:
    if ui == "lab":
        page.click(".jp-SideBar .lm-TabBar-tab[data-id='livestack-nb-kitchen']")
    else:
        page.click(".lm-MenuBar-itemLabel:text-is('View')")
        page.click("li.lm-Menu-item:has-text('Left Sidebar')")
        page.click("li.lm-Menu-item:has-text('Kitchen')")
    kitchen = page.locator("#livestack-nb-kitchen")
    kitchen.wait_for(state="visible", timeout=30_000)
    return kitchen


def _run_all(page: Any) -> None:
    started = (
        "() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
        ".some(e => /\\[[0-9*]+\\]/.test(e.textContent))"
    )
    for attempt in range(4):
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
        try:
            page.wait_for_function(started, timeout=15_000)
            return
        except Exception:
            if attempt == 3:
                raise


def _messages(kitchen: Any) -> int:
    return int(kitchen.get_attribute("data-messages") or 0)


def _out_count(row: Any) -> int:
    text = row.locator(".lsnb-kitchen-out").text_content() or ""
    return int(text) if text.isdigit() else -1


@pytest.mark.parametrize("ui", ["lab", "notebook7"])
def test_the_kitchen_lists_jobs_live_opens_them_in_tabs_and_cancels_them(
    browser: Any, server: Any, ui: str
) -> None:
    page = _open(browser, server, ui)
    try:
        kitchen = _show_kitchen(page, ui)
        none = kitchen.locator(".lsnb-kitchen-none")
        none.wait_for(timeout=30_000)
        assert "No livestack-nb env in this kernel" in (none.text_content() or "")
        shot(kitchen, f"{ui}-kitchen-none")

        _run_all(page)
        hot = kitchen.locator("div.lsnb-kitchen-job[data-job='hot-1']")
        hot.wait_for(timeout=60_000)
        first, t0, m0 = _out_count(hot), time.monotonic(), _messages(kitchen)
        wait_until(lambda: _out_count(hot) > first + 300, timeout=30, message="hot-1's outputs grow live")
        wait_until(lambda: time.monotonic() - t0 > 2, timeout=10)
        t1, m1 = time.monotonic(), _messages(kitchen)
        # hundreds of outputs a second reach the panel as at most ~10 messages a second
        assert 3 <= m1 - m0 <= 10 * (t1 - t0) + 2, (m1 - m0, t1 - t0)
        assert (hot.locator(".lsnb-kitchen-status").text_content() or "") == "running"
        assert re.fullmatch(r"\d+s", hot.locator(".lsnb-kitchen-age").text_content() or "")
        done = kitchen.locator("div.lsnb-kitchen-job[data-job='double-1']")
        cells = (".lsnb-kitchen-status", ".lsnb-kitchen-in", ".lsnb-kitchen-out")
        assert [done.locator(c).text_content() for c in cells] == ["completed", "1", "1"]
        worker = kitchen.locator(".lsnb-kitchen-worker", has_text="ticker")
        assert "busy 1/2" in (worker.text_content() or "")
        stream = kitchen.locator(".lsnb-kitchen-stream[data-stream='orders']")
        assert (stream.text_content() or "").startswith("orders: 5")
        assert "ticker" in (kitchen.locator(".lsnb-kitchen-specs").text_content() or "")
        shot(kitchen, f"{ui}-kitchen-live")

        # A job opens in a tab as its live JobPanel.
        hot.locator(".lsnb-kitchen-spec").click()
        tab = page.locator(".lsnb-kitchen-tab .lsnb-panel.lsnb-live")
        tab.wait_for(timeout=30_000)
        assert "hot-1" in (tab.text_content() or "")
        shot(page.locator(".lsnb-kitchen-tab").first, f"{ui}-kitchen-job-tab")

        # A named stream opens as a live table.
        stream.click()
        table = page.locator(".lsnb-kitchen-tab .lsnb-table.lsnb-live")
        table.wait_for(timeout=30_000)
        wait_until(lambda: "5 events" in (table.text_content() or ""), timeout=30, message="5 orders")
        page.screenshot(path=str(ARTIFACTS / f"{ui}-kitchen-page.png"))

        # ... or as a live plot.
        kitchen.locator(".lsnb-kitchen-plot[data-stream='orders']").click()
        plot = page.locator(".lsnb-kitchen-tab .lsnb-plot.lsnb-live")
        plot.wait_for(timeout=30_000)
        plot.locator("canvas").first.wait_for(timeout=30_000)

        # Cancel from the panel; the filter shows only cancelled jobs.
        hot.locator(".lsnb-kitchen-cancel").click()
        wait_until(
            lambda: (hot.locator(".lsnb-kitchen-status").text_content() or "") == "cancelled",
            timeout=30,
            message="hot-1 cancelled from the panel",
        )
        kitchen.locator(".lsnb-kitchen-filter[data-status='cancelled']").click()
        wait_until(lambda: kitchen.locator("div.lsnb-kitchen-job").count() == 1, timeout=10)
        assert kitchen.locator("div.lsnb-kitchen-job").get_attribute("data-job") == "hot-1"
        assert kitchen.locator(".lsnb-kitchen-cancel").count() == 0
        shot(kitchen, f"{ui}-kitchen-cancelled")
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / f"{ui}-kitchen-failure.png"))
        raise
    finally:
        page.close()
