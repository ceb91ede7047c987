"""The flow graph of a stepped run as a stage: what it sends, what its buttons do, journeys,
the table's row clicks and the snapshot of the hops so far (the browser side: test_browser_stage)."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from widget_support import HOSTILE, parse_and_explode

import livestack_nb as ls
import livestack_nb.widgets as lw
from livestack_nb.testing import wait_until

IN, MID, OUT = "port:in:orders", "knead/default->bake/default", "port:out:boxes"


def pizzeria() -> ls.Liveflow:
    """orders -> knead -> bake -> boxes."""

    @ls.job_spec
    def knead(order: str) -> str:
        return f"dough({order})"

    @ls.job_spec
    def bake(dough: str) -> str:
        return f"baked {dough}"

    flow = ls.Liveflow("stage-pizzeria")
    flow.connect(knead, bake)
    flow.expose(knead.input(), "orders")
    flow.expose(bake.output(), "boxes")
    return flow


def hops_sent(graph: lw.FlowGraph) -> list[dict[str, Any]]:
    """Every hop the graph sent, in order (from resets and hop messages)."""
    out: list[dict[str, Any]] = []
    for m in graph.comm.custom():
        if m.get("type") == "reset" and "stage" in m:
            out = list(m["stage"]["hops"])
        elif m.get("type") == "hops":
            out += m["hops"]
    return out


def last_header(graph: lw.FlowGraph) -> dict[str, Any]:
    for m in reversed(graph.comm.custom()):
        if m.get("type") == "hops":
            return m
        if m.get("type") == "reset" and "stage" in m:
            return dict(m["stage"])
    return {}


def test_the_step_button_releases_one_hop_and_the_graph_sends_it_with_its_counts(comms, env):
    run = pizzeria().start(step=True)
    graph = lw.FlowGraph(run)
    assert graph.stepping
    graph.comm.hello()
    reset = next(m for m in graph.comm.custom() if m["type"] == "reset")
    assert reset["stage"]["stepping"] and reset["stage"]["hops"] == [] and reset["stage"]["n_waiting"] == 0

    run.input("orders").feed("margherita")
    # the value waits at its gate: the graph says so, nothing has hopped
    wait_until(lambda: last_header(graph).get("n_waiting") == 1, timeout=5, message="the waiting value sent")
    waiting = last_header(graph)["waiting"]
    assert [(h["edge"], h["text"], h["index"]) for h in waiting] == [(IN, "margherita", -1)]
    assert graph.state()["edges"][IN]["count"] == 0

    for n, (edge, text, at_work) in enumerate(
        [
            (IN, "margherita", "knead"),
            (MID, "dough(margherita)", "bake"),
            (OUT, "baked dough(margherita)", None),
        ]
    ):
        graph.comm.front({"type": "step"})  # the Step button
        wait_until(lambda n=n: len(hops_sent(graph)) == n + 1, timeout=10, message=f"hop {n} sent")
        hop = hops_sent(graph)[n]
        assert (hop["index"], hop["edge"], hop["text"]) == (n, edge, text)
        header = wait_until(lambda a=at_work: (h := last_header(graph))["at_work"] == a and h, timeout=5)
        assert header["released"] == n + 1
        # each edge counts its released hops, not what waits behind its gate
        assert graph.state()["edges"][edge]["count"] == 1
    hop = hops_sent(graph)[0]
    assert hop["source"] is None and hop["target"] == "knead" and hop["target_tag"] == "default"
    assert hop["datapoint"] == run.hops[0].datapoint_id
    assert run.output("boxes").values() == ["baked dough(margherita)"]
    run.input("orders").end()
    run.wait(timeout=10)


def test_the_snapshot_shows_the_hops_so_far_and_the_node_at_work(comms, env):
    run = pizzeria().start(step=True)
    graph = lw.FlowGraph(run)
    run.input("orders").feed_many(["margherita", "funghi"])
    run.step(3)
    html = graph.snapshot_html()
    assert "step mode · 3 hops so far · 2 waiting · at work: bake" in html
    items = re.findall(r"<li>([^<]*)</li>", html.split('class="lsnb-hops"')[1])
    assert items == [
        "outside → knead: margherita",
        "outside → knead: funghi",
        "knead → bake: dough(margherita)",
    ]
    svg = html.split('class="lsnb-text"')[0]
    assert re.search(r'data-node="bake" data-status="[a-z]+" data-at-work="true"', svg)
    assert 'data-at-work="true"' not in svg.split('data-node="knead"')[1].split("</g>")[0]
    # the last value along each edge, on a dot
    assert re.search(r'<g data-dot="knead/default-&gt;bake/default">.*dough\(margherita\)</text>', svg)
    assert re.search(r'<g data-dot="port:in:orders">.*>funghi</text>', svg)
    run.play(interval=0)
    run.input("orders").end()
    run.wait(timeout=10)
    wait_until(lambda: "step mode · 6 hops so far · 0 waiting" in graph.snapshot_html(), timeout=5)


def test_play_pause_and_the_speed_come_from_the_buttons(comms, env):
    run = pizzeria().start(step=True)
    graph = lw.FlowGraph(run)
    graph.comm.hello()
    run.input("orders").feed_many([f"pizza {i}" for i in range(20)])
    graph.comm.front({"type": "play", "interval": 0.05})
    wait_until(lambda: run.playing and len(run.hops) >= 4, timeout=10, message="playing")
    wait_until(lambda: last_header(graph)["interval"] == 0.05, timeout=5)
    graph.comm.front({"type": "pause"})
    wait_until(lambda: not run.playing, timeout=10, message="paused")
    run.pause()  # returns once the hop in progress is done
    stopped = len(run.hops)
    wait_until(lambda: last_header(graph).get("playing") is False, timeout=5)
    assert len(run.hops) == stopped < 60  # nothing more released
    # a new speed while playing: the run goes on at it; too fast is held at the fastest
    graph.comm.front({"type": "play", "interval": 0.0001})
    wait_until(lambda: len(run.hops) >= stopped + 3, timeout=10)
    wait_until(lambda: last_header(graph)["interval"] == 0.02, timeout=5)
    graph.comm.front({"type": "pause"})
    wait_until(lambda: not run.playing, timeout=10)
    run.pause()
    # a bad interval is said under the buttons, the kernel goes on
    graph.comm.front({"type": "play", "interval": "fast"})
    wait_until(lambda: "'fast'" in last_header(graph).get("note", ""), timeout=5)
    assert not run.playing
    run.play(interval=0)
    run.input("orders").end()
    run.wait(timeout=20)
    assert len(run.output("boxes").values()) == 20


def test_a_journey_lights_up_the_lineage_back_to_the_outside_input(comms, env):
    run = pizzeria().start(step=True)
    graph = lw.FlowGraph(run)
    graph.comm.hello()
    run.input("orders").feed_many(["margherita", "funghi"])
    run.play(interval=0)
    run.input("orders").end()
    run.wait(timeout=10)
    boxed = run.output("boxes").datapoints()[1]
    assert boxed.value == "baked dough(funghi)"
    # clicking its dot (on the out port's edge) asks the kernel for its journey
    graph.comm.front({"type": "journey", "datapoint": boxed.id})
    msg = wait_until(lambda: [m for m in graph.comm.custom() if m["type"] == "journey"], timeout=5)[-1]
    stops = msg["journey"]["stops"]
    assert [(s["where"], s["node"], s["text"]) for s in stops] == [
        ("outside input", None, "funghi"),
        ("knead", "knead", "dough(funghi)"),
        ("bake", "bake", "baked dough(funghi)"),
        ("outside output", None, "baked dough(funghi)"),
    ]
    assert [s["edges"] for s in stops] == [[IN], [MID], [OUT], []]  # one value's label an edge
    assert stops[-1]["datapoint"] == boxed.id
    assert stops[0]["datapoint"] == run.hops[1].datapoint_id  # the second order fed
    # the snapshot shows it too: the path's edges lit, the stops listed
    html = graph.snapshot_html()
    lit = set(re.findall(r'data-edge="([^"]+)" data-journey="true"', html))
    assert lit == {IN, MID.replace(">", "&gt;"), OUT}
    assert (
        f"journey of {boxed.id}: outside input: funghi → knead: dough(funghi) → bake: baked dough(funghi)"
        " → outside output: baked dough(funghi)" in html
    )
    # clicked again: cleared
    graph.comm.front({"type": "journey", "datapoint": None})
    wait_until(
        lambda: [m for m in graph.comm.custom() if m["type"] == "journey"][-1]["journey"] is None, timeout=5
    )
    assert "journey of" not in graph.snapshot_html()
    with pytest.raises(TypeError, match="datapoint id"):
        graph.show_journey(7)
    # an id that is not there is said, naming it
    found = graph.show_journey("no-such-stream:7")
    assert found is not None and found["stops"] == [] and "no-such-stream:7" in found["error"]


def test_a_row_of_a_table_of_the_run_shows_its_journey_on_the_graph(comms, env):
    run = pizzeria().start(step=True)
    graph = lw.FlowGraph(run)
    table = lw.StreamTable(run.output("boxes"))
    other = lw.StreamTable(ls.DataStream("elsewhere"))
    table.comm.hello()
    other.comm.hello()
    assert next(m for m in table.comm.custom() if m["type"] == "reset")["journeys"] is True
    assert next(m for m in other.comm.custom() if m["type"] == "reset")["journeys"] is False
    run.input("orders").feed_many(["margherita", "funghi"])
    run.play(interval=0)
    run.input("orders").end()
    run.wait(timeout=10)
    table.comm.front({"type": "journey", "seq": "1"})  # the row whose # is 1
    msg = wait_until(lambda: [m for m in graph.comm.custom() if m["type"] == "journey"], timeout=5)[-1]
    assert msg["journey"]["datapoint"] == f"{run.output('boxes').stream_id}:1"
    assert msg["journey"]["stops"][0]["text"] == "funghi"
    with pytest.raises(ValueError, match="sequence number"):
        table.show_journey(-1)


def test_journeys_need_a_stepped_run(comms, env):
    flow = pizzeria()
    run = flow.start()
    graph = lw.FlowGraph(run)
    assert not graph.stepping
    with pytest.raises(ValueError, match="stepped run"):
        graph.show_journey("x:0")
    graph.comm.hello()
    graph.comm.front({"type": "step"})  # no stage: ignored, nothing breaks
    reset = next(m for m in graph.comm.custom() if m["type"] == "reset")
    assert "stage" not in reset
    run.input("orders").end()
    run.wait(timeout=10)


def test_a_hostile_value_hops_as_text(comms, env):
    run = pizzeria().start(step=True)
    graph = lw.FlowGraph(run)
    graph.comm.hello()
    run.input("orders").feed(HOSTILE)
    run.step()
    wait_until(lambda: hops_sent(graph), timeout=5)
    assert hops_sent(graph)[0]["text"] == HOSTILE  # sent as text: the view sets it with textContent
    html = graph.snapshot_html()
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    run.play(interval=0)
    run.input("orders").end()
    run.wait(timeout=10)


def test_a_fast_play_is_coalesced_and_every_hop_counted(comms, env):
    run = pizzeria().start(step=True)
    graph = lw.FlowGraph(run)
    graph.comm.hello()
    run.input("orders").feed_many([str(i) for i in range(300)])
    run.input("orders").end()
    run.play(interval=0)
    run.wait(timeout=60)
    wait_until(lambda: last_header(graph).get("released") == 900, timeout=10)
    msgs = [m for m in graph.comm.custom() if m["type"] == "hops"]
    assert all(len(m["hops"]) <= 50 for m in msgs)
    assert sum(len(m["hops"]) + m["folded"] for m in msgs) == 900  # each hop sent or folded once
    assert graph.state()["edges"] == {e: {"count": 300, "rate": 0.0} for e in (IN, MID, OUT)}
    assert graph.messages_sent < 900 / 5  # far fewer messages than hops


def test_a_single_stepped_job_is_a_stage_too(comms, env):
    @ls.job_spec
    def shout(s: str) -> str:
        return s.upper()

    job = shout.start(step=True)
    graph = lw.FlowGraph(job)
    assert graph.stepping
    graph.comm.hello()
    job.feed("hi")
    job.step(2)
    wait_until(lambda: len(hops_sent(graph)) == 2, timeout=5)
    assert [(h["edge"], h["text"]) for h in hops_sent(graph)] == [
        ("port:in:default", "hi"),
        ("port:out:default", "HI"),
    ]
    job.end()
    job.play(interval=0)
    job.wait(timeout=10)


def test_a_disposed_stage_stops_listening_and_leaves_no_thread(comms, env):
    run = pizzeria().start(step=True)
    graph = lw.FlowGraph(run)
    graph.comm.hello()
    run.input("orders").feed_many(["a", "b"])
    graph.comm.front({"type": "step"})
    wait_until(lambda: len(run.hops) == 1, timeout=10)
    comm = graph.comm
    graph.dispose()
    sent = len(comm.custom())
    run.step(2)
    assert len(comm.custom()) == sent
    wait_until(lambda: not [t for t in threading.enumerate() if t.name == "lsnb-graph-stage"], timeout=5)
    run.play(interval=0)
    run.input("orders").end()
    run.wait(timeout=10)


def test_a_journey_through_a_transform_and_a_nested_flow(comms, env):
    @ls.job_spec
    def knead(order: str) -> str:
        return f"dough({order})"

    @ls.job_spec
    def bake(dough: str) -> str:
        return f"baked {dough}"

    @ls.job_spec
    def box(pizza: str) -> str:
        return f"box[{pizza}]"

    oven = ls.Liveflow("oven")
    oven.connect(knead, bake, transform=str.upper)
    oven.expose(knead.input(), "raw")
    oven.expose(bake.output(), "done")
    shop = ls.Liveflow("shop")
    shop.connect(oven.output("done"), box)
    shop.expose(oven.input("raw"), "orders")
    shop.expose(box.output(), "boxes")
    run = shop.start(step=True)
    graph = lw.FlowGraph(run)
    run.input("orders").feed("funghi")
    run.input("orders").end()
    at_work = []
    while (hop := run.step()) is not None:
        at_work.append((hop.scope, graph._stage and graph._stage.at_work))
    run.wait(timeout=10)
    # a hop inside the nested flow: the nested node is at work, no edge of this graph counts it
    assert at_work == [("", "oven"), ("oven", "oven"), ("", "box"), ("", None)]
    assert graph.state()["edges"]["oven/done->box/default"]["count"] == 1
    assert "in oven: knead → bake: dough(funghi)" in graph.snapshot_html()
    journey = graph.show_journey(run.output("boxes").datapoints()[0].id)
    assert journey is not None
    stops = [(s["where"], s["node"], s["text"]) for s in journey["stops"]]
    assert stops[0] == ("outside input", None, "funghi")
    assert ("in oven: knead", "oven", "dough(funghi)") in stops
    assert ("in oven: into bake", "oven", "DOUGH(FUNGHI)") in stops  # what the transform made
    assert stops[-2:] == [
        ("box", "box", "box[baked DOUGH(FUNGHI)]"),
        ("outside output", None, "box[baked DOUGH(FUNGHI)]"),
    ]


def test_a_node_failing_at_its_hop_turns_red_and_the_hop_says_so(comms, env):
    parse, explode = parse_and_explode()
    flow = ls.Liveflow("stage-boom")
    flow.connect(parse, explode)
    flow.expose(parse.input(), "numbers")
    run = flow.start(step=True)
    graph = lw.FlowGraph(run)
    run.input("numbers").feed(1)
    assert [h.edge for h in run.step(2)] == ["port:in:numbers", "parse/default->explode/default"]
    with pytest.raises(ls.JobFailed):
        run.wait(timeout=10)
    state = wait_until(
        lambda: (s := graph.state())["nodes"]["explode"]["status"] == "failed" and s, timeout=5
    )
    assert HOSTILE in state["nodes"]["explode"]["error"]
    html = graph.snapshot_html()
    assert "<li>parse → explode: 1 (failed)</li>" in html
    assert 'data-node="explode" data-status="failed" data-at-work="true"' in html


def test_a_graph_of_a_flow_takes_the_stage_when_a_stepped_run_starts(comms, env):
    flow = pizzeria()
    graph = lw.FlowGraph(flow)
    assert not graph.stepping and "stepping" not in graph.shape
    graph.comm.hello()
    run = flow.start(step=True)
    table_first = lw.StreamTable(run.output("boxes"))
    table_first.comm.hello()
    wait_until(lambda: graph.stepping, timeout=5, message="the graph follows the stepped run")
    assert graph.shape["stepping"] is True
    reset = wait_until(
        lambda: [m for m in graph.comm.custom() if m["type"] == "reset" and "stage" in m], timeout=5
    )
    assert reset[-1]["stage"]["stepping"] is True
    # the table's rows show journeys, whether it was made before or after the graph found the run
    wait_until(lambda: table_first.comm.custom()[-1].get("journeys") is True, timeout=5)
    run.input("orders").feed("margherita")
    run.step()
    wait_until(lambda: [h["edge"] for h in hops_sent(graph)] == [IN], timeout=5)
    run.play(interval=0)
    run.input("orders").end()
    run.wait(timeout=10)


def test_a_graph_shown_mid_run_starts_from_the_hops_so_far(comms, env):
    run = pizzeria().start(step=True)
    run.input("orders").feed_many(["margherita", "funghi"])
    run.step(3)
    graph = lw.FlowGraph(run)
    graph.comm.hello()
    stage = next(m for m in graph.comm.custom() if m["type"] == "reset")["stage"]
    assert [h["index"] for h in stage["hops"]] == [0, 1, 2] and stage["released"] == 3
    assert stage["at_work"] == "bake" and stage["n_waiting"] == 2
    assert graph.state()["edges"][IN]["count"] == 2
    run.play(interval=0)
    run.input("orders").end()
    run.wait(timeout=10)
    wait_until(lambda: last_header(graph).get("released") == 6, timeout=5)
    assert [h["index"] for h in hops_sent(graph)] == list(range(6))  # each once, in order


def test_the_snapshot_uses_the_stages_colours_of_the_front_end():
    from pathlib import Path

    from livestack_nb.widgets._graph_svg import AT_WORK, DOT, JOURNEY

    css = (Path(__file__).resolve().parent.parent / "labextension" / "style" / "index.css").read_text()

    def rule(selector: str) -> str:
        found = re.search(re.escape(selector) + r" \{([^}]*)\}", css)
        assert found, selector
        return found.group(1)

    assert f"fill: {DOT};" in rule(".lsnb-dot circle")
    assert f"stroke: {AT_WORK};" in rule(".lsnb-node.lsnb-at-work rect")
    assert f"stroke: {JOURNEY};" in rule(".lsnb-edge.lsnb-journey")
    assert f"stroke: {JOURNEY};" in rule(".lsnb-node.lsnb-journey rect")


def test_the_snapshot_keeps_a_long_value_on_a_narrow_chain_whole(comms, env):
    """A chain drawn top to bottom is narrow; its values sit left of the edges and
    used to run past the drawing's left edge ("argherita…" for "margherita")."""
    from livestack_nb.widgets._svg import text_width

    @ls.job_spec
    def take(order: str) -> str:
        return order

    @ls.job_spec
    def bake(dough: str) -> str:
        return f"baked {dough}"

    @ls.job_spec
    def box(pizza: str) -> str:
        return f"box of {pizza}"

    flow = ls.Liveflow("narrow-kitchen")
    flow.connect(take, bake)
    flow.connect(bake, box)
    flow.expose(take.input(), "orders")
    flow.expose(box.output(), "boxes")
    run = flow.start(step=True)
    graph = lw.FlowGraph(run)
    run.input("orders").feed("margherita with extra basil")
    run.step(4)
    svg = graph.snapshot_html().split('class="lsnb-text"')[0]
    shift = re.search(r'<g transform="translate\(([0-9.]+),0\)">', svg)
    assert shift is not None, "the drawing should widen for the labels"
    labels = re.findall(
        r'<g data-dot="[^"]+">.*?<text x="([0-9.-]+)"[^>]*text-anchor="end"[^>]*>([^<]*)</text>', svg
    )
    assert len(labels) == 4
    for x, label in labels:
        assert float(x) + float(shift.group(1)) - text_width(label, 10) >= 0, label
    run.play(interval=0)
    run.input("orders").end()
    run.wait(timeout=10)
