"""In a real kernel, running a cell again disposes the widgets its previous run made."""

from __future__ import annotations

import contextlib
import queue
import time

from kernel import kernel

MAKE = """\
from livestack_nb.stream import DataStream
from livestack_nb.widgets import StreamTable, live_widgets
s = globals().setdefault("s", DataStream("cell"))
display(s)
"""


def test_rerunning_a_cell_disposes_its_previous_widgets():
    with kernel() as k:
        first = k.run(MAKE, "cell-a")
        kinds = [m["msg_type"] for m in first]
        assert kinds.count("display_data") == 2  # the live view, then its snapshot
        k.run(MAKE, "cell-a")
        k.run(MAKE, "cell-b")
        out = k.printed("print(len(live_widgets()), len(s._listeners))", "cell-c")
        assert out.split() == ["2", "2"]  # cell-a's first table is gone, with its subscription


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
        # read iopub from the send on: the pump may send before the cell's idle,
        # and Kernel.finish drops messages of other parents (the views' cell)
        k.send("s.push([{'v': i} for i in range(1, 50)])", "cell-feed")
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
