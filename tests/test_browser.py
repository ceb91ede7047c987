"""Real JupyterLab and Notebook 7 in headless Chromium: the widgets draw, update live and stay text."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from browser import ARTIFACTS, chromium, chromium_path, jupyter_server, shot
from live_notebook import HOSTILE, hostile_notebook, live_notebook

from livestack_nb.testing import wait_until

N = 2000  # about eight seconds of values: long enough to watch the table grow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium_path()
    root = tmp_path_factory.mktemp("lab") / "notebooks"
    root.mkdir()
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyter_server(root, ARTIFACTS / "jupyter-server.log") as s:
        yield s


@pytest.fixture(scope="module")
def browser(server: Any) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _open_and_run(
    browser: Any, server: Any, ui: str, nb: nbformat.NotebookNode | None = None
) -> tuple[Any, list[str]]:
    """Open ``nb`` (the live notebook by default) in ``ui`` and run all its cells."""
    name = f"live-{ui}-{uuid.uuid4().hex[:6]}.ipynb"
    nbformat.write(nb or live_notebook(n=N, wait=False, delay=0.004), Path(server.root) / name)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    if ui == "lab":
        url = f"{server.url}/lab/workspaces/{uuid.uuid4().hex}/tree/{name}?reset&token={server.token}"
    else:
        url = f"{server.url}/notebooks/{name}?token={server.token}"
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # the kernel is connected and idle before anything runs
    if ui == "lab":
        page.get_by_text("| Idle").first.wait_for(timeout=60_000)
    else:
        page.get_by_text("Kernel status: Idle").first.wait_for(state="attached", timeout=60_000)
    # A run-all sent while the kernel is still connecting is dropped: try again
    # (a few times) until a cell shows it ran or is queued.
    started = (
        "() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
        ".some(e => /\\[[0-9*]+\\]/.test(e.textContent))"
    )
    for attempt in range(4):
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
        try:
            page.wait_for_function(started, timeout=15_000)
            break
        except Exception:
            if attempt == 3:
                raise
    return page, dialogs


def _count(page: Any, index: int = 0) -> int:
    text = page.locator(".lsnb-table.lsnb-live .lsnb-header").nth(index).text_content() or ""
    m = re.search(r"(\d+) events", text)
    return int(m.group(1)) if m else -1


def _series_pixels(canvas: Any) -> int:
    """How many pixels of the canvas have (about) the first series' colour (#0072b2; #1f77b4 before)."""
    return int(
        canvas.evaluate(
            """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      let n = 0;
                      for (let i = 0; i < d.length; i += 4)
                        if (Math.abs(d[i] - 31) < 40 && Math.abs(d[i+1] - 119) < 40
                            && Math.abs(d[i+2] - 180) < 40 && d[i+3] > 100) n++;
                      return n; }"""
        )
    )


@pytest.mark.parametrize("ui", ["lab", "notebook7"])
def test_widgets_live_in_the_browser(browser: Any, server: Any, ui: str) -> None:
    page, dialogs = _open_and_run(browser, server, ui)
    try:
        page.wait_for_selector(".lsnb-table.lsnb-live", timeout=60_000)
        # the table's rows grow while the job runs
        seen = {wait_until(lambda: (c := _count(page)) > 0 and c, timeout=30)}
        wait_until(lambda: seen.add(_count(page)) or len({c for c in seen if 0 < c < N}) >= 3, timeout=30)
        table = page.locator(".lsnb-table.lsnb-live").first
        shot(table, f"{ui}-table-growing")
        assert table.locator("tbody tr").count() > 0
        # the plot draws its series
        for i, kind in enumerate(["bar", "line"]):
            canvas = page.locator(".lsnb-plot.lsnb-live canvas").nth(i)
            wait_until(lambda c=canvas: _series_pixels(c) > 50, timeout=30, message=f"the {kind} plot drew")
            shot(page.locator(".lsnb-plot.lsnb-live").nth(i), f"{ui}-plot-{kind}")
        # the graph: nodes, counts on edges, the failing node red
        graph = page.locator(".lsnb-graph.lsnb-live").first
        for node in ("sensor", "label", "explode"):
            graph.locator(f".lsnb-node[data-node='{node}']").wait_for(timeout=30_000)
        graph.locator(".lsnb-node[data-node='explode'].lsnb-status-failed").wait_for(timeout=60_000)
        assert not graph.locator(".lsnb-stage-controls").is_visible()  # not a stepped run
        fill = graph.locator(".lsnb-node[data-node='explode'] rect").evaluate("r => getComputedStyle(r).fill")
        assert fill == "rgb(229, 57, 53)", fill
        assert "oven on fire" in (graph.locator(".lsnb-node[data-node='explode'] title").text_content() or "")
        labels = graph.locator(".lsnb-edge-label").all_text_contents()
        assert any(re.match(r"[1-9]\d*\b", t) for t in labels), labels
        # counts change, the layout does not
        boxes = graph.locator(".lsnb-node rect, .lsnb-port rect").evaluate_all(
            "rs => rs.map(r => [r.getAttribute('x'), r.getAttribute('y')])"
        )
        graph.locator(".lsnb-node[data-node='explode']").click()
        wait_until(lambda: "oven on fire" in (graph.locator(".lsnb-error").text_content() or ""), timeout=10)
        shot(graph, f"{ui}-graph-failed")
        assert boxes == graph.locator(".lsnb-node rect, .lsnb-port rect").evaluate_all(
            "rs => rs.map(r => [r.getAttribute('x'), r.getAttribute('y')])"
        )
        # the hostile string is shown as text; no element was made from it
        hostile = page.locator(".lsnb-table.lsnb-live").nth(1)
        hostile.locator("td", has_text=HOSTILE).first.wait_for(timeout=30_000)
        assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
        assert not dialogs
        # a long value is cut, with the whole of it in the tooltip
        cut = hostile.locator("td.lsnb-cut").first
        cut.wait_for(timeout=10_000)
        assert cut.get_attribute("title") == "long " * 100
        assert len(cut.text_content() or "") <= 80
        shot(hostile, f"{ui}-hostile-as-text")
        # the job panel
        panel = page.locator(".lsnb-panel.lsnb-live").first
        panel.wait_for(timeout=30_000)
        # the job ends: the table says so with every value counted
        wait_until(lambda: _count(page) == N, timeout=60)
        wait_until(lambda: "ended" in (table.locator(".lsnb-header").text_content() or ""), timeout=10)
        shot(panel, f"{ui}-job-panel")
        # no duplicate: every static snapshot next to a live view is hidden
        snapshots = page.locator(".lsnb-snapshot")
        assert snapshots.count() >= 6
        assert all(not snapshots.nth(i).is_visible() for i in range(snapshots.count()))
        # ...but kept current, so the notebook saved from here reads well elsewhere
        wait_until(lambda: f"{N} events · ended" in (snapshots.first.text_content() or ""), timeout=30)
        shot(page.locator(".jp-Notebook"), f"{ui}-notebook")
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / f"{ui}-failure.png"))
        raise
    finally:
        page.close()


RESIZE = """\
import ipywidgets as w
from livestack_nb.stream import DataStream
from livestack_nb.widgets import StreamPlot, StreamTable

s = DataStream("counting")
s.push([float(i) for i in range(60)])
table = StreamTable(s, max_rows=5)
plot = StreamPlot(s, x="seq", kind="scatter", window=60)
rows = w.BoundedIntText(value=5, min=1, max=100, description="rows")
points = w.BoundedIntText(value=60, min=1, max=100, description="points")
w.jslink((rows, "value"), (table, "max_rows"))
w.jslink((points, "value"), (plot, "window"))
display(rows, table, points, plot)
"""


def test_max_rows_and_window_change_on_a_shown_table_and_plot(browser: Any, server: Any) -> None:
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(
        cells=[new_code_cell(RESIZE)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    page, _ = _open_and_run(browser, server, "lab", nb)
    try:
        table = page.locator(".lsnb-table.lsnb-live")
        table.wait_for(timeout=60_000)
        canvas = page.locator(".lsnb-plot.lsnb-live canvas").first
        wait_until(lambda: _series_pixels(canvas) > 50, timeout=30, message="the plot drew")
        for value, first, count in (("12", "59", 12), ("3", "59", 3), ("40", "59", 40)):
            # typed into a box linked in the browser: the front end changes the trait
            box = page.locator(".widget-inline-hbox:has-text('rows') input")
            box.fill(value)
            box.press("Enter")
            wait_until(lambda c=count: table.locator("tbody tr").count() == c, timeout=15,
                       message=f"{count} rows shown")  # fmt: skip
            # the newest row first, the oldest one shown is the right one
            assert table.locator("tbody tr td").nth(2).text_content() == f"{float(first)}"
            assert table.locator("tbody tr").last.locator("td").nth(2).text_content() == f"{60.0 - count}"
        shot(table, "lab-table-resized")
        wide = _series_pixels(canvas)
        box = page.locator(".widget-inline-hbox:has-text('points') input")
        box.fill("6")
        box.press("Enter")
        wait_until(lambda: 0 < _series_pixels(canvas) < wide / 4, timeout=15, message="fewer points drawn")
        shot(page.locator(".lsnb-plot.lsnb-live").first, "lab-plot-resized")
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "resize-failure.png"))
        raise
    finally:
        page.close()


def test_hostile_strings_are_text_in_the_live_plot_graph_and_panel(browser: Any, server: Any) -> None:
    """The hostile string as series and field names, a title, node, port and spec names, a
    failure, an option value, a log record and a traceback: text everywhere, no element made."""
    page, dialogs = _open_and_run(browser, server, "lab", hostile_notebook())
    try:
        # the plot: drawn (a series of strings it cannot draw does not stop it), named as text
        plot = page.locator(".lsnb-plot.lsnb-live").first
        plot.wait_for(timeout=60_000)
        canvas = plot.locator("canvas").first
        wait_until(lambda: _series_pixels(canvas) > 50, timeout=30, message="the plot drew its series")
        assert f"plot {HOSTILE}" in (plot.locator(".lsnb-header").text_content() or "")
        assert plot.locator(".u-legend .u-label").all_text_contents() == ["seq", HOSTILE, "words"]
        shot(plot, "hostile-plot")
        # the graph: flow, port, node and spec names, and the failure, as text
        graph = page.locator(".lsnb-graph.lsnb-live").first
        failed = graph.locator(".lsnb-node.lsnb-status-failed")
        failed.wait_for(timeout=60_000)
        assert f"flow {HOSTILE}" in (graph.locator(".lsnb-header").text_content() or "")
        assert failed.get_attribute("data-node") == f"label {HOSTILE}"
        assert failed.locator(".lsnb-node-name").text_content() == f"label {HOSTILE}"
        assert failed.locator(".lsnb-node-status").text_content() == f"spec {HOSTILE} · failed"
        assert f"failed on {HOSTILE}" in (failed.locator("title").text_content() or "")
        assert f"in {HOSTILE}" in graph.locator(".lsnb-port-name").all_text_contents()
        failed.click()
        detail = graph.locator("pre.lsnb-error")
        wait_until(lambda: f"failed on {HOSTILE}" in (detail.text_content() or ""), timeout=10)
        shot(graph, "hostile-graph")
        # the panel: the option value, the log record and the traceback, as text
        panel = page.locator(".lsnb-panel.lsnb-live").first
        panel.locator(".lsnb-badge.lsnb-status-failed").wait_for(timeout=30_000)
        assert f"panel {HOSTILE}" in (panel.locator(".lsnb-header").text_content() or "")
        assert HOSTILE in (panel.locator(".lsnb-options").text_content() or "")
        logs = panel.locator(".lsnb-logs")
        wait_until(lambda: f"seen {HOSTILE}" in (logs.text_content() or ""), timeout=10)
        assert f"ValueError: traceback {HOSTILE}" in (panel.locator("pre.lsnb-error").text_content() or "")
        shot(panel, "hostile-panel")
        # nothing was made from it, live or in the (hidden) snapshots, and its onerror never ran
        made = page.evaluate(
            "document.querySelectorAll('img[src=\"x\"], [onerror], .lsnb-widget img, .lsnb-snapshot img')"
            ".length"
        )
        assert made == 0
        assert not dialogs  # (filled as playwright is called: the calls above let it see any)
        # ...which this page would have shown: the same string put in as markup runs its onerror
        page.evaluate(f"document.createElement('div').innerHTML = {HOSTILE!r}")

        def alerted() -> bool:
            page.evaluate("0")  # a call into playwright lets the dialog event in
            return dialogs == ["1"]

        wait_until(alerted, timeout=10, message="the onerror of markup ran")
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "hostile-failure.png"))
        raise
    finally:
        page.close()


def test_the_default_html_export_reads_offline_in_chromium(browser: Any, tmp_path: Path) -> None:
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = live_notebook(n=300)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    page_html, _ = HTMLExporter().from_notebook_node(nb)
    path = tmp_path / "live.html"
    path.write_text(page_html)
    context = browser.new_context(offline=True)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(path.as_uri())
        snapshots = page.locator(".lsnb-snapshot")
        wait_until(lambda: snapshots.count() >= 6, timeout=20)
        assert all(snapshots.nth(i).is_visible() for i in range(snapshots.count()))
        first = snapshots.first.text_content() or ""
        assert "300 events" in first and "299" in first
        graph = snapshots.nth(4).text_content() or ""
        assert all(n in graph for n in ("sensor", "label", "explode"))
        # plots and the graph are drawings here; their text versions are hidden
        for i in (1, 2, 4):
            assert snapshots.nth(i).locator("svg").is_visible()
            assert not snapshots.nth(i).locator(".lsnb-text").is_visible()
        box = snapshots.nth(4).locator("g[data-node='explode'] rect").bounding_box()
        assert box and box["width"] > 50
        assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
        assert HOSTILE in (snapshots.nth(3).text_content() or "")
        assert not dialogs
        shot(snapshots.first, "static-table")
        shot(snapshots.nth(1), "static-plot")
        shot(snapshots.nth(4), "static-graph")
    finally:
        context.close()


def test_a_saved_notebook_opened_without_its_kernel_shows_its_snapshots_as_text(
    browser: Any, server: Any, tmp_path: Path
) -> None:
    # Executed elsewhere, so JupyterLab does not trust it: it sanitizes the
    # snapshots' HTML, which removes SVG. Their text versions show instead.
    from nbclient import NotebookClient

    nb = live_notebook(n=300)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    name = f"saved-{uuid.uuid4().hex[:6]}.ipynb"
    nbformat.write(nb, Path(server.root) / name)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(f"{server.url}/lab/workspaces/{uuid.uuid4().hex}/tree/{name}?reset&token={server.token}")
        snapshots = page.locator(".lsnb-snapshot")
        wait_until(lambda: snapshots.count() >= 6, timeout=60)
        assert page.locator(".lsnb-snapshot svg").count() == 0  # sanitized away
        graph = snapshots.nth(4)
        text = graph.locator(".lsnb-text")
        assert text.is_visible() and not graph.locator(".lsnb-drawing").is_visible()
        lines = text.locator("li").all_text_contents()
        failed = "explode (explode): failed — ValueError: oven on fire"
        assert any(line.startswith(failed) for line in lines), lines
        assert "port orders → sensor: 1" in lines  # the flow fails before the sensor's 30 values are out
        assert any(re.fullmatch(r"sensor → label: [1-9]\d*", line) for line in lines), lines
        plot = snapshots.nth(1).locator(".lsnb-text")
        assert plot.is_visible() and "value" in (plot.text_content() or "")
        assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
        assert not dialogs
        shot(graph, "lab-saved-graph-as-text")
        shot(snapshots.nth(1), "lab-saved-plot-as-text")
    finally:
        page.close()


def test_without_chromium_the_browser_tests_fail_in_ci_and_skip_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import browser as b

    monkeypatch.setattr(b.shutil, "which", lambda name: None)
    monkeypatch.setattr(b.os.path, "exists", lambda path: False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium"):
        b.chromium_path()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        b.chromium_path()


FORM = """\
import livestack_nb as ls
from typing import Literal
from pydantic import BaseModel, Field

class Click(BaseModel):
    by: int = Field(1, ge=1, le=10)
    who: Literal["chef", "guest"] = "guest"

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


@pytest.mark.parametrize("ui", ["lab", "notebook7"])
def test_a_job_input_form_feeds_a_live_counter_and_shows_errors_by_the_field(
    browser: Any, server: Any, ui: str
) -> None:
    page, _ = _open_and_run(browser, server, ui, nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(FORM)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    ))  # fmt: skip
    try:
        form = page.locator(".lsnb-input")
        form.wait_for(timeout=60_000)
        table = page.locator(".lsnb-table.lsnb-live")
        table.wait_for(timeout=60_000)
        by = form.locator(".lsnb-field-by input")
        by.fill("2")
        by.press("Enter")
        form.locator(".lsnb-field-who select").select_option("chef")
        for clicks in (1, 2, 3):
            form.locator("button.lsnb-feed").click()
            wait_until(lambda c=clicks: _count(page) == c, timeout=15, message=f"{clicks} clicks counted")
        assert table.locator("tbody tr td").nth(2).text_content() == "6"
        assert form.locator(".lsnb-input-status").text_content() == "fed 3"
        shot(page.locator(".jp-OutputArea").first, f"{ui}-job-input-fed")
        # a value the type refuses: the error by its field, nothing fed
        by.fill("50")
        by.press("Enter")
        form.locator("button.lsnb-feed").click()
        error = form.locator(".widget-hbox:has(.lsnb-field-by) .lsnb-field-error")
        wait_until(lambda: error.text_content() == "Input should be less than or equal to 10", timeout=15)
        assert form.locator(".widget-hbox:has(.lsnb-field-who) .lsnb-field-error").text_content() == ""
        shot(form, f"{ui}-job-input-error")
        assert _count(page) == 3
        # End: the job ends, the table says so
        form.locator("button.lsnb-end").click()
        wait_until(lambda: "ended" in (table.locator(".lsnb-header").text_content() or ""), timeout=15)
        assert form.locator("button.lsnb-feed").is_disabled()
        # the form's static snapshot is hidden next to it
        assert not page.locator(".lsnb-snapshot").first.is_visible()
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / f"{ui}-job-input-failure.png"))
        raise
    finally:
        page.close()


FEEDING = """\
import itertools, time
import livestack_nb as ls

slow = ls.JobSpec("slow", input=int, output=int)
slow.define_worker(lambda x: x)

def paced():
    for i in itertools.count():
        time.sleep(0.001)
        yield i

counted = slow.start()
done = counted.feed_from(range(20_000))      # a known length: a bar with an ETA
endless = slow.start()
feeding = endless.feed_from(paced())        # no length: a bar without an end, and Cancel
display(ls.widgets.JobPanel(counted))
ls.widgets.JobPanel(endless)
"""


def test_the_job_panel_shows_a_feeds_progress_and_its_cancel_button_stops_it(
    browser: Any, server: Any
) -> None:
    page, _ = _open_and_run(browser, server, "lab", nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(FEEDING)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    ))  # fmt: skip
    try:
        panels = page.locator(".lsnb-panel.lsnb-live")
        wait_until(lambda: panels.count() == 2, timeout=60)
        known, endless = panels.nth(0), panels.nth(1)
        text = known.locator(".lsnb-feeding-text")
        wait_until(lambda: "20,000/20,000" in (text.text_content() or ""), timeout=30, message="fed")
        assert (text.text_content() or "").startswith("done default: 20,000/20,000")
        bar = known.locator("progress")
        assert bar.evaluate("b => [b.value, b.max]") == [20000, 20000]
        assert known.locator(".lsnb-feeding-cancel").count() == 0
        row = endless.locator(".lsnb-feeding-feeding")
        row.wait_for(timeout=30_000)
        progress = r"feeding default: [\d,]+ · [\d.k]+/s"
        wait_until(lambda: re.search(progress, row.text_content() or ""), timeout=30)
        shot(endless, "lab-panel-feeding")
        endless.locator(".lsnb-feeding-cancel").click()
        done = endless.locator(".lsnb-feeding-cancelled")
        done.wait_for(timeout=15_000)
        assert endless.locator(".lsnb-feeding-cancel").count() == 0
        shot(endless, "lab-panel-feed-cancelled")
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "feeding-failure.png"))
        raise
    finally:
        page.close()


TIME_PLOT = """\
from livestack_nb.stream import DataStream
from livestack_nb.widgets import StreamPlot

s = DataStream("shifts")
ovens = lambda i: {f"oven{j}": (i * (j + 1)) % 17 for j in range(10)}
s.push([{"ts": 1_767_225_600 + 600 * i, **ovens(i)} for i in range(60)])
StreamPlot(s, x="ts", window=60)
"""


def test_a_plot_of_a_time_field_with_ten_series(browser: Any, server: Any) -> None:
    page, _ = _open_and_run(browser, server, "lab", nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(TIME_PLOT)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    ))  # fmt: skip
    try:
        plot = page.locator(".lsnb-plot.lsnb-live").first
        plot.wait_for(timeout=60_000)
        canvas = plot.locator("canvas").first
        wait_until(lambda: _series_pixels(canvas) > 50, timeout=30, message="the plot drew")
        assert plot.locator(".u-legend .u-label").all_text_contents()[:3] == ["ts", "oven0", "oven1"]
        # the cursor's x readout is a date and time, not epoch seconds
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        readout = plot.locator(".u-legend .u-series").first.locator(".u-value")
        wait_until(lambda: re.search(r"2026|1/1/26|\d:\d\d", readout.text_content() or ""), timeout=10)
        shot(plot, "lab-plot-time-ten-series")
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "time-plot-failure.png"))
        raise
    finally:
        page.close()


MEDIA = """\
import sys
sys.path.insert(0, {tests!r})
from media_support import png_bytes, wav_bytes
from livestack_nb.stream import DataStream

s = DataStream("media")
s.push([png_bytes(rgb=(0, 114, 178)), wav_bytes(), b"<img src=x onerror=alert(1)>"])
s
"""


def test_images_and_audio_in_a_table_are_built_from_their_bytes(browser: Any, server: Any) -> None:
    tests = str(Path(__file__).resolve().parent)
    page, dialogs = _open_and_run(browser, server, "lab", nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(MEDIA.format(tests=tests))],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    ))  # fmt: skip
    try:
        table = page.locator(".lsnb-table.lsnb-live")
        table.wait_for(timeout=60_000)
        img = table.locator("img.lsnb-thumb")
        img.wait_for(timeout=30_000)
        # decoded from a Blob of the bytes: its real size, its pixels the PNG's colour
        wait_until(lambda: img.evaluate("i => i.complete && i.naturalWidth") == 24, timeout=15)
        assert (img.get_attribute("src") or "").startswith("blob:")
        pixel = img.evaluate(
            """i => { const c = document.createElement('canvas'); c.width = i.naturalWidth;
                      c.height = i.naturalHeight; const g = c.getContext('2d'); g.drawImage(i, 0, 0);
                      return Array.from(g.getImageData(5, 5, 1, 1).data); }"""
        )
        assert pixel == [0, 114, 178, 255]
        audio = table.locator("audio.lsnb-audio")
        assert (audio.get_attribute("src") or "").startswith("blob:")
        wait_until(lambda: 0.45 < (audio.evaluate("a => a.duration") or 0) < 0.55, timeout=15,
                   message="the player read the WAV's length")  # fmt: skip
        # bytes that are no media stay text, and make no element
        table.locator("td", has_text="<img src=x onerror=alert(1)>").wait_for(timeout=10_000)
        assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
        assert not dialogs
        shot(table, "lab-table-media")
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "media-failure.png"))
        raise
    finally:
        page.close()
