"""A kernel interrupt delivered at the n-th point where Python would deliver it.

CPython runs a signal's handler in the main thread only at some points of the
bytecode: on entering a function, after a call returns, on a backward jump
(and a blocking ``with lock:`` may be interrupted before it holds the lock).
:class:`InterruptAt` counts those points in the frames of livestack-nb and
``threading`` on the main thread, and at the n-th one sends SIGINT to the
process, through the real signal machinery: the handler in place then (the
default one raises KeyboardInterrupt; a held section records it) decides what
happens. Trying n = 1, 2, ... until nothing is left to interrupt covers every
point of a piece of code, deterministically.
"""

from __future__ import annotations

import dis
import signal
import sys
import threading
from pathlib import Path
from types import CodeType, FrameType, TracebackType
from typing import Any

import livestack_nb

PACKAGE = str(Path(livestack_nb.__file__).resolve().parent)
THREADING = threading.__file__

_BACK = ("JUMP_BACKWARD", "JUMP_BACKWARD_IF_NONE", "JUMP_BACKWARD_IF_NOT_NONE", "JUMP_BACKWARD_IF_FALSE",
         "JUMP_BACKWARD_IF_TRUE")  # not JUMP_BACKWARD_NO_INTERRUPT
if sys.version_info >= (3, 11):
    # before these; and after these
    _AT = {dis.opmap["RESUME"], dis.opmap["BEFORE_WITH"]}
    _AFTER = {c for n, c in dis.opmap.items() if n in ("CALL", "CALL_FUNCTION_EX") or n.endswith(_BACK)}
    _NOT_AFTER: set[int] = set()
else:  # 3.10 looks before every instruction but those that follow these
    _AT = set(dis.opmap.values())
    _AFTER = set()
    _NOT_AFTER = {dis.opmap[n] for n in ("SETUP_FINALLY", "SETUP_WITH", "BEFORE_ASYNC_WITH", "YIELD_FROM")}


def _ours(code: CodeType) -> bool:
    return code.co_filename.startswith(PACKAGE) or code.co_filename == THREADING


class InterruptAt:
    """``with InterruptAt(n):`` sends SIGINT at the n-th point of the block (if it has that many).

    ``fired`` tells whether it did, ``where`` says where (file, function, line).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.fired = False
        self.where: tuple[str, str, int | None] | None = None
        self._last: dict[int, int] = {}  # frame id -> the opcode it ran last

    def __enter__(self) -> InterruptAt:
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        sys.settrace(self._call)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        sys.settrace(None)

    def _call(self, frame: FrameType, event: str, arg: Any) -> Any:
        if self.fired or not _ours(frame.f_code):
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return self._step

    def _step(self, frame: FrameType, event: str, arg: Any) -> Any:
        key = id(frame)
        if event == "return":
            self._last.pop(key, None)
            return None
        if event != "opcode" or self.fired:
            return self._step
        op = frame.f_code.co_code[frame.f_lasti]
        last = self._last.get(key)
        self._last[key] = op
        if (op in _AT and last not in _NOT_AFTER) or last in _AFTER:
            self.count += 1
            if self.count == self.n:
                self.fired = True
                self.where = (Path(frame.f_code.co_filename).name, frame.f_code.co_name, frame.f_lineno)
                sys.settrace(None)
                signal.raise_signal(signal.SIGINT)  # what a kernel interrupt is
        return self._step
