"""In a real kernel, running a cell again disposes the widgets its previous run made."""

from __future__ import annotations

import contextlib
import os
import queue
import time
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel

import livestack_nb

MAKE = """\
from livestack_nb.stream import DataStream
from livestack_nb.widgets import StreamTable, live_widgets
s = globals().setdefault("s", DataStream("cell"))
display(s)
"""


def _run(kc: Any, code: str, cell_id: str | None) -> list[dict[str, Any]]:
    """Execute ``code`` as JupyterLab does (with the cell's id) and return its iopub messages."""
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
    }
    msg = kc.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
    kc.shell_channel.send(msg)
    reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    out = []
    while True:
        m = kc.get_iopub_msg(timeout=60)
        if m["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            continue
        out.append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return out


def _printed(msgs: list[dict[str, Any]]) -> str:
    return "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")


def test_rerunning_a_cell_disposes_its_previous_widgets():
    root = str(Path(livestack_nb.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        first = _run(kc, MAKE, "cell-a")
        kinds = [m["msg_type"] for m in first]
        assert kinds.count("display_data") == 2  # the live view, then its snapshot
        _run(kc, MAKE, "cell-a")
        _run(kc, MAKE, "cell-b")
        out = _run(kc, "print(len(live_widgets()), len(s._listeners))", "cell-c")
        assert _printed(out).split() == ["2", "2"]  # cell-a's first table is gone, with its subscription
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


LIVE = """\
import threading, comm
from livestack_nb.stream import DataStream
from livestack_nb.widgets import StreamTable, StreamPlot, live_widgets
s = globals().setdefault("s", DataStream("cell"))
display(s)
display(StreamPlot(s, y=["v"], kind="line"))
"""

COUNT = """\
print(threading.active_count(), len(live_widgets()), len(s._listeners), len(comm.get_comm_manager().comms))
"""


def test_fifty_reruns_of_a_cell_keep_threads_comms_and_subscriptions_constant():
    from kernel import kernel

    with kernel() as k:
        k.run("s = None; del s", "cell-init")
        k.run(LIVE, "cell-live")
        k.run("s.push([{'v': 0}])", "cell-feed")  # the pump thread starts with the first update
        first = k.printed(COUNT, "cell-count").split()
        for _ in range(49):
            msgs = k.run(LIVE, "cell-live")
        last = k.printed(COUNT, "cell-count").split()
        assert last == first, f"threads, widgets, listeners, comms: after 1 run {first}, after 50 {last}"
        assert first[1:3] == ["2", "2"]
        opened = [m["content"] for m in msgs if m["msg_type"] == "comm_open"]
        live_comms = {
            c["comm_id"] for c in opened if c["data"]["state"].get("_view_module") == "livestack-nb"
        }
        assert len(live_comms) == 2  # the table and the plot (the others are their layouts)
        # a feed afterwards reaches the two live views, and no stale one
        msg_id = k.send("s.push([{'v': i} for i in range(1, 50)])", "cell-feed")
        k.finish(msg_id)
        updated: set[str] = set()
        stale: set[str] = set()
        deadline = time.monotonic() + 20
        while updated != live_comms and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                m = k.kc.get_iopub_msg(timeout=1)
                if m["msg_type"] == "comm_msg":
                    cid = m["content"]["comm_id"]
                    (updated if cid in live_comms else stale).add(cid)
        assert updated == live_comms, "the live views did not get the feed"
        assert not stale, f"{len(stale)} views of earlier runs were sent the feed"
