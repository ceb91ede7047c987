"""JobTimeline in real JupyterLab 4, in headless Chromium: lanes per slot, live, errors as text."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from browser import ARTIFACTS, chromium, chromium_path, jupyter_server, shot
from widget_support import HOSTILE

from livestack_nb.testing import wait_until

COOKS = f"""\
import time
import livestack_nb as ls

def cook_with(name, cooks):
    @ls.job_spec(name=name, concurrency=cooks)
    def cook(order: str) -> str:
        time.sleep(0.5)
        if order == "burnt":
            raise ValueError("burnt " + {HOSTILE!r})
        return order.upper()
    return cook

one, four = cook_with("one_cook", 1), cook_with("four_cooks", 4)
timeline = ls.widgets.JobTimeline(ls.current_env(), title="one cook vs four")
display(timeline)
for spec in (one, four):
    for order in ["margherita", "diavola", "funghi", "marinara", "capricciosa", "burnt"]:
        job = spec.start()
        job.feed(order)
        job.end()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium_path()
    root = tmp_path_factory.mktemp("timeline") / "notebooks"
    root.mkdir()
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyter_server(root, ARTIFACTS / "jupyter-server-timeline.log") as s:
        yield s


@pytest.fixture(scope="module")
def browser(server: Any) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _bars(timeline: Any, status: str | None = None) -> list[dict[str, str]]:
    """The bars drawn, read in one go (the chart is redrawn while jobs run)."""
    sel = ".lsnb-bar" if status is None else f".lsnb-bar.lsnb-status-{status}"
    found: list[dict[str, str]] = timeline.locator(sel).evaluate_all(
        "els => els.map(e => ({job: e.dataset.job || '', lane: e.dataset.lane || ''}))"
    )
    return found


def test_the_timeline_draws_a_lane_per_slot_live_with_errors_as_text(browser: Any, server: Any) -> None:
    name = f"timeline-{uuid.uuid4().hex[:6]}.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(COOKS)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, Path(server.root) / name)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(f"{server.url}/lab/workspaces/{uuid.uuid4().hex}/tree/{name}?reset&token={server.token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.get_by_text("| Idle").first.wait_for(timeout=60_000)
        timeline = page.locator(".lsnb-timeline.lsnb-live")
        for attempt in range(4):  # a run sent while the kernel still connects is dropped
            page.click(".lm-MenuBar-itemLabel:text-is('Run')")
            page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
            try:
                timeline.wait_for(timeout=20_000)
                break
            except Exception:
                if attempt == 3:
                    raise
        # while it cooks: jobs running, others waiting for a slot
        wait_until(lambda: len(_bars(timeline, "running")) >= 2, timeout=30, message="jobs running")
        assert timeline.locator("[data-waiting]").count() >= 1
        shot(timeline, "timeline-cooking")
        # at the end: one lane for one cook, four for four cooks, every order a bar
        wait_until(lambda: len(_bars(timeline, "failed")) == 2, timeout=60, message="both burnt failed")
        wait_until(lambda: len(_bars(timeline, "completed")) == 10, timeout=30, message="ten orders done")
        labels = timeline.locator("text").all_text_contents()
        assert "one_cook · concurrency 1" in labels and "four_cooks · concurrency 4" in labels
        slots = [t for t in labels if t.startswith("slot ")]
        assert slots == ["slot 1", "slot 1", "slot 2", "slot 3", "slot 4"]
        bars = _bars(timeline)
        assert [b["lane"] for b in bars if b["job"].startswith("one_cook-")] == ["0"] * 6
        assert {b["lane"] for b in bars if b["job"].startswith("four_cooks-")} == {"0", "1", "2", "3"}
        header = timeline.locator(".lsnb-header").text_content() or ""
        assert header == "one cook vs four · 12 jobs: 10 completed, 2 failed"
        # a failed job's error is in its tooltip, as text
        failed = timeline.locator(".lsnb-bar.lsnb-status-failed").first
        assert f"ValueError: burnt {HOSTILE}" in (failed.locator("title").text_content() or "")
        made = page.evaluate("document.querySelectorAll('img[src=\"x\"], [onerror]').length")
        assert made == 0 and not dialogs
        shot(timeline, "timeline-done")
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "timeline-failure.png"))
        raise
    finally:
        page.close()
