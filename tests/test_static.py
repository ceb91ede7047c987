"""A notebook executed headless and exported with nbconvert's defaults reads well offline."""

from __future__ import annotations

import html as htmllib
import re

import nbformat
from live_notebook import HOSTILE, live_notebook
from nbclient import NotebookClient
from nbconvert import HTMLExporter


def _run(tmp_path) -> nbformat.NotebookNode:
    nb = live_notebook(n=400)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    return nb


def test_the_default_html_export_shows_latest_values_and_graph_nodes(tmp_path):
    nb = _run(tmp_path)
    page, _ = HTMLExporter().from_notebook_node(nb)
    (tmp_path / "live.html").write_text(page)
    text = htmllib.unescape(re.sub(r"<[^>]+>", " ", page))
    # the table's snapshot was refreshed after the job ended: its last value is there
    assert re.search(r"\b399\b", text), "the last row of the table is missing"
    assert "400 events" in text and "ended" in text
    # the flow graph's nodes, and the failed one with its error
    for node in ("sensor", "label", "explode"):
        assert node in text
    assert "oven on fire" in text
    # the hostile value is text, never markup
    assert HOSTILE not in page
    assert htmllib.escape(HOSTILE) in page or "&lt;img src=x onerror=alert(1)&gt;" in page


def test_widget_outputs_are_followed_by_their_snapshot(tmp_path):
    nb = _run(tmp_path)
    for cell in nb.cells[2:7]:
        per_widget = 2 if 'kind="bar"' in cell.source else 1
        kinds = [
            "widget" if "application/vnd.jupyter.widget-view+json" in o.get("data", {}) else "snapshot"
            for o in cell.outputs
            if o.output_type in ("display_data", "execute_result")
        ]
        assert kinds == ["widget", "snapshot"] * per_widget, (cell.source, kinds)
        snapshot = next(o for o in cell.outputs if "text/html" in o.get("data", {}))
        assert "lsnb-snapshot" in snapshot["data"]["text/html"]
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata.get("widgets", {})
