"""The Kitchen side panel's kernel half, in a real kernel, spoken to as the panel speaks.

The panel opens a comm to ``livestack-nb:kitchen``; these tests send the same
comm messages over the kernel's shell channel and read its iopub.
"""

from __future__ import annotations

import queue
import time
import uuid
from typing import Any

from kernel import Kernel, kernel

from livestack_nb.testing import wait_until

TARGET = "livestack-nb:kitchen"


class Panel:
    """One comm to the kitchen target, read from the kernel's iopub."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.comm_id = uuid.uuid4().hex
        self.msgs: list[tuple[float, dict[str, Any]]] = []  # (arrival time, data)
        self.closed = False
        self.opened_models: list[str] = []  # comm_open of widget models, in order

    def open(self) -> None:
        content = {"comm_id": self.comm_id, "target_name": TARGET, "data": {}}
        self.k.kc.shell_channel.send(self.k.kc.session.msg("comm_open", content))

    def send(self, data: dict[str, Any]) -> None:
        content = {"comm_id": self.comm_id, "data": data}
        self.k.kc.shell_channel.send(self.k.kc.session.msg("comm_msg", content))

    def close(self) -> None:
        content = {"comm_id": self.comm_id, "data": {}}
        self.k.kc.shell_channel.send(self.k.kc.session.msg("comm_close", content))

    def read(self, seconds: float = 0.2) -> None:
        """Read iopub for ``seconds``, keeping this comm's messages."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                m = self.k.kc.get_iopub_msg(timeout=left)
            except queue.Empty:
                return
            c = m["content"]
            if m["msg_type"] == "comm_open" and c.get("target_name") == "jupyter.widget":
                self.opened_models.append(c["comm_id"])
            if c.get("comm_id") != self.comm_id:
                continue
            if m["msg_type"] == "comm_msg":
                self.msgs.append((time.monotonic(), c["data"]))
            elif m["msg_type"] == "comm_close":
                self.closed = True

    def last(self, kind: str = "snapshot") -> dict[str, Any] | None:
        for _, d in reversed(self.msgs):
            if d.get("type") == kind:
                return d
        return None

    def wait_for(self, pred: Any, timeout: float = 30, message: str = "") -> None:
        def ok() -> bool:
            self.read(0.1)
            return bool(pred())

        wait_until(ok, timeout=timeout, message=message)


def test_a_kernel_without_livestack_nb_refuses_the_panel_and_importing_it_loads_nothing_heavy():
    with kernel() as k:
        p = Panel(k)
        p.open()
        p.wait_for(lambda: p.closed, message="the kernel closed the comm (no livestack-nb here)")
        assert p.msgs == []
        out = k.printed(
            "import sys, livestack_nb\n"
            "print('livestack_nb.widgets' in sys.modules, 'ipywidgets' in sys.modules)"
        )
        assert out.split() == ["False", "False"]  # the target is registered by name only
        p2 = Panel(k)
        p2.open()
        p2.wait_for(lambda: p2.last() is not None, message="a first snapshot")
        assert not p2.closed
        snap = p2.last()
        assert snap is not None and snap["jobs"] == [] and "env" in snap


SETUP = """\
import time
import livestack_nb as ls

@ls.job_spec(concurrency=2)
def ticker(job: ls.LiveJob):
    for i in range(10**9):
        job.output.emit(i)
        if job.status.done:
            return
        time.sleep(0.0005)

@ls.job_spec
def double(x: int) -> int:
    return 2 * x

orders = ls.current_env().stream("orders", type=int)
orders.emit(1)
done = double.start(job_id="double-1"); done.feed(3); done.end(); done.wait(10)
hot = ticker.start(job_id="hot-1")
"""


def test_the_panel_lists_specs_jobs_workers_and_streams_at_most_ten_messages_a_second():
    with kernel() as k:
        k.run(SETUP)
        p = Panel(k)
        p.open()

        def has_hot() -> bool:
            s = p.last()
            return s is not None and any(j["id"] == "hot-1" and j["outputs"] > 0 for j in s["jobs"])

        p.wait_for(has_hot, message="the running job with outputs")
        snap = p.last()
        assert snap is not None
        assert {"ticker", "double"} <= set(snap["specs"])
        jobs = {j["id"]: j for j in snap["jobs"]}
        assert jobs["double-1"]["status"] == "completed"
        assert (jobs["double-1"]["inputs"], jobs["double-1"]["outputs"]) == (1, 1)
        assert jobs["hot-1"]["status"] == "running" and jobs["hot-1"]["created"] > 0
        workers = {w["spec"]: w for w in snap["workers"]}
        assert workers["ticker"] == {**workers["ticker"], "concurrency": 2, "busy": 1}
        assert snap["streams"] == [{"name": "orders", "count": 1, "rate": snap["streams"][0]["rate"]}]
        assert snap["counts"]["running"] >= 1 and snap["counts"]["completed"] >= 1

        # Under load (a job emitting thousands a second) the panel gets <= 10 messages a second.
        start = len(p.msgs)
        p.read(3.0)
        window = [t for t, _ in p.msgs[start:]]
        assert len(window) >= 10, "the counts moved, so snapshots kept coming"
        span = window[-1] - window[0]
        assert len(window) <= 10 * span + 2, f"{len(window)} messages in {span:.2f}s"
        counts = [d["jobs"] for _, d in p.msgs[start:]]
        hot_outs = [next(j["outputs"] for j in js if j["id"] == "hot-1") for js in counts]
        assert hot_outs == sorted(hot_outs) and hot_outs[-1] > hot_outs[0]

        # Cancel from the panel.
        p.send({"type": "cancel", "job_id": "hot-1"})

        def cancelled() -> bool:
            s = p.last()
            return s is not None and any(j["id"] == "hot-1" and j["status"] == "cancelled" for j in s["jobs"])

        p.wait_for(cancelled, message="hot-1 cancelled from the panel")

        # An idle kitchen sends nothing (ages are start times, counted by the browser).
        p.wait_for(lambda: p.msgs and time.monotonic() - p.msgs[-1][0] > 6, timeout=20, message="quiet")
        before = len(p.msgs)
        p.read(1.0)
        assert len(p.msgs) == before
        p.close()


def test_opening_a_job_and_a_stream_makes_their_widgets_and_bad_requests_say_what_was_wrong():
    with kernel() as k:
        k.run(SETUP)
        p = Panel(k)
        p.open()
        p.wait_for(lambda: p.last() is not None, message="a first snapshot")
        # A background feed (job.feed_from) shows its progress on its job's row.
        k.run('fed = double.start(job_id="fed-1"); feeding = fed.feed_from(range(20_000), end=True)')

        def fed() -> list[Any]:
            s = p.last()
            return [j["feeds"] for j in (s["jobs"] if s else []) if j["id"] == "fed-1"]

        p.wait_for(lambda: fed() and fed()[0] and fed()[0][0]["state"] == "done", message="fed-1 fed")
        feed = fed()[0][0]
        assert (feed["tag"], feed["count"], feed["total"]) == ("default", 20_000, 20_000)
        p.send({"type": "open", "kind": "job", "id": "double-1"})
        p.wait_for(lambda: p.last("opened") is not None, message="the job panel opened")
        opened = p.last("opened")
        assert opened is not None and opened["model_id"] in p.opened_models
        assert opened["title"].startswith("double double-1")
        p.send({"type": "open", "kind": "stream", "id": "orders"})
        p.wait_for(lambda: sum(d.get("type") == "opened" for _, d in p.msgs) == 2, message="the table opened")
        table = [d for _, d in p.msgs if d.get("type") == "opened"][-1]
        p.send({"type": "open", "kind": "plot", "id": "orders"})
        p.wait_for(lambda: sum(d.get("type") == "opened" for _, d in p.msgs) == 3, message="the plot opened")
        out = k.printed(
            "from livestack_nb.widgets.kitchen import kitchens\n"
            "kw = kitchens()[0]\n"
            f"print(sorted(type(w).__name__ for w in kw.opened.values()), {table['model_id']!r} in kw.opened)"
        )
        assert out.strip() == "['JobPanel', 'StreamPlot', 'StreamTable'] True"
        p.send({"type": "close", "model_id": table["model_id"]})
        p.send({"type": "open", "kind": "stream", "id": "nope"})
        p.send({"type": "open", "kind": "oven", "id": "x"})
        p.send({"type": "cancel", "job_id": "no-such-job"})
        p.send({"type": "bake"})
        p.wait_for(lambda: sum(d.get("type") == "error" for _, d in p.msgs) == 4, message="four errors")
        errors = [d["error"] for _, d in p.msgs if d.get("type") == "error"]
        assert "no named stream 'nope'" in errors[0] and "orders" in errors[0]
        assert "cannot open a 'oven'" in errors[1]
        assert "no-such-job" in errors[2]
        assert "unknown kitchen request" in errors[3]
        out = k.printed("print(len(kw.opened))")
        assert out.strip() == "2"
        p.close()
        out = k.printed(
            "import threading\n"
            "from livestack_nb.testing import wait_until\n"
            "wait_until(lambda: not kitchens(), timeout=10)\n"
            "print(len(kitchens()), len(kw.opened), "
            "[t.name for t in threading.enumerate() if t.name == 'livestack-kitchen'])"
        )
        assert out.strip() == "0 0 []"


def test_a_snapshot_lists_the_jobs_an_earlier_process_left_in_a_sqlite_vault(tmp_path):
    import livestack_nb as ls
    from livestack_nb.widgets.kitchen import snapshot

    url = f"sqlite:///{tmp_path / 'k.db'}"

    @ls.job_spec
    def triple(x: int) -> int:
        return 3 * x

    with ls.LiveEnv(url) as first:
        job = triple.start(job_id="t-1")
        job.feed(2)
        job.end()
        job.wait(10)
        live = snapshot(first, first.jobs())
        (row,) = live["jobs"]
        assert (row["id"], row["status"], row["inputs"], row["outputs"]) == ("t-1", "completed", 1, 1)
        assert [w["spec"] for w in live["workers"]] == ["triple"]
    first.close()
    later = ls.LiveEnv(url)
    try:
        snap = snapshot(later, later.jobs())
        (row,) = snap["jobs"]
        # known from the vault only: its status, not its counts
        assert (row["id"], row["spec"], row["status"], row["inputs"]) == ("t-1", "triple", "completed", None)
        assert snap["counts"] == {"completed": 1} and snap["workers"] == [] and snap["streams"] == []
    finally:
        later.close()


def test_a_kernel_serves_at_most_max_open_panels_closing_the_oldest():
    from livestack_nb.widgets.kitchen import MAX_OPEN

    with kernel() as k:
        k.run("import livestack_nb")
        panels = [Panel(k) for _ in range(MAX_OPEN + 1)]
        for p in panels:
            p.open()
        # every panel reads the same iopub: read once and hand the messages round
        first = panels[0]

        def done() -> bool:
            first.read(0.1)
            return first.closed

        wait_until(done, timeout=30, message="the oldest panel closed")
        out = k.printed("from livestack_nb.widgets.kitchen import kitchens\nprint(len(kitchens()))")
        assert out.strip() == str(MAX_OPEN)


def test_a_snapshot_lists_the_newest_jobs_and_counts_them_all():
    import livestack_nb as ls
    from livestack_nb.widgets.kitchen import MAX_JOBS, snapshot

    @ls.job_spec
    def inc(x: int) -> int:
        return x + 1

    with ls.LiveEnv(keep_jobs=None) as env:  # every job kept, so the vault lists them all
        for i in range(MAX_JOBS + 20):
            assert inc.run([i]) == [i + 1]
        snap = snapshot(env, env.jobs())
        assert snap["job_total"] == MAX_JOBS + 20
        assert snap["counts"] == {"completed": MAX_JOBS + 20}
        assert len(snap["jobs"]) == MAX_JOBS
        newest = [r.job_id for r in env.jobs()][-MAX_JOBS:]
        assert sorted(j["id"] for j in snap["jobs"]) == sorted(newest)
    env.close()


def test_the_panel_follows_the_envs_statuses_and_stops_following_when_closed():
    """Statuses are pushed to the kitchen (the env's status feed), not looked for: an idle
    kitchen still shows a job that starts and ends at once, and a closed one stops following."""
    with kernel() as k:
        k.run("import livestack_nb as ls\nenv = ls.current_env()")
        p = Panel(k)
        p.open()
        p.wait_for(lambda: p.last() is not None, message="a first snapshot")
        assert k.printed("print(len(env.status_feed))").strip() == "1"
        k.run(
            "@ls.job_spec\n"
            "def halve(x: int) -> float:\n"
            "    return x / 2\n"
            "j = halve.start(job_id='halve-1'); j.feed(4); j.end(); j.wait(10)\n"
        )

        def listed() -> bool:
            s = p.last()
            jobs = [] if s is None else s["jobs"]
            return any(j["id"] == "halve-1" and j["status"] == "completed" for j in jobs)

        p.wait_for(listed, message="the job that started and ended, listed completed")
        from test_messages import _conforms

        from livestack_nb.widgets._messages import KitchenMessage

        assert {_conforms(d, KitchenMessage) for _, d in p.msgs} == {"KitchenSnapshot"}
        p.close()
        wait_until(lambda: k.printed("print(len(env.status_feed))").strip() == "0", timeout=10)
