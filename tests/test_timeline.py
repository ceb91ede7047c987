"""JobTimeline, and the truth it draws: a job is recorded running only while it holds a worker slot."""

# ruff: noqa: F811 - the fixtures imported from redis_support are test parameters

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

import pytest
from redis_support import redis_server, redis_url  # noqa: F401 - fixtures
from widget_support import HOSTILE

import livestack_nb as ls
import livestack_nb.widgets as lw
from livestack_nb.testing import wait_until

SVG_NS = "{http://www.w3.org/2000/svg}"
WORK = 0.05  # seconds each order takes to cook (simulated work)


def _intervals(statuses: Iterable[tuple[str, float]]) -> tuple[float, float | None, float | None]:
    """``(requested, running, end)`` times of one job's status history."""
    history = list(statuses)
    running = next((t for s, t in history if s == "running"), None)
    end = next((t for s, t in history if s in ("completed", "failed", "cancelled")), None)
    return history[0][1], running, end


def _peak(jobs: list[tuple[float, float | None, float | None]]) -> int:
    """The most running intervals that overlap at any instant (an end before a start at a tie)."""
    events = []
    for _, start, end in jobs:
        assert start is not None and end is not None
        events += [(start, 1), (end, -1)]
    count = peak = 0
    for _, d in sorted(events):
        count += d
        peak = max(peak, count)
    return peak


def _of(handle: ls.JobHandle) -> tuple[float, float | None, float | None]:
    return _intervals((s.value, t) for s, t in handle.statuses)


def _map(n: int) -> int:
    time.sleep(WORK)
    return n


def _flat(n: int):
    time.sleep(WORK)
    yield n


def _processor(job: ls.LiveJob):
    for n in job.input:
        time.sleep(WORK)
        job.output.emit(n)


async def _amap(n: int) -> int:
    await asyncio.sleep(WORK)
    return n


async def _aflat(n: int):
    await asyncio.sleep(WORK)
    yield n


async def _aprocessor(job: ls.LiveJob):
    async for n in job.input:
        await asyncio.sleep(WORK)
        await job.output.emit(n)


FORMS = {
    "map": _map,
    "flat-map": _flat,
    "processor": _processor,
    "async map": _amap,
    "async flat-map": _aflat,
    "async processor": _aprocessor,
}


def _spec(form: str, name: str, concurrency: int) -> ls.JobSpec:
    spec = ls.JobSpec(name, input=int, output=int)
    spec.define_worker(FORMS[form], concurrency=concurrency)
    return spec


def _six(spec: ls.JobSpec, *, batch: bool, env: ls.LiveEnv | None = None) -> list[ls.JobHandle]:
    """Six jobs started at once, each fed one order (per value or as a batch) and ended."""
    jobs = [spec.start(env=env) for _ in range(6)]
    for i, job in enumerate(jobs):
        if batch:
            job.feed_many([i])
        else:
            job.feed(i)
        job.end()
    for job in jobs:
        job.wait(timeout=20)
    return jobs


@pytest.mark.parametrize("batch", [False, True], ids=["feed", "feed_many"])
@pytest.mark.parametrize("form", list(FORMS))
def test_six_jobs_at_concurrency_three_are_never_more_than_three_running(env, form, batch):
    jobs = _six(_spec(form, f"cook_{len(form)}", 3), batch=batch)
    spans = [_of(j) for j in jobs]
    assert _peak(spans) == 3  # the limit, reached and never passed
    # the other three were requested while they waited: running only once a slot freed
    waited = sorted(start - requested for requested, start, _ in spans if start is not None)
    assert waited[-3] >= WORK * 0.8, waited
    assert [j.result() for j in jobs] == [[i] for i in range(6)]


@pytest.mark.parametrize("form", ["map", "processor", "async map"])
def test_one_cook_runs_orders_one_by_one_and_four_cooks_four_at_once(env, form):
    one, four = _spec(form, "one_cook", 1), _spec(form, "four_cooks", 4)
    spans = {}
    for spec in (one, four):
        jobs = [spec.start() for _ in range(8)]
        for i, job in enumerate(jobs):
            job.feed(i)
            job.end()
        for job in jobs:
            job.wait(timeout=20)
        spans[spec.name] = [_of(j) for j in jobs]
    assert _peak(spans["one_cook"]) == 1
    assert _peak(spans["four_cooks"]) == 4

    def took(s: list[Any]) -> float:
        return max(e for _, _, e in s) - min(r for r, _, _ in s)

    assert took(spans["one_cook"]) >= 8 * WORK
    assert took(spans["four_cooks"]) < took(spans["one_cook"])


def test_a_map_job_keeps_its_slot_until_it_ends_and_a_waiting_job_can_be_cancelled(env):
    spec = _spec("map", "oven", 1)
    first, second, third = spec.start(), spec.start(), spec.start()
    first.feed(1)
    wait_until(lambda: first.output().values() == [1], timeout=10)
    # first is idle but not ended: it keeps its slot, the others wait (requested)
    second.feed(2)
    third.feed(3)
    assert first.status is ls.JobStatus.RUNNING
    assert second.status is ls.JobStatus.REQUESTED and third.status is ls.JobStatus.REQUESTED
    second.cancel()
    first.end()
    first.wait(timeout=10)
    third.end()
    assert third.result(timeout=10) == [3]  # the slot went to the next one still waiting
    assert [s for s, _ in second.statuses] == [ls.JobStatus.REQUESTED, ls.JobStatus.CANCELLED]
    assert env.worker("oven").slots.held == 0 and env.worker("oven").slots.waiting == 0


def test_jobs_waiting_for_a_slot_when_the_env_closes_are_cancelled_without_running(make_env):
    env = make_env()
    gate = threading.Event()

    def hold(n: int) -> int:
        gate.wait(10)
        return n

    spec = ls.JobSpec("closing_oven", input=int, output=int)
    spec.define_worker(hold, concurrency=1)
    jobs = [spec.start(env=env) for _ in range(3)]
    for job in jobs:
        job.feed(1)
    wait_until(lambda: jobs[0].status is ls.JobStatus.RUNNING, timeout=10)
    gate.set()
    env.close()
    assert [[s.value for s, _ in j.statuses] for j in jobs] == [
        ["requested", "running", "cancelled"],
        ["requested", "cancelled"],
        ["requested", "cancelled"],
    ]


def test_a_map_spec_in_a_flow_still_runs_every_run(env):
    """Two runs of a flow whose map spec has one slot: the second waits for the first, then runs."""
    double = _spec("map", "double", 1)
    flow = ls.Liveflow("doubling")
    flow.expose(double.input(), "in")
    flow.expose(double.output(), "out")
    runs = [flow.start(), flow.start()]
    for i, run in enumerate(runs):
        run.input("in").feed(i)
        run.input("in").end()
    assert [r.output("out").values() for r in runs if not r.wait(timeout=20)] == [[0], [1]]


def test_statuses_in_a_sqlite_vault_tell_when_a_slot_took_each_job(make_env, tmp_path):
    env = make_env(vault=f"sqlite:///{tmp_path / 'kitchen.db'}")
    jobs = _six(_spec("map", "sqlite_cook", 3), batch=False, env=env)
    env.flush()
    spans = [_intervals((r.status, r.time) for r in env.vault.statuses(j.job_id)) for j in jobs]
    assert _peak(spans) == 3
    # a reader of the same file sees the same history
    reader = make_env(vault=f"sqlite:///{tmp_path / 'kitchen.db'}")
    again = [_intervals((r.status, r.time) for r in reader.vault.statuses(j.job_id)) for j in jobs]
    assert again == spans


def test_statuses_a_redis_worker_records_tell_when_a_slot_took_each_job(comms, redis_url):
    """A queue worker taking six jobs at once, whose spec has three slots: three wait, recorded so;
    a timeline in the client, which runs none of them, draws three lanes."""
    from livestack_nb.remote import QueueWorker

    spec = _spec("map", f"redis_cook_{time.monotonic_ns()}", 3)
    client = ls.LiveEnv(vault=redis_url, autostart=False)
    worker_env = ls.LiveEnv(vault=redis_url)
    worker = QueueWorker(worker_env, spec, concurrency=6)
    stop = threading.Event()
    serving = threading.Thread(target=worker.serve, args=(stop,), name="livestack-test-serve")
    serving.start()
    try:
        with client:
            timeline = lw.JobTimeline(spec)
        jobs = _six(spec, batch=True, env=client)
        assert [j.result() for j in jobs] == [[i] for i in range(6)]
        spans = [_intervals((r.status, r.time) for r in client.vault.statuses(j.job_id)) for j in jobs]
        assert _peak(spans) == 3
        st = timeline.state()
        assert st["groups"] == [{"name": spec.name, "concurrency": 3, "lanes": 3}]
        assert [r["status"] for r in st["jobs"]] == ["completed"] * 6
    finally:
        stop.set()
        serving.join(10)
        worker_env.close()
        client.close()


# -- the widget ----------------------------------------------------------------------


def _svg(html: str) -> ET.Element:
    found = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    assert len(found) == 1, html
    return ET.fromstring(found[0])


def _bars(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG_NS}g") if g.get("data-job")]


def _cooks(fail: str | None = None) -> tuple[ls.JobSpec, ls.JobSpec]:
    def cook(order: str) -> str:
        time.sleep(WORK)
        if order == fail:
            raise ValueError(f"burnt {order}")
        return order.upper()

    one = ls.JobSpec("one_cook", input=str, output=str)
    one.define_worker(cook, concurrency=1)
    four = ls.JobSpec("four_cooks", input=str, output=str)
    four.define_worker(cook, concurrency=4)
    return one, four


def _serve(spec: ls.JobSpec, orders: list[str]) -> list[ls.JobHandle]:
    jobs = []
    for order in orders:
        job = spec.start()
        job.feed(order)
        job.end()
        jobs.append(job)
    for job in jobs:
        with contextlib.suppress(ls.JobFailed):  # a failing order is part of the picture
            job.wait(timeout=20)
    return jobs


def test_the_timeline_of_an_env_has_a_lane_per_slot_used_per_spec(comms, env):
    one, four = _cooks()
    timeline = lw.JobTimeline(env)
    _serve(one, ["a", "b", "c", "d", "e", "f"])
    _serve(four, ["a", "b", "c", "d", "e", "f"])
    st = timeline.state()
    assert [(g["name"], g["concurrency"], g["lanes"]) for g in st["groups"]] == [
        ("one_cook", 1, 1),
        ("four_cooks", 4, 4),
    ]
    assert len(st["jobs"]) == 12 and {r["status"] for r in st["jobs"]} == {"completed"}
    for name in ("one_cook", "four_cooks"):
        rows = [r for r in st["jobs"] if r["group"] == name]
        for a in rows:  # two jobs in one lane never overlap
            for b in rows:
                if a is not b and a["lane"] == b["lane"]:
                    assert a["end"] <= b["start"] or b["end"] <= a["start"]
    # the front end gets the same on hello, then only what changed
    timeline.comm.hello()
    at = len(timeline.comm.custom()) - 1
    reset = timeline.comm.custom()[at]
    assert reset["type"] == "reset" and len(reset["jobs"]) == 12
    _serve(one, ["g"])

    def after() -> list[dict[str, Any]]:
        return timeline.comm.custom()[at + 1 :]

    wait_until(
        lambda: any(len(m["jobs"]) == 1 and m["jobs"][0]["end"] for m in after()),
        timeout=10,
        message="a delta with the new job alone",
    )
    assert all(m["type"] == "state" for m in after())


def test_a_spec_timeline_follows_new_jobs_and_a_run_timeline_shows_its_nodes(comms, env):
    one, four = _cooks()
    of_spec = lw.JobTimeline(four)
    _serve(four, ["a"])
    _serve(one, ["a"])  # another spec: not in it
    assert [r["group"] for r in of_spec.state()["jobs"]] == ["four_cooks"]
    _serve(four, ["b", "c"])
    assert len(of_spec.state()["jobs"]) == 3
    flow = ls.Liveflow("kitchen_line")
    flow.connect(one, four)
    flow.expose(one.input(), "orders")
    flow.expose(four.output(), "dishes")
    run = flow.start()
    run.input("orders").feed("x")
    run.input("orders").end()
    run.wait(timeout=20)
    of_run = lw.JobTimeline(run)
    groups = {r["group"] for r in of_run.state()["jobs"]}
    assert groups == {"kitchen_line", "one_cook", "four_cooks"}
    assert of_run.title == f"timeline of kitchen_line {run.job_id}"
    # a flow as the spec: its runs and the jobs of their nodes
    of_flow = lw.JobTimeline(flow)
    assert {r["group"] for r in of_flow.state()["jobs"]} == {"kitchen_line", "one_cook", "four_cooks"}


def test_hostile_spec_names_and_job_ids_are_text_in_the_snapshot(comms, env):
    spec = ls.JobSpec(f"spec {HOSTILE}", input=int, output=int)
    spec.define_worker(lambda n: n)
    timeline = lw.JobTimeline(spec)
    job_id = "job<img\tsrc=x\tonerror=alert(1)>".replace("\t", "")  # no whitespace in an id
    spec.start(job_id=job_id).end()
    wait_until(lambda: timeline.state()["jobs"][0]["end"] is not None, timeout=10)
    html = timeline.snapshot_html()
    assert HOSTILE not in html
    root = _svg(html)
    texts = [t.text or "" for t in root.iter(f"{SVG_NS}text")]
    assert any(t.startswith(f"spec {HOSTILE}") for t in texts)
    (bar,) = _bars(root)
    assert bar.get("data-job") == job_id and "<img" not in html


def test_a_list_of_specs_shares_one_time_axis_in_the_order_given(comms, env):
    one, four = _cooks()
    timeline = lw.JobTimeline([four, one])
    assert timeline.title == "timeline of specs four_cooks, one_cook"
    _serve(one, ["a", "b"])
    _serve(four, ["a", "b"])
    ls.JobSpec("elsewhere", input=str, output=str).define_worker(str.upper)
    st = timeline.state()
    assert [g["name"] for g in st["groups"]] == ["four_cooks", "one_cook"]
    assert len(st["jobs"]) == 4


def test_a_failed_jobs_error_is_in_its_tooltip_as_text(comms, env):
    one, _ = _cooks(fail=HOSTILE)
    timeline = lw.JobTimeline(one)
    jobs = _serve(one, ["fine", HOSTILE])
    assert jobs[1].status is ls.JobStatus.FAILED
    row = next(r for r in timeline.state()["jobs"] if r["status"] == "failed")
    assert row["error"] == f"ValueError: burnt {HOSTILE}"
    html = timeline.snapshot_html()
    assert HOSTILE not in html  # escaped everywhere, drawing and text
    bar = next(b for b in _bars(_svg(html)) if b.get("data-status") == "failed")
    title = bar.find(f"{SVG_NS}title")
    assert title is not None and f"ValueError: burnt {HOSTILE}" in (title.text or "")
    assert bar.find(f"{SVG_NS}rect").get("fill") == lw._svg.STATUS_COLOURS["failed"][0]  # type: ignore[union-attr]
    assert "failed: ValueError: burnt &lt;img" in html  # spelled out under the drawing too


def test_the_snapshot_draws_a_bar_per_job_in_its_lane_and_a_text_list(comms, env):
    one, four = _cooks()
    timeline = lw.JobTimeline(env)
    _serve(one, ["a", "b", "c"])
    _serve(four, ["a", "b", "c"])
    html = timeline.snapshot_html()
    root = _svg(html)
    bars = _bars(root)
    assert len(bars) == 6
    lanes = sorted(int(b.get("data-lane", "-1")) for b in bars)
    assert lanes == [0, 0, 0, 0, 1, 2]
    texts = [t.text or "" for t in root.iter(f"{SVG_NS}text")]
    assert "one_cook · concurrency 1" in texts and "four_cooks · concurrency 4" in texts
    assert "slot 4" not in texts and "slot 3" in texts  # lanes used, not slots that ran nothing
    assert "6 jobs: 6 completed" in html
    # where SVG is removed (an untrusted notebook), a list says the same
    text_part = html.split('class="lsnb-text"', 1)[1]
    assert text_part.count("<li>") == 6 and "slot 1" in text_part
    assert "waited" in text_part


def test_jobs_waiting_for_a_slot_show_in_the_waiting_row(comms, env):
    gate = threading.Event()

    def hold(n: int) -> int:
        gate.wait(10)
        return n

    spec = ls.JobSpec("held", input=int, output=int)
    spec.define_worker(hold, concurrency=1)
    timeline = lw.JobTimeline(spec)
    jobs = [spec.start() for _ in range(3)]
    for job in jobs:
        job.feed(1)
        job.end()
    wait_until(lambda: jobs[0].status is ls.JobStatus.RUNNING, timeout=10)
    st = timeline.state()
    assert [r["status"] for r in st["jobs"]] == ["running", "requested", "requested"]
    assert [r["lane"] for r in st["jobs"]] == [0, None, None]
    root = _svg(timeline.snapshot_html())
    waiting = [p for p in root.iter(f"{SVG_NS}path") if p.get("data-waiting") == "held"]
    assert len(waiting) == 1
    assert "waiting (max 2)" in [t.text for t in root.iter(f"{SVG_NS}text")]
    gate.set()
    for job in jobs:
        job.wait(timeout=10)
    assert [r["lane"] for r in timeline.state()["jobs"]] == [0, 0, 0]


def test_while_only_the_time_moves_the_kernel_says_so_about_once_a_second(comms, env):
    gate = threading.Event()

    def hold(n: int) -> int:
        gate.wait(10)
        return n

    spec = ls.JobSpec("slow_oven", input=int, output=int)
    spec.define_worker(hold, concurrency=1)
    timeline = lw.JobTimeline(spec)
    timeline.comm.hello()
    job = spec.start()
    job.feed(1)
    def sent() -> list[tuple[float, dict[str, Any]]]:
        return [(t, d["content"]) for t, kind, d in list(timeline.comm.sent)
                if kind == "comm_msg" and d and d.get("method") == "custom"]  # fmt: skip

    def running_sent() -> bool:
        return any(r["status"] == "running" for _, m in sent() for r in m.get("jobs", ()))

    wait_until(running_sent, timeout=10, message="the running job was sent")
    before = len(sent())
    wait_until(lambda: len(sent()) >= before + 2, timeout=10, message="two more messages")
    (t1, m1), (t2, m2) = sent()[before : before + 2]
    assert m1["jobs"] == [] and m2["jobs"] == []  # only the time moved
    assert t2 - t1 >= 0.8  # not ten a second: the browser grows the bar itself
    gate.set()
    job.end()
    job.wait(timeout=10)


def test_max_jobs_leaves_the_oldest_out_and_says_so(comms, env):
    _, four = _cooks()
    timeline = lw.JobTimeline(four, max_jobs=3)
    timeline.comm.hello()
    _serve(four, ["a", "b", "c", "d", "e"])
    st = timeline.state()
    assert len(st["jobs"]) == 3 and st["hidden"] == 2
    assert "2 older jobs left out" in timeline.snapshot_html()
    wait_until(
        lambda: sum(len(m.get("dropped", ())) for m in timeline.comm.custom()) == 2,
        timeout=10,
        message="the front end was told which jobs left",
    )


def test_a_job_left_out_while_it_runs_frees_its_lane(comms, env):
    """A running job that max_jobs leaves out no longer holds its lane: lanes stay at the concurrency."""
    gates = [threading.Event() for _ in range(4)]

    def hold(n: int) -> int:
        gates[n].wait(10)
        return n

    spec = ls.JobSpec("two_ovens", input=int, output=int)
    spec.define_worker(hold, concurrency=2)
    timeline = lw.JobTimeline(spec, max_jobs=2)
    timeline.comm.hello()

    def start(n: int) -> ls.JobHandle:
        job = spec.start()
        job.feed(n)
        job.end()
        return job

    def seen(job: ls.JobHandle, status: str) -> bool:
        return any(
            r["id"] == job.job_id and r["status"] == status for m in timeline.comm.custom() for r in m["jobs"]
        )

    a, b = start(0), start(1)
    wait_until(lambda: seen(a, "running") and seen(b, "running"), timeout=10, message="a and b running")
    gates[1].set()
    b.wait(timeout=10)
    c = start(2)  # a is left out (max_jobs=2) while it still runs
    wait_until(lambda: seen(c, "running"), timeout=10, message="c running")
    assert any(a.job_id in m.get("dropped", ()) for m in timeline.comm.custom())
    gates[0].set()
    a.wait(timeout=10)
    d = start(3)  # runs beside c, in the slot a freed
    wait_until(lambda: seen(d, "running"), timeout=10, message="d running")
    gates[2].set()
    gates[3].set()
    for job in (c, d):
        job.wait(timeout=10)
    wait_until(lambda: seen(c, "completed") and seen(d, "completed"), timeout=10, message="c, d sent ended")
    assert max(g["lanes"] for m in timeline.comm.custom() for g in m["groups"]) == 2
    st = timeline.state()
    assert [(g["name"], g["lanes"]) for g in st["groups"]] == [("two_ovens", 2)]
    assert sorted(r["lane"] for r in st["jobs"]) == [0, 1]  # c and d ran at once: two lanes
    # the lanes hold the spans of the jobs shown, no more
    assert sum(len(lane) for lane in timeline._groups["two_ovens"].lanes) == len(st["jobs"])


def test_bad_targets_and_options_are_refused_by_name(comms, env):
    shows = r"JobTimeline shows a JobSpec \(or a list of them\), a JobHandle or a LiveEnv, not "
    with pytest.raises(TypeError, match=shows + "int"):
        lw.JobTimeline(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=shows + r"list \(an empty list\)"):
        lw.JobTimeline([])
    _, four = _cooks()
    with pytest.raises(TypeError, match=shows + "list"):
        lw.JobTimeline([four, "one_cook"])  # type: ignore[list-item]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ls.LivestackError, match=r"JobTimeline: max_jobs must be an int >= 1"):
            lw.JobTimeline(four, max_jobs=bad)  # type: ignore[arg-type]


def test_an_empty_timeline_says_so_and_a_disposed_one_stops(comms, env):
    _, four = _cooks()
    timeline = lw.JobTimeline(four)
    html = timeline.snapshot_html()
    assert "no jobs yet" in html
    timeline.dispose()
    assert timeline.disposed and timeline not in lw.live_widgets()


def test_the_front_end_uses_the_snapshots_colours():
    from pathlib import Path

    ts = (Path(__file__).resolve().parent.parent / "labextension" / "src" / "timeline.ts").read_text()
    table = re.search(r"STATUS_COLOURS: Record<string, \[string, string\]> = \{([^}]*)\}", ts)
    assert table
    found = dict(
        (m[0], (m[1], m[2])) for m in re.findall(r"(\w+): \['(#[0-9a-f]+)', '(#[0-9a-f]+)'\]", table.group(1))
    )
    assert found == lw._svg.STATUS_COLOURS


TIMELINE_CELL = """\
import livestack_nb as ls
from livestack_nb.widgets import JobTimeline, live_widgets
spec = globals().get("spec") or ls.JobSpec("rerun_oven", input=int, output=int)
if spec.worker_def is None:
    spec.define_worker(lambda n: n)
display(JobTimeline(spec))
spec.run([1], timeout=10)
"""


def test_running_its_cell_again_disposes_the_previous_timeline():
    from kernel import kernel

    with kernel() as k:
        first = k.run(TIMELINE_CELL, "cell-timeline")
        assert [m["msg_type"] for m in first].count("display_data") == 2  # the live view, then its snapshot
        for _ in range(4):
            k.run(TIMELINE_CELL, "cell-timeline")
        out = k.printed("print(len(live_widgets()), [w.disposed for w in live_widgets()])", "cell-count")
        assert out.split() == ["1", "[False]"]


def test_every_message_the_timeline_sends_is_one_it_declares(comms, env):
    from test_messages import _conforms

    from livestack_nb.widgets import _messages

    one, _ = _cooks(fail="b")
    timeline = lw.JobTimeline(one, max_jobs=2)
    timeline.comm.hello()
    _serve(one, ["a", "b", "c"])
    wait_until(
        lambda: {_conforms(m, _messages.TimelineMessage) for m in timeline.comm.custom()}
        == {"TimelineReset", "TimelineState"}
        and any(m.get("dropped") for m in timeline.comm.custom())
        and any("error" in r for m in timeline.comm.custom() for r in m.get("jobs", ())),
        timeout=10,
        message="a reset, then changes with a failed job and one left out",
    )
