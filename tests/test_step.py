"""Step mode: every hop of a datapoint waits at a gate until ``run.step()`` releases it.

Every spec form (map, flat-map, processor; sync and async), fed per value and in
batches, in a chain, a single job, a nested flow, a transform and a loop; the
order is the same on every run; play, pause, an interrupt and a cancel during a
step, and a node failing at its hop.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

import livestack_nb as ls
from livestack_nb.testing import wait_until

# -- specs of every form: each adds one to an int --------------------------------------


@ls.job_spec(name="step-map")
def plus_map(n: int) -> int:
    return n + 1


@ls.job_spec(name="step-flatmap")
def plus_flat(n: int):
    yield n + 1


@ls.job_spec(name="step-async-map")
async def plus_async_map(n: int) -> int:
    await asyncio.sleep(0)
    return n + 1


@ls.job_spec(name="step-async-flatmap")
async def plus_async_flat(n: int):
    await asyncio.sleep(0)
    yield n + 1


@ls.job_spec(name="step-processor", input=int, output=int)
def plus_processor(job: ls.LiveJob):
    for n in job.input:
        job.output.emit(n + 1)


@ls.job_spec(name="step-async-processor", input=int, output=int)
async def plus_async_processor(job: ls.LiveJob):
    async for n in job.input:
        await job.output.emit(n + 1)


FORMS = [plus_map, plus_flat, plus_async_map, plus_async_flat, plus_processor, plus_async_processor]


@ls.job_spec(name="step-double")
def double(n: int) -> int:
    return n * 2


def _chain(first: ls.JobSpec, name: str) -> ls.Liveflow:
    return ls.Liveflow(
        name,
        connections=[ls.conn(first, double)],
        exposures=[ls.expose(first.input(), "numbers"), ls.expose(double.output(), "results")],
    )


def _route(hops: list[ls.Hop]) -> list[tuple[str, str]]:
    return [(h.edge, h.text) for h in hops]


# -- order ------------------------------------------------------------------------------


@pytest.mark.parametrize("first", FORMS, ids=lambda s: s.name)
@pytest.mark.parametrize("batch", [False, True], ids=["feed", "feed_many"])
def test_a_chain_of_every_form_moves_one_hop_per_step(env, first, batch):
    flow = _chain(first, f"chain-{first.name}")
    run = flow.start(step=True)
    assert run.stepping
    if batch:
        run.input("numbers").feed_many([1, 2])
    else:
        run.input("numbers").feed(1)
        run.input("numbers").feed(2)
    # Fed before any step: both wait at the way in, nothing has moved.
    assert _route(run.waiting) == [("port:in:numbers", "1"), ("port:in:numbers", "2")]
    assert run.output("results").values() == []
    edge = f"{first.name}/default->step-double/default"

    hop = run.step()
    assert hop is not None
    assert (hop.index, hop.edge, hop.source, hop.target, hop.target_tag) == (
        0,
        "port:in:numbers",
        None,
        first.name,
        "default",
    )
    assert hop.value == 1 and hop.datapoint_id.endswith("/in/numbers:0")
    assert _route(run.waiting) == [("port:in:numbers", "2"), (edge, "2")]
    assert run.output("results").values() == []

    hops = run.step(3)
    assert _route(hops) == [("port:in:numbers", "2"), (edge, "2"), (edge, "3")]
    assert [h.index for h in hops] == [1, 2, 3]
    assert run.output("results").values() == []  # two wait at the way out
    assert _route(run.waiting) == [("port:out:results", "4"), ("port:out:results", "6")]

    assert _route(run.step(5)) == [("port:out:results", "4"), ("port:out:results", "6")]
    assert run.output("results").values() == [4, 6]
    assert run.step() is None  # nothing waits
    run.end()
    run.wait(timeout=10)
    assert run.status is ls.JobStatus.COMPLETED
    assert [h.index for h in run.hops] == list(range(6))


@pytest.mark.parametrize("spec", FORMS, ids=lambda s: s.name)
def test_a_single_job_started_in_step_mode_hops_in_and_out(env, spec):
    run = spec.start(step=True)
    run.feed_many([10, 20])
    run.end()
    assert run.output().values() == []
    first = run.step()
    assert first is not None and (first.edge, first.source, first.target) == (
        "port:in:default",
        None,
        spec.name,
    )
    rest = run.step(10)
    assert _route(rest) == [
        ("port:in:default", "20"),
        ("port:out:default", "11"),
        ("port:out:default", "21"),
    ]
    run.wait(timeout=10)
    assert run.status is ls.JobStatus.COMPLETED
    assert run.output().values() == [11, 21]


def test_a_nested_flow_and_a_transform_step_inside_too(env):
    inner = ls.Liveflow(
        "step-inner",
        connections=[ls.conn(plus_map, double)],
        exposures=[ls.expose(plus_map.input(), "in"), ls.expose(double.output(), "out")],
    )
    last = plus_processor.labeled("last")
    outer = ls.Liveflow(
        "step-outer",
        connections=[
            ls.conn(inner.output("out"), last, transform=lambda n: n + 100),
        ],
        exposures=[ls.expose(inner.input("in"), "x"), ls.expose(last.output(), "y")],
    )
    run = outer.start(step=True)
    run.feed(1)
    run.end()
    hops = run.step(10)
    assert [(h.edge, h.scope, h.text) for h in hops] == [
        ("port:in:x", "", "1"),
        ("step-map/default->step-double/default", "step-inner", "2"),
        ("step-inner/out->last/default", "", "4"),  # the value as it leaves; transformed on arrival
        ("port:out:y", "", "105"),
    ]
    run.wait(timeout=10)
    assert run.output("y").values() == [105]


# -- determinism ------------------------------------------------------------------------


@ls.job_spec(name="step-countdown", input=int, outputs={"default": int, "said": str})
def countdown(job: ls.LiveJob):
    for n in job.input:
        job.output("said").emit(f"at {n}")
        if n > 0:
            job.output.emit(n - 1)


@ls.job_spec(name="step-async-countdown")
async def countdown_async(n: int):
    await asyncio.sleep(0)
    if n > 0:
        yield n - 1


def _looping_run(name: str) -> list[tuple[str, str]]:
    back = countdown_async.labeled("back")
    fan = plus_async_processor.labeled("fan")
    flow = ls.Liveflow(
        name,
        connections=[ls.conn(countdown, back), ls.conn(back, countdown), ls.conn(countdown, fan)],
        exposures=[ls.expose(countdown.input(), "start"), ls.expose(countdown.output("said"), "said")],
    )
    run = flow.start(step=True)
    run.input("start").feed_many([3, 2])
    run.input("start").feed(4)
    run.end()
    hops: list[ls.Hop] = []
    while (hop := run.step()) is not None:
        hops.append(hop)
    run.wait(timeout=10)
    assert run.status is ls.JobStatus.COMPLETED  # the loop ended once its last hop was released
    return _route(hops)


def test_the_same_loop_stepped_twice_gives_the_same_hops(env):
    first = _looping_run("step-loop")
    second = _looping_run("step-loop")
    assert first == second
    # Three starts, counted down by two in each round of the loop: 3 -> 2, 0; 2 -> 1; 4 -> 3, 1.
    around = [text for edge, text in first if edge == "step-countdown/default->back/default"]
    assert sorted(around) == ["0", "1", "1", "2", "3"]
    assert first[:3] == [("port:in:start", "3"), ("port:in:start", "2"), ("port:in:start", "4")]


def test_the_same_flow_with_several_inputs_gives_the_same_hops(env):
    @ls.job_spec(name="step-pair", inputs={"left": int, "right": int}, output=str)
    def pair(job: ls.LiveJob):
        for tag, v in job.input.merge("left", "right"):
            job.output.emit(f"{tag}:{v}")

    def once() -> list[tuple[str, str]]:
        flow = ls.Liveflow(
            "step-pairs",
            connections=[
                ls.conn(plus_async_map, pair.input("left")),
                ls.conn(plus_flat, pair.input("right")),
            ],
            exposures=[
                ls.expose(plus_async_map.input(), "a"),
                ls.expose(plus_flat.input(), "b"),
                ls.expose(pair.output(), "pairs"),
            ],
        )
        run = flow.start(step=True)
        for i in range(3):
            run.input("a").feed(i)
            run.input("b").feed_many([10 * i, 10 * i + 1])
        run.end()
        hops = run.step(100)
        run.wait(timeout=10)
        return _route(hops)

    first = once()
    assert len(first) == 9 * 3  # in, across, out: nine values
    assert once() == first


# -- play and pause ---------------------------------------------------------------------


def test_play_releases_hops_in_the_background_and_pause_stops_it(env):
    run = _chain(plus_map, "step-play").start(step=True)
    run.feed_many(list(range(5)))
    gate = threading.Event()  # play stops after the first hop told
    events: list[tuple[str, int]] = []

    def told(event: str, hop: ls.Hop) -> None:
        events.append((event, hop.index))
        if event == "settled" and hop.index == 1:
            gate.set()

    disposable = run.on_hop(told)
    run.play(interval=0.01)
    assert gate.wait(10)
    run.pause()
    assert not run.playing
    stopped = len(run.hops)
    assert stopped >= 2
    assert run.step() is not None  # stepping by hand goes on where play stopped
    assert len(run.hops) == stopped + 1
    assert ("released", 0) in events and events.index(("released", 0)) < events.index(("settled", 0))
    assert ("waiting", -1) in events  # what each hop made, at its gate
    disposable.dispose()
    told_before = len(events)
    run.end()
    run.play(interval=0)  # to the end
    run.wait(timeout=10)
    assert len(events) == told_before  # no longer told
    wait_until(lambda: not run.playing)
    assert run.output("results").values() == [2, 4, 6, 8, 10]
    assert len(run.hops) == 15


def test_bad_steps_are_refused_with_what_was_wrong(env):
    plain = _chain(plus_map, "step-plain").start()
    assert not plain.stepping and plain.hops == [] and plain.waiting == []
    with pytest.raises(ls.LivestackError, match=r"not started in step mode.*start\(step=True\)"):
        plain.step()
    plain.end()
    run = plus_map.start(step=True)
    with pytest.raises(ls.LivestackError, match=r"n must be an int >= 0, not -1"):
        run.step(-1)
    with pytest.raises(ls.LivestackError, match=r"interval=.*seconds >= 0, not -2"):
        run.play(interval=-2)
    for bad in (float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match=rf"interval=.*seconds >= 0, not {bad!r}"):
            run.play(interval=bad)
    assert not run.playing
    with pytest.raises(ls.LivestackError, match="on_hop takes a callable"):
        run.on_hop("nope")  # type: ignore[arg-type]
    run.end()
    run.wait(timeout=10)


# -- interrupt, cancel, failure ---------------------------------------------------------


@ls.job_spec(name="step-slow", input=int, output=int)
def slow(job: ls.LiveJob):
    for n in job.input:
        job.output.emit(n)
        release.wait(10)  # held until the test says


release = threading.Event()


def test_an_interrupt_during_a_step_leaves_the_run_whole(env):
    release.clear()
    run = slow.start(step=True)
    run.feed_many([1, 2])
    # 1 reaches the job, which emits it and then holds on: the step waits for it to settle.
    timer = threading.Timer(0.2, signal.raise_signal, (signal.SIGINT,))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        run.step(timeout=10)
    timer.join()
    assert _route(run.hops) == [("port:in:default", "1")]  # released and recorded, once
    assert _route(run.waiting) == [("port:in:default", "2"), ("port:out:default", "1")]
    release.set()
    run.end()
    assert _route(run.step(10)) == [
        ("port:in:default", "2"),
        ("port:out:default", "1"),
        ("port:out:default", "2"),
    ]
    run.wait(timeout=10)
    assert run.output().values() == [1, 2]


def test_cancel_during_a_step_ends_it_and_drops_what_waits(env):
    release.clear()
    run = slow.start(step=True)
    run.feed_many([1, 2, 3])
    threading.Timer(0.2, run.cancel).start()
    hop = run.step(timeout=10)  # 1 reaches the job, which holds on: the step waits until the cancel
    assert hop is not None and hop.text == "1"
    wait_until(lambda: run.status is ls.JobStatus.CANCELLED)
    assert run.waiting == [] and run.step() is None
    run.play(interval=0)  # a cancelled run does not play
    assert not run.playing
    release.set()
    assert run.output().values() == []


@ls.job_spec(name="step-fussy")
def fussy(n: int) -> int:
    if n == 2:
        raise ValueError("two is not allowed")
    return n


@ls.job_spec(name="step-fussy-processor", input=int, output=int)
def fussy_processor(job: ls.LiveJob):
    for n in job.input:
        if n == 2:
            raise ValueError("two is not allowed")
        job.output.emit(n)


@ls.job_spec(name="step-fussy-async")
async def fussy_async(n: int) -> int:
    await asyncio.sleep(0)
    if n == 2:
        raise ValueError("two is not allowed")
    return n


@pytest.mark.parametrize("spec", [fussy, fussy_processor, fussy_async], ids=lambda s: s.name)
def test_a_node_failing_in_step_mode_fails_at_its_hop(env, spec):
    run = _chain(spec, f"flow-{spec.name}").start(step=True)
    run.feed_many([1, 2, 3])
    assert run.step().failed is False
    failed = run.step()
    assert failed is not None and failed.failed and failed.target == spec.name and failed.text == "2"
    assert "(failed)" in str(failed)
    assert run.hops[-1] == failed
    assert run.status is ls.JobStatus.FAILED
    node = env.job(run.node_jobs[spec.name])
    assert node.status is ls.JobStatus.FAILED and "two is not allowed" in str(node.error)
    assert run.waiting == [] and run.step() is None


def test_a_transform_raising_fails_the_run_at_its_hop(env):
    flow = ls.Liveflow(
        "step-bad-transform",
        connections=[ls.conn(plus_map, double, transform=lambda n: 1 // 0)],
        exposures=[ls.expose(plus_map.input(), "n")],
    )
    run = flow.start(step=True)
    run.feed(1)
    run.step()
    hop = run.step()
    assert hop is not None and hop.edge == "step-map/default->step-double/default"
    assert run.status is ls.JobStatus.FAILED
    assert isinstance(run.error, ZeroDivisionError)


def test_a_hop_text_is_short_plain_text(env):
    run = ls.job_spec(name="step-text", input=str, output=str)(lambda s: s).start(step=True)
    run.feed("<b>" + "x" * 200 + "\n</b>")
    hop = run.step()
    assert hop is not None and len(hop.text) == 60 and hop.text.startswith("<b>xxx") and "\n" not in hop.text
    assert hop.value.endswith("</b>")
    run.end()
    run.step(5)
    run.wait(timeout=10)


def test_a_run_without_step_mode_builds_its_streams_as_before(env):
    run = _chain(plus_map, "step-off").start()
    first = env.job(run.node_jobs["step-map"])._job
    second = env.job(run.node_jobs["step-double"])._job
    # Shared streams (the fused path), no count of work in flight, no stepper.
    assert second._inputs["default"] is first._outputs["default"]
    assert run.output("results") is second._outputs["default"]
    assert run.input("numbers").stream is first._inputs["default"]
    assert first._life.activity is None and run._job._life.stepper is None
    run.feed_many([1, 2])
    run.end()
    run.wait(timeout=10)
    assert run.output("results").values() == [4, 6]


def test_an_interrupt_while_playing_leaves_play_going(env):
    run = _chain(plus_async_map, "step-play-on").start(step=True)
    run.feed_many([1, 2, 3])
    run.end()
    run.play(interval=0.05)  # nine hops: at least 0.4 s
    timer = threading.Timer(0.1, signal.raise_signal, (signal.SIGINT,))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        run.wait(timeout=10)  # the interrupt stops this wait, not the play in the background
    timer.join()
    run.wait(timeout=10)
    assert run.status is ls.JobStatus.COMPLETED and len(run.hops) == 9
    assert run.output("results").values() == [4, 6, 8]


# -- callbacks, gates after the end ----------------------------------------------------


def test_a_callback_may_step_and_pause(env):
    # The hop's events are told outside the run's turn: a callback that steps does
    # not wait on the step that told it.
    run = _chain(plus_map, "step-from-callback").start(step=True)
    run.feed_many([1, 2])
    stepped: list[ls.Hop | None] = []

    def told(event: str, hop: ls.Hop) -> None:
        if event == "settled" and hop.index == 0:
            run.pause()  # nothing plays: returns at once
            stepped.append(run.step())

    run.on_hop(told)
    worker = threading.Thread(target=run.step, daemon=True)
    worker.start()
    wait_until(lambda: not worker.is_alive(), timeout=10, message="a step from a callback deadlocked")
    assert [h.index for h in stepped if h is not None] == [1]
    assert [h.index for h in run.hops] == [0, 1]
    run.end()
    run.play(interval=0)
    run.wait(timeout=10)
    assert run.output("results").values() == [4, 6]


def test_an_interrupt_stops_a_slow_transform_during_a_step(env):
    # The release runs the connection's transform unheld: Ctrl-C stops it.
    go_on = threading.Event()
    finished: list[int] = []

    def slow_transform(n: int) -> int:
        # Short waits: the signal is raised on the timer's thread, and the main thread
        # runs its handler between two of them.
        deadline = time.monotonic() + 5
        while not go_on.wait(0.01) and time.monotonic() < deadline:
            pass
        finished.append(n)
        return n

    flow = ls.Liveflow(
        "step-slow-transform",
        connections=[ls.conn(plus_map, double, transform=slow_transform)],
        exposures=[ls.expose(plus_map.input(), "n"), ls.expose(double.output(), "out")],
    )
    run = flow.start(step=True)
    run.feed(1)
    run.step()
    told: list[tuple[str, int]] = []
    run.on_hop(lambda event, hop: told.append((event, hop.index)))
    timer = threading.Timer(0.2, signal.raise_signal, (signal.SIGINT,))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        run.step(timeout=10)
    timer.join()
    assert finished == []  # stopped in the transform, not after it
    assert [h.index for h in run.hops] == [0, 1] and ("released", 1) in told
    go_on.set()
    run.cancel()
    run.wait(timeout=10)


def test_play_after_a_pause_that_gave_up_keeps_one_player(env):
    release.clear()
    run = slow.start(step=True)
    run.feed_many([1, 2])
    stepper = run._job._life.stepper
    run.play(interval=0)
    # The player released 1 and waits for the job, which holds on, to settle.
    wait_until(lambda: len(run.hops) == 1)
    player = stepper._player
    assert player is not None
    stepper.pause(timeout=0.05)  # gives up waiting: the player is still settling its hop
    assert player.is_alive() and not run.playing
    run.play(interval=0)  # a new speed: the same player goes on, no second one
    assert run.playing and stepper._player is player
    release.set()
    run.end()
    run.wait(timeout=10)
    assert run.output().values() == [1, 2]
    wait_until(lambda: not player.is_alive() and not run.playing and stepper._player is None)


def test_a_value_reaching_a_gate_after_the_run_ended_does_not_hold_its_end(env):
    # A node still emitting as the run ends: its value is dropped at the gate, and the
    # end of its stream is still passed on (the stream it feeds ends).
    from livestack_nb.step import Gate, Stepper
    from livestack_nb.stream import Chunk

    stepper = Stepper()
    ends: list[BaseException | None] = []
    gate = Gate(
        stepper,
        edge="a/default->b/default",
        source="a",
        source_tag="default",
        target="b",
        target_tag="default",
        scope="",
        target_job=lambda: None,
    )
    gate.finish = ends.append
    stepper.closed = True  # the run has ended
    gate.arrive(Chunk("a/out/default", 0, time.time(), [1, 2], None, None))
    assert stepper.waiting == []
    gate.ended(None)
    assert ends == [None]


def test_a_single_job_stepped_on_another_env_is_made_there_only():
    """``spec.start(env=b, step=True)`` inside ``with a:`` makes its one-node flow in b,
    not in a, and leaves the process's default env alone."""

    @ls.job_spec
    def dbl(x: int) -> int:
        return 2 * x

    a, b = ls.LiveEnv(), ls.LiveEnv()
    try:
        default = ls.current_env()
        with a:
            run = dbl.start(env=b, step=True)
            assert ls.current_env() is a
        assert ls.current_env() is default
        assert "dbl.step" in b.specs()
        assert "dbl.step" not in a.specs()
        run.input().feed(4)
        run.input().end()
        run.play(interval=0)
        assert run.result(timeout=10) == [8]
    finally:
        a.close()
        b.close()


def test_released_is_told_before_the_node_works_and_a_step_from_it_is_refused(env):
    # A graph shows the dot on its edge and the node at work while the node works:
    # "released" comes before the node's work, "settled" after it.
    seen: list[str] = []
    working = threading.Event()

    @ls.job_spec
    def slow(x: int) -> int:
        seen.append(f"work {x}")
        working.set()
        return x

    run = slow.start(step=True)
    errors: list[BaseException] = []

    def told(event: str, hop: ls.Hop) -> None:
        if event == "released" and hop.target == "slow":
            seen.append(f"released {hop.value}")
            try:
                run.step()
            except ls.LivestackError as e:
                errors.append(e)
        elif event == "settled" and hop.target == "slow":
            seen.append(f"settled {hop.value}")

    run.on_hop(told)
    run.input().feed(7)
    run.step()
    assert seen == ["released 7", "work 7", "settled 7"]
    assert len(errors) == 1 and "on_hop callback" in str(errors[0])
    run.input().end()
    run.play(interval=0)
    assert run.result(timeout=10) == [7]
