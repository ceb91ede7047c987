"""A notebook executed headless and exported with nbconvert's defaults reads well offline."""

from __future__ import annotations

import html as htmllib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from live_notebook import HOSTILE, live_notebook
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from pydantic import BaseModel
from widget_support import parse_and_explode

import livestack_nb as ls
import livestack_nb.widgets as lw
from livestack_nb.stream import DataStream
from livestack_nb.testing import wait_until
from livestack_nb.widgets._svg import PALETTE, STATUS_COLOURS

ROOT = Path(__file__).resolve().parent.parent


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
    # the saved plots and graph are drawings with their names in them
    graph = _svg(nb.cells[5].outputs[-1]["data"]["text/html"])
    assert {"sensor", "label", "explode", "orders"} <= set(_texts(graph))
    assert _node(graph, "explode").get("data-status") == "failed"
    for out in nb.cells[3].outputs:
        if "lsnb-snapshot" in out.get("data", {}).get("text/html", ""):
            assert "value" in " ".join(_texts(_svg(out["data"]["text/html"])))
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata.get("widgets", {})


# -- the snapshots' SVG, widget by widget ------------------------------------------------------

SVG_NS = "{http://www.w3.org/2000/svg}"


def _svg(html: str) -> ET.Element:
    """The one SVG drawing in a snapshot, parsed (so it must be well-formed XML)."""
    found = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    assert len(found) == 1, html
    return ET.fromstring(found[0])


def _tags(root: ET.Element) -> set[str]:
    return {e.tag.removeprefix(SVG_NS) for e in root.iter()}


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG_NS}text")]


def _node(root: ET.Element, name: str) -> ET.Element:
    found = [g for g in root.iter(f"{SVG_NS}g") if g.get("data-node") == name]
    assert len(found) == 1, name
    return found[0]


def _width(root: ET.Element) -> float:
    return float(root.get("width", "0"))


def test_a_failed_flow_snapshot_is_an_svg_with_the_failed_node_red_and_its_error(comms, env):
    parse, explode = parse_and_explode()

    flow = ls.Liveflow("boom")
    hostile = parse.labeled(HOSTILE)
    flow.connect(hostile, explode)
    flow.expose(hostile.input(), "orders")
    run = flow.start()
    graph = lw.FlowGraph(run)
    run.input("orders").feed(1)
    run.input("orders").end()
    with pytest.raises(ls.JobFailed):
        run.wait(timeout=10)
    wait_until(lambda: graph.state()["nodes"]["explode"].get("error"), timeout=5)
    html = graph.snapshot_html()
    root = _svg(html)
    assert "img" not in _tags(root) and HOSTILE not in html  # the hostile label stays text
    assert {HOSTILE, "explode", "orders"} <= set(_texts(root))
    failed = _node(root, "explode")
    assert failed.get("data-status") == "failed"
    fill, stroke = STATUS_COLOURS["failed"]
    assert [(r.get("fill"), r.get("stroke")) for r in failed.iter(f"{SVG_NS}rect")] == [(fill, stroke)]
    assert f"ValueError: bad {HOSTILE}" in (failed.findtext(f"{SVG_NS}title") or "")
    assert _node(root, HOSTILE).get("data-status") != "failed"
    # the arrows carry their counts: one value went in through the port and one along the edge
    assert _texts(root).count("1") == 2
    # the error is also written out under the drawing, for a reader without a pointer
    drawing, text = html.split('<div class="lsnb-text">')
    assert "explode failed: ValueError: bad &lt;img" in drawing
    # and where SVG is sanitized away, a list says the same
    assert "</span> (explode): failed — ValueError: bad &lt;img src=x onerror=alert(1)&gt;</li>" in text
    assert f"<li>port orders → {htmllib.escape(HOSTILE)}: 1</li>" in text


def test_a_flow_with_a_loop_renders(comms, env):
    class Dough(BaseModel):
        risen: int = 0

    @ls.job_spec
    def rise(d: Dough) -> Dough:
        return Dough(risen=d.risen + 1)

    @ls.job_spec(inputs={"default": Dough}, outputs={"again": Dough, "ready": Dough})
    def check(job: ls.LiveJob):
        for d in job.input:
            job.output("ready" if d.risen >= 3 else "again").emit(d)

    flow = ls.Liveflow("proofing")
    flow.connect(rise, check)
    flow.connect(check.output("again"), rise)
    flow.expose(rise.input(), "dough")
    flow.expose(check.output("ready"), "ready")
    shape_only = _svg(lw.FlowGraph(flow).snapshot_html())
    assert {"rise", "check", "dough", "ready"} <= set(_texts(shape_only))
    run = flow.start()
    graph = lw.FlowGraph(run)
    run.input("dough").feed_many([Dough(), Dough(risen=2)])
    run.input("dough").end()
    run.wait(timeout=10)
    # the first dough goes round twice (risen 1, 2), the second is ready at once
    wait_until(lambda: graph.state()["edges"]["check/again->rise/default"]["count"] == 2, timeout=5)
    root = _svg(graph.snapshot_html())
    assert _node(root, "rise").get("data-status") == "completed"
    # rise -> check -> rise: three arrows and their heads, two for the ports
    paths = list(root.iter(f"{SVG_NS}path"))
    assert len(paths) == 2 * 4
    assert {"again: 2", "4"} <= set(_texts(root))


def test_a_long_or_wide_flow_stays_within_the_snapshot_width(comms):
    from livestack_nb.widgets._graph_svg import MAX_WIDTH, graph_svg

    def shape(pairs: list[tuple[str, str]]) -> dict:
        names = list(dict.fromkeys(n for p in pairs for n in p))
        return {
            "nodes": [{"id": n, "spec": n} for n in names],
            "edges": [{"id": f"{a}->{b}", "source": a, "target": b, "label": "default"} for a, b in pairs],
            "ports": [],
        }

    chain = [(f"station_{i}", f"station_{i + 1}") for i in range(30)]
    fan = [("source", f"cook_{i}") for i in range(40)] + [(f"cook_{i}", "pass") for i in range(40)]
    for pairs in (chain, fan):
        root = _svg(graph_svg(shape(pairs), {}))
        assert 0 < _width(root) <= MAX_WIDTH
        assert {n for p in pairs for n in p} <= set(_texts(root))
    # a long chain reads down the page at full size rather than shrunk across it
    root = _svg(graph_svg(shape(chain), {}))
    w, h = (float(v) for v in root.get("viewBox", "").split()[2:])
    assert w == _width(root) and h > w


@pytest.mark.parametrize("kind", ["line", "scatter", "bar"])
def test_a_plot_snapshot_has_axes_a_legend_and_its_kind(comms, kind):
    s = DataStream("readings")
    s.push([{"temp": 20.0 + i % 7, HOSTILE: float(i), "label": "x"} for i in range(30)])
    plot = lw.StreamPlot(s, y=["temp", HOSTILE], kind=kind, window=25)
    html = plot.snapshot_html()
    root = _svg(html)
    assert "img" not in _tags(root) and HOSTILE not in html
    texts = _texts(root)
    # the legend: each field in its colour, with its last value
    assert "temp 21" in texts and f"{HOSTILE} 29" in texts
    swatches = [r.get("fill") for r in root.iter(f"{SVG_NS}rect")]
    assert swatches[:2] == list(PALETTE[:2])
    # the axes: times of day along x, round values along y that span the data
    assert "time (UTC)" in texts
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d(\.\d+)?", t) for t in texts)
    ys = [float(t) for t in texts if re.fullmatch(r"-?\d+(\.\d+)?", t)]
    assert len(ys) >= 3 and min(ys) <= (0 if kind == "bar" else 5) and max(ys) >= 29
    # the kind: a polyline per series, a dot per point, or a bar per point
    series = [e for e in root.iter() if e.get("data-series")]
    assert [e.get("data-series") for e in series] == ["temp", HOSTILE]
    shapes = {"line": "polyline", "scatter": "path", "bar": "path"}[kind]
    assert {e.tag.removeprefix(SVG_NS) for e in series} == {shapes}
    assert [e.get("stroke") or e.get("fill") for e in series] == list(PALETTE[:2])
    # where SVG is sanitized away, the numbers: last, min, max and how many points
    assert re.search(r"<td>temp</td><td>21</td><td>20</td><td>26</td><td>25</td>", html)
    if kind == "line":
        assert all(len(e.get("points", "").split()) == 25 for e in series)
    elif kind == "scatter":
        assert all(e.get("stroke-linecap") == "round" and e.get("d", "").count("M") == 25 for e in series)
    else:
        assert all(e.get("d", "").count("z") == 25 for e in series)


def test_an_empty_plot_says_so(comms):
    s = DataStream("quiet")
    root = _svg(lw.StreamPlot(s, y=["value"]).snapshot_html())
    assert "no data yet" in _texts(root)
    s.push(["not a number"])
    root = _svg(lw.StreamPlot(s).snapshot_html())
    assert "no numeric value to plot" in _texts(root)


def test_the_snapshots_use_the_front_ends_colours():
    css = (ROOT / "labextension" / "style" / "index.css").read_text()
    for status, (fill, stroke) in STATUS_COLOURS.items():
        if status == "idle":
            rule = re.search(r"\.lsnb-node rect \{([^}]*)\}", css)
        else:
            rule = re.search(rf"\.lsnb-node\.lsnb-status-{status} rect \{{([^}}]*)\}}", css)
        assert rule, status
        assert f"fill: {fill};" in rule.group(1), status
        if "stroke:" in rule.group(1):
            assert f"stroke: {stroke};" in rule.group(1), status
    plot_ts = (ROOT / "labextension" / "src" / "plot.ts").read_text()
    colours = re.search(r"const COLOURS = \[([^\]]*)\]", plot_ts)
    assert colours and re.findall(r"'(#[0-9a-f]{6})'", colours.group(1)) == list(PALETTE)


def test_a_plot_of_values_too_far_apart_to_draw_says_so(comms):
    s = DataStream("extremes")
    s.push([1e308, -1e308])  # finite, but their span is not
    root = _svg(lw.StreamPlot(s, y=["value"]).snapshot_html())
    assert "values too far apart to draw" in _texts(root)
