"""Widgets without a browser: coalescing, deltas, escaping, disposal, the front end's version."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import traitlets
from pydantic import BaseModel
from widget_support import HOSTILE, parse_and_explode

import livestack_nb as ls
import livestack_nb.widgets as lw
from livestack_nb.stream import DataStream
from livestack_nb.testing import wait_until

ROOT = Path(__file__).resolve().parent.parent


def _blast(streams: list[DataStream], seconds: float, batch: int = 50) -> float:
    """Push to every stream at full speed for ``seconds``; return events/s per stream."""
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        for s in streams:
            s.push(list(range(n, n + batch)))
        n += batch
    return n / (time.monotonic() - t0)


def _rate(widget: lw.LiveWidget, since: float) -> float:
    times = [t for t, kind, d in widget.comm.sent if kind == "comm_msg" and t >= since]
    return len(times) / max(1e-9, time.monotonic() - since)


def test_a_table_fed_at_100k_events_per_second_sends_at_most_30_messages_a_second(comms):
    s = DataStream("fast")
    table = lw.StreamTable(s, max_rows=10)
    table.comm.hello()
    t0 = time.monotonic()
    rate = _blast([s], 2.0)
    assert rate >= 100_000, rate
    wait_until(lambda: table.table()[1][-1][0] == str(len(s) - 1), timeout=2)
    sent = _rate(table, t0)
    assert 5 <= sent <= 31, sent
    last = table.comm.custom()[-1]
    assert last["folded"] > 1  # the header says how many events one update stood for


def test_many_widgets_stay_within_the_kernel_wide_budget(comms):
    streams = [DataStream(f"s{i}") for i in range(20)]
    tables = [lw.StreamTable(s, max_rows=3) for s in streams]
    t0 = time.monotonic()
    _blast(streams, 2.0, batch=200)
    total = sum(_rate(t, t0) for t in tables)
    assert total <= lw.KERNEL_BUDGET * 1.1, total
    assert all(_rate(t, t0) <= 31 for t in tables)


def _apply(model: dict, msg: dict, max_rows: int) -> None:
    """What the front end's table model does with a message."""
    if msg["type"] == "reset":
        model["rows"] = list(msg["rows"])
    else:
        model["rows"] = (model["rows"] + msg["rows"])[-max_rows:]
    if "columns" in msg:
        model["columns"] = msg["columns"]


class Reading(BaseModel):
    sensor: str
    value: float


def test_the_deltas_rebuild_the_same_table_as_the_stream(comms):
    s = DataStream("readings", value_type=Reading)
    s.push([Reading(sensor="a", value=0.5)])
    table = lw.StreamTable(s, max_rows=7)
    table.comm.hello()
    for i in range(1, 400):
        s.push([Reading(sensor=f"s{i % 3}", value=i / 2) for _ in range(i % 4)])
    wait_until(lambda: table.table()[1][-1][0] == str(len(s) - 1), timeout=2)
    wait_until(lambda: table.comm.custom()[-1]["count"] == len(s), timeout=2)
    model: dict = {"rows": [], "columns": []}
    for msg in table.comm.custom():
        _apply(model, msg, 7)
    assert model["columns"] == ["#", "time", "sensor", "value"]
    expected = [
        [str(d.seq), *[str(getattr(d.value, f)) for f in ("sensor", "value")]] for d in s.datapoints()[-7:]
    ]
    assert [[r[0], r[2], r[3]] for r in model["rows"]] == expected
    # never the whole history in one message
    assert all(len(m.get("rows", [])) <= 7 for m in table.comm.custom())


def test_a_hostile_value_is_escaped_in_the_snapshot(comms):
    s = DataStream("names")
    s.push([HOSTILE, {"x": 1}])
    table = lw.StreamTable(s)
    html = table.snapshot_html()
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # the live rows carry it as plain text for textContent
    table.comm.hello()
    assert table.comm.custom()[0]["rows"][0][2] == HOSTILE


def test_long_values_are_cut_before_they_are_sent(comms):
    s = DataStream("long")
    s.push(["x" * 10_000])
    table = lw.StreamTable(s)
    table.comm.hello()
    cell = table.comm.custom()[0]["rows"][0][2]
    assert len(cell) <= 2000 and cell.endswith("…")


def test_a_plot_sends_numeric_fields_over_a_rolling_window(comms):
    s = DataStream("readings", value_type=Reading)
    plot = lw.StreamPlot(s, window=50)
    assert plot.y == ["value"]
    s.push([Reading(sensor="a", value=float(i)) for i in range(120)])
    plot.comm.hello()
    reset = plot.comm.custom()[0]
    assert len(reset["x"]) == 50 and reset["y"][0][-1] == 119.0
    assert "<svg" in plot.snapshot_html()
    with pytest.raises(ValueError, match="kind"):
        lw.StreamPlot(s, kind="pie")


def test_a_failing_flow_shows_the_failed_node_with_its_error(comms, env):
    parse, explode = parse_and_explode()

    flow = ls.Liveflow("boom")
    flow.connect(parse, explode)
    static = lw.FlowGraph(flow)
    assert [n["id"] for n in static.shape["nodes"]] == ["parse", "explode"]
    run = flow.start()
    graph = lw.FlowGraph(run)
    run.feed(1)
    run.end()
    with pytest.raises(ls.JobFailed):
        run.wait(timeout=10)
    state = wait_until(lambda: graph.state()["nodes"]["explode"].get("error") and graph.state(), timeout=5)
    assert state["nodes"]["explode"]["status"] == "failed"
    assert state["edges"]["parse/default->explode/default"]["count"] == 1
    html = graph.snapshot_html()
    assert "explode" in html and HOSTILE not in html
    graph.comm.hello()
    wait_until(lambda: any(m.get("status") == "failed" for m in graph.comm.custom()), timeout=5)


def test_a_job_panel_streams_log_records_as_deltas(comms, env):
    @ls.job_spec
    def chatty(job: ls.LiveJob):
        for x in job.input:
            job.logger.info("got %s", x)
            job.output.emit(x)

    job = chatty.start()
    panel = lw.JobPanel(job)
    panel.comm.hello()
    job.feed_many([1, 2, 3])
    job.end()
    job.wait(timeout=10)
    wait_until(lambda: panel.state()["outputs"] == {"default": 3}, timeout=5)
    wait_until(lambda: sum(len(m.get("logs", [])) for m in panel.comm.custom()) >= 3, timeout=5)
    logs = [line for m in panel.comm.custom() for line in m.get("logs", [])]
    assert sum("got" in line for line in logs) == 3  # each record sent once
    assert graph_for_job_has_ports(job)


def graph_for_job_has_ports(job: ls.JobHandle) -> bool:
    g = lw.FlowGraph(job)
    return {p["name"] for p in g.shape["ports"]} == {"default"} and len(g.shape["nodes"]) == 1


def test_rerunning_a_cell_disposes_what_its_previous_run_made(comms):
    from livestack_nb.widgets._scope import scope

    s = DataStream("cell")
    scope.enter_cell("cell-1")
    first = lw.StreamTable(s)
    scope.enter_cell("cell-2")
    other = lw.StreamTable(s)
    scope.enter_cell("cell-1")  # the same cell runs again
    assert first.disposed and not other.disposed
    s.push([1])
    assert first.table()[1] == [] and len(other.table()[1]) == 1
    scope.enter_cell(None)


def test_disposing_the_last_widget_ends_the_pump_thread(comms):
    s = DataStream("x")
    t = lw.StreamTable(s)
    assert lw.pump.running
    t.dispose()
    lw.pump.join()
    assert not lw.pump.running


def test_widgets_all_is_curated():
    assert sorted(lw.__all__) == sorted(
        [
            "Binding", "FlowGraph", "JobInput", "JobPanel", "JobTimeline", "KERNEL_BUDGET", "LiveWidget",
            "PER_WIDGET_RATE",
            "StreamPlot", "bind",
            "StreamTable", "dispose_all", "live_widgets", "pump", "register", "show", "widget_for",
        ]
    )  # fmt: skip


def test_python_and_javascript_share_one_version():
    package = json.loads((ROOT / "labextension" / "package.json").read_text())
    assert package["version"] == ls.__version__
    ts = (ROOT / "labextension" / "src" / "version.ts").read_text()
    assert re.search(r"MODULE_VERSION = '([^']+)'", ts).group(1) == ls.__version__
    assert package["name"] == "livestack-nb" == lw.StreamTable._model_module.default_value


def test_the_built_front_end_is_installed_where_jupyterlab_finds_it():
    import sys

    share = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "livestack-nb"
    built = json.loads((share / "package.json").read_text())
    assert built["version"] == ls.__version__
    # a wheel or editable install copies install.json; `labextension develop` links the build instead
    assert share.is_symlink() or (share / "install.json").exists()
    assert list((share / "static").glob("remoteEntry.*.js"))


def test_a_job_handle_names_its_env(env):
    @ls.job_spec
    def same(x: int) -> int:
        return x

    job = same.start()
    assert job.env is env
    job.end()
    job.wait(timeout=10)


def test_a_flow_graph_follows_the_flows_latest_run(comms, env):
    @ls.job_spec
    def inc(x: int) -> int:
        return x + 1

    @ls.job_spec
    def dbl(x: int) -> int:
        return 2 * x

    flow = ls.Liveflow("follow")
    flow.connect(inc, dbl)
    assert env.latest_job(flow) is None
    graph = lw.FlowGraph(flow)
    layout = graph.shape
    assert graph.state()["status"] == "not started"
    run = flow.start()
    assert env.latest_job("follow").job_id == run.job_id
    run.feed_many([1, 2, 3])
    run.end()
    run.wait(timeout=10)
    edge = "inc/default->dbl/default"
    wait_until(lambda: graph.state()["edges"].get(edge, {}).get("count") == 3, timeout=5)
    assert graph.state()["nodes"]["dbl"]["status"] == "completed"
    assert graph.shape == layout  # the same flow keeps its layout
    again = flow.start()
    wait_until(
        lambda: graph.state()["status"] == again.status.value and again.job_id in graph.title, timeout=5
    )
    again.end()
    again.wait(timeout=10)


def test_dict_values_with_new_keys_get_new_columns(comms):
    s = DataStream("dicts")
    table = lw.StreamTable(s)
    table.comm.hello()
    s.push([{"a": 1}])
    wait_until(lambda: table.table()[0] == ["#", "time", "a"], timeout=2)
    s.push([{"a": 2, "b": "x"}])
    columns, rows = table.table()
    assert columns == ["#", "time", "a", "b"]
    assert [r[2:] for r in rows] == [["1", ""], ["2", "x"]]
    wait_until(lambda: any(m.get("columns") == columns for m in table.comm.custom()), timeout=2)


class _Shown:
    """Stands in for the display handle of a snapshot: keeps what it was updated with."""

    def __init__(self) -> None:
        self.html = ""

    def update(self, bundle: dict[str, str], raw: bool = False) -> None:
        self.html = bundle["text/html"]


def test_snapshots_of_graphs_and_panels_are_current_when_the_cell_ends(comms, env):
    # Their state is polled, so the pump may not have looked since a quick run
    # ended; the end of the cell brings the saved snapshot up to date anyway.
    from livestack_nb.widgets._scope import scope

    @ls.job_spec
    def quick(x: int) -> int:
        return x + 1

    @ls.job_spec
    def slow_to_notice(x: int) -> int:
        return x

    flow = ls.Liveflow("quick-service")
    flow.connect(quick, slow_to_notice)
    graph = lw.FlowGraph(flow)
    graph._snapshot_handle = graph_shown = _Shown()
    wait_until(lambda: graph._looked > float("-inf"), timeout=2)  # the pump had its first look
    job = quick.start()
    panel = lw.JobPanel(job)
    panel._snapshot_handle = panel_shown = _Shown()
    run = flow.start()
    run.feed_many([1, 2])
    run.end()
    run.wait(timeout=10)
    job.end()
    job.wait(timeout=10)
    scope._post_execute()
    assert run.job_id in graph_shown.html
    assert '<g data-node="slow_to_notice" data-status="completed">' in graph_shown.html
    assert "· completed" in panel_shown.html


def test_a_flow_graph_grows_while_the_flow_is_wired(comms, env):
    @ls.job_spec
    def knead(x: int) -> int:
        return x

    @ls.job_spec
    def proof(x: int) -> int:
        return x

    @ls.job_spec
    def shape_it(x: int) -> int:
        return x

    flow = ls.Liveflow("growing")
    flow.connect(knead, proof)
    graph = lw.FlowGraph(flow)
    assert [n["id"] for n in graph.shape["nodes"]] == ["knead", "proof"]
    flow.connect(proof, shape_it)  # a later cell wires one more station
    wait_until(lambda: len(graph.shape["nodes"]) == 3, timeout=5)
    assert [e["id"] for e in graph.shape["edges"]] == [
        "knead/default->proof/default",
        "proof/default->shape_it/default",
    ]
    assert "shape_it" in graph.snapshot_html()


def test_a_tables_max_rows_can_change_while_it_is_shown(comms):
    s = DataStream("counting")
    s.push(list(range(50)))
    table = lw.StreamTable(s, max_rows=5)
    table.comm.hello()
    wait_until(lambda: table.comm.custom(), timeout=2)
    model: dict = {"rows": [], "columns": []}
    for rows, expected in ((12, range(38, 50)), (3, range(47, 50)), (30, range(20, 50))):
        table.max_rows = rows
        for msg in table.comm.custom():
            _apply(model, msg, table.max_rows)
        # the front end gets the new window whole, as the snapshot shows it
        assert [r[2] for r in model["rows"]] == [str(i) for i in expected]
        assert table.comm.custom()[-1]["type"] == "reset"
        assert [r[2] for r in table.table()[1]] == [str(i) for i in expected]
        assert table.snapshot_html().count("<tr>") == len(expected) + 1
        table.comm.sent.clear()
    s.push([50, 51])  # and the deltas go on from there
    wait_until(lambda: [r[2] for r in table.table()[1]][-1] == "51", timeout=2)
    assert len(table.table()[1]) == 30
    with pytest.raises(traitlets.TraitError):
        table.max_rows = 0


def test_a_plots_window_can_change_while_it_is_shown(comms):
    s = DataStream("levels")
    s.push([float(i) for i in range(100)])
    plot = lw.StreamPlot(s, window=10, kind="scatter")
    plot.comm.hello()
    plot.window = 40
    reset = plot.comm.custom()[-1]
    assert reset["type"] == "reset" and reset["y"][0] == [float(i) for i in range(60, 100)]
    dots = re.search(r'<path d="([^"]*)"[^>]*data-series="value"', plot.snapshot_html())
    assert dots and dots.group(1).count("M") == 40  # the snapshot has one dot a point
    plot.window = 4
    assert [p[1][0] for p in plot.points()] == [96.0, 97.0, 98.0, 99.0]
    with pytest.raises(traitlets.TraitError):
        plot.window = -1


def test_a_flow_graph_is_told_statuses_and_stops_looking_once_its_run_is_over(comms, env):
    from livestack_nb.status_feed import StatusChange

    @ls.job_spec
    def plus_one(x: int) -> int:
        return x + 1

    job = plus_one.start()
    graph = lw.FlowGraph(job)
    assert len(env.status_feed) == 1  # it follows the env's statuses
    job.feed_many([1, 2])
    job.end()
    job.wait(timeout=10)
    # done and every stream ended: nothing left to look at, so the pump stops asking
    wait_until(lambda: not graph._dirty, timeout=5)
    assert graph.state()["nodes"]["plus_one"]["status"] == "completed"
    assert graph._delta() is None and not graph._dirty  # one more look asks for no other
    # a status of a job it shows marks it changed at once; another job's does not
    env.status_feed.publish(StatusChange("someone-else", "other", None, "running"))
    assert not graph._dirty
    env.status_feed.publish(StatusChange(job.job_id, "plus_one", None, "completed"))
    assert graph._dirty
    graph.dispose()
    assert len(env.status_feed) == 0  # disposing stops following
