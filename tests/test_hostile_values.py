"""Values, keys, names, options and log lines with HTML/JS are shown as text in every
widget's static fallback (the live views put them in textContent: see test_browser)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from widget_support import HOSTILE

import livestack_nb as ls
import livestack_nb.widgets as lw
from livestack_nb.stream import DataStream
from livestack_nb.testing import wait_until

SCRIPT = "</script><script>alert(2)</script>"
QUOTE = '" onmouseover="alert(3)'




def _safe(html: str) -> None:
    for bad in (HOSTILE, SCRIPT, "<script>", "onerror=alert(1)>", '" onmouseover="'):
        assert bad not in html, f"{bad!r} reached the HTML unescaped"


def test_stream_table_escapes_values_and_dict_keys(comms):
    s = DataStream("hostile")
    s.push([HOSTILE, {HOSTILE: SCRIPT, "k": QUOTE}, SCRIPT, b"<b>bytes</b>"])
    table = lw.StreamTable(s)
    html = table.snapshot_html()
    _safe(html)
    assert "&lt;img" in html and "&lt;/script&gt;" in html


class Point(BaseModel):
    label: str
    value: float


def test_stream_plot_escapes_labels_and_field_names(comms):
    s = DataStream(f"plot {HOSTILE}")
    s.push([Point(label=HOSTILE, value=1.0), Point(label=SCRIPT, value=2.0)])
    _safe(lw.StreamPlot(s, y=["value"], kind="bar").snapshot_html())
    _safe(lw.StreamPlot(s, y=["value"], kind="line").snapshot_html())


def test_flow_graph_and_job_panel_escape_names_options_errors_and_logs(comms, env):
    class Opts(BaseModel):
        note: str = ""

    @ls.job_spec(name="hostile-spec")
    def shout(x: str, options: Opts) -> str:
        if x == "fail":
            raise ValueError(f"failed on {HOSTILE} {SCRIPT}")
        return x

    @ls.job_spec(inputs={"default": str}, outputs={"default": str})
    def logger(job: ls.LiveJob) -> None:
        for x in job.input:
            job.logger.warning("seen %s", x)
            job.output.emit(x)

    flow = ls.Liveflow(f"flow {HOSTILE}")
    flow.connect(logger.labeled(f"label {SCRIPT}"), shout)
    flow.expose(logger.labeled(f"label {SCRIPT}").input(), "in")
    run = flow.start()
    graph = lw.FlowGraph(run)
    run.input("in").feed_many([HOSTILE, "fail"])
    run.input("in").end()
    with pytest.raises(ls.JobFailed):
        run.wait(timeout=10)
    wait_until(lambda: any(n.get("error") for n in graph.state()["nodes"].values()), timeout=5)
    _safe(graph.snapshot_html())

    job = shout.start(options={"note": HOSTILE})
    panel = lw.JobPanel(job)
    job.feed("fail")
    with pytest.raises(ls.JobFailed):
        job.wait(timeout=10)
    wait_until(lambda: panel.state().get("status") == "failed", timeout=5)
    html = panel.snapshot_html()
    _safe(html)
    assert "&lt;img" in html  # the option value and the error are there, as text

    logs = run.env.latest_job(logger)
    assert logs is not None
    _safe(lw.JobPanel(logs).snapshot_html())
