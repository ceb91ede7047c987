"""The graph of a stepped run as a stage, in real JupyterLab in headless Chromium: the buttons step
and play the flow, a dot moves along its edge, the node at work is outlined, values stay text, a
click on a dot or on a table's row lights up the datapoint's journey."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from browser import ARTIFACTS, chromium, chromium_path, jupyter_server, shot
from test_browser import _open_and_run
from widget_support import HOSTILE

from livestack_nb.testing import wait_until

STAGE = f"""\
import livestack_nb as ls
from livestack_nb.widgets import FlowGraph, StreamTable

@ls.job_spec
def knead(order: str) -> str:
    return f"dough({{order}})"

@ls.job_spec
def bake(dough: str) -> str:
    return f"baked {{dough}}"

flow = ls.Liveflow("pizzeria")
flow.connect(knead, bake)
flow.expose(knead.input(), "orders")
flow.expose(bake.output(), "boxes")
run = flow.start(step=True)
run.input("orders").feed_many(["margherita", {HOSTILE!r}, "funghi"])
display(FlowGraph(run))
StreamTable(run.output("boxes"))
"""

IN, MID, OUT = "port:in:orders", "knead/default->bake/default", "port:out:boxes"

# Records where the moving dot is drawn, every frame, into window.__lsnbTrail.
TRAIL = """() => {
  window.__lsnbTrail = [];
  const look = () => {
    for (const g of document.querySelectorAll('.lsnb-dot-moving')) {
      const t = g.getAttribute('transform');
      if (t && window.__lsnbTrail[window.__lsnbTrail.length - 1] !== t) window.__lsnbTrail.push(t);
    }
    if (window.__lsnbTrail.length < 500) requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium_path()
    root = tmp_path_factory.mktemp("stage") / "notebooks"
    root.mkdir()
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyter_server(root, ARTIFACTS / "jupyter-server-stage.log") as s:
        yield s


@pytest.fixture(scope="module")
def browser(server: Any) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _xy(transform: str) -> tuple[float, float]:
    m = re.fullmatch(r"translate\(([-\d.]+) ([-\d.]+)\)", transform)
    assert m, transform
    return float(m.group(1)), float(m.group(2))


def _edge_count(graph: Any, edge: str) -> str:
    """The count label of ``edge`` (the label follows its path in the drawing)."""
    return str(
        graph.evaluate(
            """(g, id) => { const p = g.querySelector(`path.lsnb-edge[data-edge="${CSS.escape(id)}"]`);
                           return p && p.nextElementSibling ? p.nextElementSibling.textContent : null; }""",
            edge,
        )
    )


@pytest.mark.parametrize("ui", ["lab", "notebook7"])
def test_the_stage_steps_plays_and_shows_a_journey(browser: Any, server: Any, ui: str) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(STAGE)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    page, dialogs = _open_and_run(browser, server, ui, nb)
    try:
        graph = page.locator(".lsnb-graph.lsnb-live").first
        graph.wait_for(timeout=60_000)
        controls = graph.locator(".lsnb-stage-controls")
        controls.wait_for(state="visible", timeout=30_000)
        info = controls.locator(".lsnb-stage-info")
        wait_until(lambda: info.text_content() == "0 hops · 3 waiting", timeout=20)
        # the first value waits at the gate into knead: a hollow dot at the start of its edge
        waiting = graph.locator(f".lsnb-dot-waiting[data-edge='{IN}']")
        waiting.wait_for(timeout=10_000)
        assert waiting.locator(".lsnb-dot-text").text_content() == "margherita +2"
        shot(graph, f"{ui}-stage-before")

        # Step: one dot travels from the port to knead; its count shows when it arrives
        page.evaluate(TRAIL)
        controls.locator("button.lsnb-stage-step").click()
        moving = graph.locator(".lsnb-dot-moving")
        moving.wait_for(timeout=10_000)
        assert moving.locator(".lsnb-dot-text").text_content() == "margherita"
        shot(graph, f"{ui}-stage-moving")
        parked = graph.locator(f".lsnb-dot-parked[data-edge='{IN}']")
        parked.wait_for(timeout=10_000)
        shot(graph, f"{ui}-stage-after-one-step")
        assert page.evaluate("document.querySelectorAll('img[src=\"x\"], [onerror]').length") == 0
        trail = [_xy(t) for t in page.evaluate("window.__lsnbTrail")]
        assert len(trail) >= 4, trail  # drawn in several frames, not jumped
        (x0, y0), (x1, y1) = trail[0], trail[-1]
        assert abs(x1 - x0) + abs(y1 - y0) > 30, trail
        end = _xy(parked.get_attribute("transform") or "")
        assert abs(end[0] - x1) + abs(end[1] - y1) < 3  # parked where it stopped
        wait_until(lambda: _edge_count(graph, IN) == "1", timeout=10)
        assert _edge_count(graph, MID) == "0"
        # the node that took the value is at work
        graph.locator(".lsnb-node[data-node='knead'].lsnb-at-work").wait_for(timeout=10_000)
        assert graph.locator(".lsnb-node.lsnb-at-work").count() == 1
        wait_until(lambda: info.text_content() == "1 hop · 3 waiting", timeout=10)

        # the oldest waiting hop goes first: the two other orders into knead, then
        # knead's first dough on to bake, which is then at work
        for n in (2, 3, 4):
            controls.locator("button.lsnb-stage-step").click()
            wait_until(lambda n=n: (info.text_content() or "").startswith(f"{n} hops"), timeout=10)
        wait_until(lambda: _edge_count(graph, IN) == "3", timeout=10)
        graph.locator(f".lsnb-dot-parked[data-edge='{MID}']").wait_for(timeout=10_000)
        assert graph.locator(f".lsnb-dot-parked[data-edge='{MID}'] .lsnb-dot-text").text_content() == (
            "dough(margherita)"
        )
        graph.locator(".lsnb-node[data-node='bake'].lsnb-at-work").wait_for(timeout=10_000)
        wait_until(lambda: _edge_count(graph, MID) == "1", timeout=10)

        # Play fast (the slider at its right end), then Pause once all nine hops are done
        slider = controls.locator("input.lsnb-stage-speed")
        slider.fill("100")
        assert "ms/hop" in (controls.locator(".lsnb-stage-interval").text_content() or "")
        controls.locator("button.lsnb-stage-play").click()
        wait_until(lambda: (info.text_content() or "").startswith("9 hops · 0 waiting"), timeout=30)
        assert controls.locator("button.lsnb-stage-step").is_disabled()
        controls.locator("button.lsnb-stage-pause").click()
        wait_until(lambda: info.text_content() == "9 hops · 0 waiting", timeout=15)
        assert not controls.locator("button.lsnb-stage-step").is_disabled()
        for edge in (IN, MID, OUT):
            wait_until(lambda e=edge: _edge_count(graph, e) == "3", timeout=10)
        shot(graph, f"{ui}-stage-played")

        # a click on the last box's dot: its journey back to the order lights up
        graph.locator(f".lsnb-dot-parked[data-edge='{OUT}'] circle").click()
        journey = graph.locator(".lsnb-journey-list")
        wait_until(lambda: "outside input: funghi" in (journey.text_content() or ""), timeout=10)
        stops = journey.locator("li").all_text_contents()
        assert stops == ["outside input: funghi", "knead: dough(funghi)", "bake: baked dough(funghi)"]
        lit = graph.locator("path.lsnb-edge.lsnb-journey").evaluate_all("ps => ps.map(p => p.dataset.edge)")
        assert sorted(lit) == sorted([IN, MID, OUT])
        colour = graph.locator("path.lsnb-edge.lsnb-journey").first.evaluate(
            "p => getComputedStyle(p).stroke"
        )
        assert colour == "rgb(204, 121, 167)"
        labels = graph.locator(".lsnb-journey-label").all_text_contents()
        assert labels == ["1. funghi", "2. dough(funghi)", "3. baked dough(funghi)"]
        shot(graph, f"{ui}-stage-journey")

        # a click on the table's first row: the journey of the first box
        table = page.locator(".lsnb-table.lsnb-live").first
        row = table.locator("tbody tr[data-seq='0']")
        row.wait_for(timeout=10_000)
        row.click()
        wait_until(lambda: "outside input: margherita" in (journey.text_content() or ""), timeout=10)
        assert "lsnb-selected" in (row.get_attribute("class") or "")
        shot(page.locator(".jp-Cell").first, f"{ui}-stage-journey-from-table")
        # the hostile order's journey: its value is text on the graph and in the list, nothing made of it
        table.locator("tbody tr[data-seq='1']").click()
        wait_until(lambda: f"outside input: {HOSTILE}" in (journey.text_content() or ""), timeout=10)
        assert graph.locator(".lsnb-journey-label").first.text_content() == f"1. {HOSTILE[:23]}…"
        assert page.evaluate("document.querySelectorAll('img[src=\"x\"], [onerror]').length") == 0
        assert not dialogs
        shot(graph, f"{ui}-stage-hostile-journey")
        # the clear button: nothing lit
        journey.locator("button.lsnb-journey-clear").click()
        wait_until(lambda: graph.locator("path.lsnb-edge.lsnb-journey").count() == 0, timeout=10)
        assert not dialogs
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / f"{ui}-stage-failure.png"))
        raise
    finally:
        page.close()
