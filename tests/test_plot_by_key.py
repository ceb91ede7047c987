"""StreamPlot(by=): one series per key of a long-format stream, pivoted in the kernel so the
front end draws it as any plot; new keys reset the live view, and the snapshot shows every key."""

from __future__ import annotations

import pytest

import livestack_nb as ls
import livestack_nb.widgets as lw
from livestack_nb.stream import DataStream


def rows(*items: tuple[str, int, float]) -> list[dict[str, object]]:
    return [{"key": k, "end": e, "p95": v} for k, e, v in items]


def test_one_series_per_key_each_holding_its_latest_value(comms):
    s = DataStream("p95-per-path")
    s.push(rows(("/a", 1, 10.0), ("/b", 1, 20.0), ("/a", 2, 11.0)))
    plot = lw.StreamPlot(s, x="end", y="p95", by="key")
    plot.comm.hello()
    reset = plot.comm.custom()[-1]
    assert reset["type"] == "reset"
    assert plot.y == ["/a", "/b"]
    assert reset["x"] == [1.0, 1.0, 2.0]
    assert reset["y"] == [[10.0, 10.0, 11.0], [None, 20.0, 20.0]]
    html = plot.snapshot_html()
    assert 'data-series="/a"' in html and 'data-series="/b"' in html


def test_a_new_key_sends_the_whole_window_again_and_a_known_key_a_delta(comms):
    s = DataStream("churn")
    s.push(rows(("/a", 1, 1.0)))
    plot = lw.StreamPlot(s, x="end", y="p95", by="key")
    plot.comm.hello()
    s.push(rows(("/a", 2, 2.0)))
    plot.pump_flush(1e18)
    delta = plot.comm.custom()[-1]
    assert delta["type"] == "points" and delta["y"] == [[2.0]]
    s.push(rows(("/c", 3, 7.0)))
    plot._last_send = float("-inf")
    plot.pump_flush(1e18)
    again = plot.comm.custom()[-1]
    assert again["type"] == "reset" and plot.y == ["/a", "/c"]
    assert again["y"] == [[1.0, 2.0, 2.0], [None, None, 7.0]]


def test_by_needs_one_y_field(comms):
    s = DataStream("x")
    with pytest.raises(ValueError, match="give y= one field"):
        lw.StreamPlot(s, y=["a", "b"], by="key")
    with pytest.raises(ValueError, match="give y= one field"):
        lw.StreamPlot(s, by="key")


def test_a_window_spec_output_plots_per_key(comms, env):
    p95 = ls.window(count=2, key="path", agg={"p95": ls.agg.quantile("ms", 0.95)})
    job = p95.start()
    job.feed_many([{"path": p, "ms": i} for i, p in enumerate(["/a", "/b", "/a", "/b", "/a", "/a"])])
    job.end()
    job.wait(timeout=10)
    plot = lw.StreamPlot(job.output(), x="seq", y="p95", by="key")
    pts = plot.points()
    assert plot.y == ["/a", "/b"] and len(pts) == 3
    assert pts[-1][1] == [pytest.approx(4.95), pytest.approx(2.9)]


def test_a_table_by_key_shows_each_keys_latest_row(comms):
    s = DataStream("windows")
    s.push(rows(("/a", 1, 10.0), ("/b", 1, 20.0), ("/a", 2, 11.0)))
    table = lw.StreamTable(s, by="key", max_rows=2)
    table.comm.hello()
    reset = table.comm.custom()[-1]
    assert [r[2:] for r in reset["rows"]] == [["/b", "1", "20.0"], ["/a", "2", "11.0"]]
    s.push(rows(("/c", 1, 5.0)))  # a third key: the one updated longest ago leaves (max_rows=2)
    table._last_send = float("-inf")
    table.pump_flush(1e18)
    again = table.comm.custom()[-1]
    assert again["type"] == "reset" and [r[2] for r in again["rows"]] == ["/a", "/c"]
    assert "<td>/b</td>" not in table.snapshot_html() and "<td>/c</td>" in table.snapshot_html()
    with pytest.raises(ValueError, match="by must be a field name"):
        lw.StreamTable(s, by="")
