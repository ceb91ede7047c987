"""In a real kernel, running a cell again disposes the widgets its previous run made."""

from __future__ import annotations

import os
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
