"""A real IPython kernel for tests: cells sent as JupyterLab sends them (with a cellId)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager, start_new_kernel

import livestack_nb

ROOT = str(Path(livestack_nb.__file__).resolve().parent.parent)


class Kernel:
    """A running kernel and its client; ``run`` executes one cell and returns its outcome."""

    def __init__(self, km: KernelManager, kc: Any) -> None:
        self.km = km
        self.kc = kc

    def send(self, code: str, cell_id: str | None = None) -> str:
        """Send a cell; returns its message id (collect with :meth:`finish`)."""
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
        }
        msg = self.kc.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
        self.kc.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def finish(self, msg_id: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The reply to ``msg_id`` and its iopub messages, up to idle."""
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        out = []
        while True:
            m = self.kc.get_iopub_msg(timeout=timeout)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(m)
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                return reply["content"], out

    def run(self, code: str, cell_id: str | None = None, timeout: float = 60) -> list[dict[str, Any]]:
        """Execute ``code``; it must succeed. Returns its iopub messages."""
        reply, out = self.finish(self.send(code, cell_id), timeout)
        assert reply["status"] == "ok", reply
        return out

    def printed(self, code: str, cell_id: str | None = None, timeout: float = 60) -> str:
        """What ``code`` printed to stdout."""
        return printed(self.run(code, cell_id, timeout))

    def wait_for_output(self, msg_id: str, text: str, timeout: float = 30) -> None:
        """Read iopub until the cell ``msg_id`` has printed ``text`` (its messages are consumed)."""
        deadline = time.monotonic() + timeout
        seen = ""
        while text not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"the cell did not print {text!r} within {timeout}s (printed {seen!r})"
            m = self.kc.get_iopub_msg(timeout=left)
            if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream":
                seen += m["content"]["text"]


def printed(msgs: list[dict[str, Any]]) -> str:
    return "".join(
        m["content"].get("text", "")
        for m in msgs
        if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
    )


def kernel_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))


@contextmanager
def kernel() -> Iterator[Kernel]:
    """A fresh python3 kernel that sees this checkout of livestack_nb; shut down afterwards."""
    km, kc = start_new_kernel(kernel_name="python3", env=kernel_env())
    try:
        yield Kernel(km, kc)
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)
