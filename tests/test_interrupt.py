"""An interrupt returns control at once and leaves jobs and the env usable: in a real
kernel, and at every point of a first job's set-up where Python could deliver one."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from conftest import closing_env
from interrupt_points import InterruptAt
from kernel import kernel

import livestack_nb as ls
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


def _first_job_spec(form: str, name: str, init: Callable[[], None]) -> ls.JobSpec:
    """A new spec of ``form`` with an ``init`` hook and one thread: its first job sets a worker up."""
    spec = ls.JobSpec(name, input=int, output=int)

    def processor(job: ls.LiveJob) -> None:
        for x in job.input:
            job.output.emit(x)

    async def async_processor(job: ls.LiveJob) -> None:
        async for x in job.input:
            job.output.emit(x)

    def same(x: int) -> int:
        return x

    fn = {"processor": processor, "async": async_processor, "map": same}[form]
    spec.define_worker(fn, concurrency=1, init=init)
    return spec


@pytest.mark.parametrize("form", ["processor", "async", "map"])
def test_an_interrupt_anywhere_in_a_first_jobs_set_up_leaves_the_spec_able_to_run_jobs(form: str) -> None:
    """A kernel interrupt at each point of ``spec.start()`` (worker, runner, thread or loop
    made for the first job). Before the job is whole it is held, and then cancels that job;
    after, the job runs (its caller may not have the handle: ``env.latest_job`` finds it).
    Never a job left "requested", and the same spec, whose one thread that job may hold,
    starts and completes the next job."""
    n = 0
    while True:
        n += 1
        inits: list[int] = []
        with closing_env() as env:
            spec = _first_job_spec(form, f"{form}-{n}", partial(inits.append, 1))
            point = InterruptAt(n)
            try:
                with point:
                    spec.start()
            except KeyboardInterrupt:
                pass
            if not point.fired:
                break  # n went past the last point
            where = f"interrupted at point {n} {point.where}"
            made = env.latest_job(spec)
            if made is not None:
                wait_until(lambda j=made: j.status is not ls.JobStatus.REQUESTED, timeout=5, message=where)
                assert made.status in (ls.JobStatus.RUNNING, ls.JobStatus.CANCELLED), where
                made.cancel()  # as its caller would, to free the spec's one thread
            assert spec.run([1, 2, 3], timeout=5) == [1, 2, 3], where
            assert inits == [1], where  # the hook ran once, before the first job that ran
            assert not [r for r in env.jobs() if r.status == "requested"], where
    assert n > 100, f"only {n - 1} points: the trace did not see the set-up"


@pytest.mark.parametrize("call", ["feed", "end"])
@pytest.mark.parametrize("form", ["processor", "async", "map"])
def test_an_interrupt_anywhere_in_a_feed_or_end_leaves_the_job_able_to_take_input_and_end(
    form: str, call: str
) -> None:
    """A kernel interrupt at each point of a job's first ``feed`` (which starts a map's
    thread) or of its ``end``: the value may or may not have gone in, but the job takes
    the next one, ends when ended (again), and cancelling or closing never hangs."""
    n = 0
    while True:
        n += 1
        with closing_env():
            spec = _first_job_spec(form, f"{form}-{n}", _no_init)
            job = spec.start()
            if call == "end":
                job.feed(1)
            point = InterruptAt(n)
            try:
                with point:
                    if call == "feed":
                        job.feed(1)
                    else:
                        job.end()
            except KeyboardInterrupt:
                pass
            if not point.fired:
                break
            where = f"interrupted at point {n} {point.where}"
            if call == "feed":
                job.feed(2)
            job.end()  # (again, for an interrupted end: it delivers what that left)
            try:
                job.wait(timeout=5)
            except ls.WaitTimeout:
                job.cancel()  # must not hang either
                raise AssertionError(f"{where}: the job never ended") from None
            assert job.result() in (([1, 2], [2]) if call == "feed" else ([1],)), where
    assert n > 20, f"only {n - 1} points: the trace did not see the call"


def _no_init() -> None:
    pass


@pytest.mark.parametrize("form", ["processor", "async", "map"])
def test_an_init_hook_raising_keyboard_interrupt_fails_its_job_and_the_next_job_runs_it_again(
    env: ls.LiveEnv, form: str
) -> None:
    calls: list[int] = []

    def init() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise KeyboardInterrupt

    spec = _first_job_spec(form, form, init)
    job = spec.start()
    job.end()  # (no feed: the hook may fail the job, and end its input, first)
    with pytest.raises(ls.JobFailed) as failed:
        job.wait(timeout=5)
    assert isinstance(failed.value.__cause__, KeyboardInterrupt)
    assert spec.run([1, 2], timeout=5) == [1, 2]
    assert calls == [0, 1]


GATED = """\
import os
import livestack_nb as ls
from livestack_nb.testing import wait_until
from livestack_nb.vault.memory import MemoryVault

class Gate(MemoryVault):
    \"\"\"Holds the first job's set-up (as it records the job) until the gate file exists.\"\"\"
    def add_job(self, record):
        if not os.path.exists(GATE):
            print("setting up", flush=True)
            wait_until(lambda: os.path.exists(GATE), timeout=30)
        super().add_job(record)

env = ls.LiveEnv(vault=Gate())
ls.use_env(env)
first = ls.JobSpec("first", input=int, output=int)

def copy(job: ls.LiveJob):
    for x in job.input:
        job.output.emit(x)

first.define_worker(copy, concurrency=1)
"""


def test_a_kernel_interrupt_while_a_first_job_is_set_up_cancels_it_and_the_spec_runs_the_next(tmp_path):
    gate = tmp_path / "gate"
    with kernel() as k:
        k.run(f"GATE = {str(gate)!r}\n" + GATED, "cell-setup")
        msg_id = k.send("first.start()", "cell-start")
        k.wait_for_output(msg_id, "setting up")
        k.km.interrupt_kernel()  # lands while the set-up holds...
        gate.touch()  # ...which then goes on to its end
        reply, _ = k.finish(msg_id, timeout=30)
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
        out = k.printed(
            "job = env.latest_job(first)\n"
            "print(job.status, [e.message for e in job.logs])\n"
            "print(first.run([1, 2], timeout=20))\n"
            "print(sorted(r.status for r in env.jobs()))",
            "cell-after",
        )
        assert out.split("\n")[:3] == [
            "cancelled ['cancelled: the kernel was interrupted while the job was set up']",
            "[1, 2]",
            "['cancelled', 'completed']",
        ], out


def test_option_validators_of_a_flows_nodes_run_before_interrupts_are_held(env):
    """Validators are user code and may take their time: Ctrl-C must reach them,
    so a flow run validates its nodes' options before its set-up holds SIGINT."""
    import signal

    from pydantic import BaseModel, model_validator

    handlers: list[object] = []

    class Heat(BaseModel):
        level: int = 1

        @model_validator(mode="after")
        def note_handler(self) -> Heat:
            handlers.append(signal.getsignal(signal.SIGINT))
            return self

    @ls.job_spec(options=Heat)
    def oven(x: int, options: Heat) -> int:
        return x * options.level

    flow = ls.Liveflow("heated")
    flow.add(oven)
    for options in (None, {"oven": {"level": 2}}):
        handlers.clear()
        run = env.start(flow, options)
        run.end()
        run.wait(timeout=10)
        assert handlers and all(h is signal.default_int_handler for h in handlers), handlers


def test_an_interrupt_stops_a_loop_or_next_value_waiting_on_a_stream_at_once():
    with kernel() as k:
        k.run("MARK = None\n" + SETUP, "cell-setup")
        k.run("job = held.start(); job.feed(1); gate.set()", "cell-start")
        _interrupted(
            k, "print('reading', flush=True)\nfor v in job.output():\n    print(v, flush=True)", "reading"
        )
        _interrupted(
            k, "out = job.output(); print(out.next_value(), flush=True); out.next_value()", "10", bound=5.0
        )
        _interrupted(k, "print('timed', flush=True); out.next_value(timeout=600)", "timed")
        # the job and the stream are untouched: more values come, and the loop ends with the job
        out = k.printed("job.feed(2); job.end(); print(list(job.output()), out.next_value())", "cell-after")
        assert out.strip() == "[10, 20] 20"
