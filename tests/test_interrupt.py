"""In a real kernel, an interrupt returns control at once and leaves jobs and the env usable."""

from __future__ import annotations

import time
from pathlib import Path

from kernel import kernel

from livestack_nb.testing import wait_until

SETUP = """\
import os, threading, time
import livestack_nb as ls

gate = threading.Event()

@ls.job_spec(inputs={"default": int}, outputs={"default": int})
def held(job: ls.LiveJob):
    for n in job.input:
        gate.wait()
        job.output.emit(n * 10)

@ls.job_spec
def slow(n: int) -> int:
    if MARK and not os.path.exists(MARK):
        open(MARK, "w").close()  # the job is running: the test may interrupt now
    time.sleep(0.05)
    return n

@ls.job_spec(inputs={"default": int}, outputs={"default": int})
def crunch(job: ls.LiveJob):
    for n in job.input:
        if MARK and n and not os.path.exists(MARK):
            open(MARK, "w").close()  # the processor is busy: the test may interrupt now
        t = time.monotonic()
        while time.monotonic() - t < n:  # busy for n seconds
            pass
        job.output.emit(n)
"""


def _interrupted(k, code: str, started: str, bound: float = 5.0, mark: Path | None = None) -> float:
    """Run ``code``; once it printed ``started`` (and ``mark`` exists), interrupt the kernel.
    Returns how long control took to come back; the cell must end in KeyboardInterrupt."""
    msg_id = k.send(code, "cell-wait")
    k.wait_for_output(msg_id, started)
    if mark is not None:
        wait_until(mark.exists, timeout=30, message="the job started")
    t0 = time.monotonic()
    k.km.interrupt_kernel()
    reply, _ = k.finish(msg_id, timeout=30)
    took = time.monotonic() - t0
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
    assert took < bound, f"control came back {took:.1f}s after the interrupt"
    return took


def test_an_interrupt_during_wait_returns_at_once_and_the_job_goes_on():
    with kernel() as k:
        k.run("MARK = None\n" + SETUP, "cell-setup")
        k.run("job = held.start(); job.feed(1)", "cell-start")
        _interrupted(k, "print('waiting', flush=True); job.wait()", "waiting")
        # the job was not touched by the interrupt: it still runs, takes input and finishes
        out = k.printed(
            "print(job.status)\n"
            "job.feed(2); job.end(); gate.set(); job.wait(timeout=20)\n"
            "print(job.status, job.result())",
            "cell-after",
        )
        assert out.split("\n")[:2] == ["running", "completed [10, 20]"]
        # and the env runs new jobs
        assert k.printed("print(slow.run([1, 2, 3], timeout=20))", "cell-more").strip() == "[1, 2, 3]"


def test_an_interrupted_run_of_a_slow_map_cancels_its_job_and_the_env_goes_on(tmp_path):
    mark = tmp_path / "started"
    with kernel() as k:
        k.run(f"MARK = {str(mark)!r}\n" + SETUP, "cell-setup")
        _interrupted(k, "print('running', flush=True); slow.run(range(100_000))", "running", mark=mark)
        out = k.printed(
            "from livestack_nb.testing import wait_until\n"
            "job = ls.current_env().latest_job(slow)\n"
            "wait_until(lambda: job.status.done, timeout=10)\n"
            "print(job.status)\n"
            "print(slow.run([4, 5], timeout=20))",
            "cell-after",
        )
        assert out.split("\n")[:2] == ["cancelled", "[4, 5]"]


def test_a_cell_running_a_long_sync_processor_can_be_interrupted(tmp_path):
    mark = tmp_path / "crunching"
    with kernel() as k:
        k.run(f"MARK = {str(mark)!r}\n" + SETUP, "cell-setup")
        # Interrupted once the processor is busy (the mark), not while the job is
        # still being set up. The processor busy-loops on a worker thread and shares the GIL with the
        # kernel's own reply, so allow more than "at once" on a loaded machine:
        # what this proves is that an hour-long job does not hold the cell.
        cell = "print('crunching', flush=True); crunch.run([3600])"
        _interrupted(k, cell, "crunching", bound=25.0, mark=mark)
        assert k.printed("print(crunch.run([0, 0], timeout=20))", "cell-after").strip() == "[0, 0]"
