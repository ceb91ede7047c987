"""Flows with cycles end: once their outside inputs have ended and nothing is in
flight anywhere, the inputs only a cycle feeds are ended, one at a time.

Ported from Livestack's ``tests/src/liveflow.ruckus.test.ts`` (two loops sharing
a node), plus single loops of every spec form, nested flows holding loops, a loop
that goes quiet and speaks again, and races between the two.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from pydantic import BaseModel
from redis_support import redis_server, redis_url  # noqa: F401

import livestack_nb as ls
from livestack_nb.testing import wait_until

TERMINAL = {ls.JobStatus.COMPLETED, ls.JobStatus.FAILED, ls.JobStatus.CANCELLED}


# -- Livestack's ruckus conversation: a player and an NPC, each feeding a summary ----


class Talk(BaseModel):
    summary: str
    recent: list[str]


def _conversation(player: ls.JobSpec, npc: ls.JobSpec, summary: ls.JobSpec, name: str) -> ls.Liveflow:
    return ls.Liveflow(
        name,
        connections=[
            ls.conn(player, summary.input("player")),
            ls.conn(npc, summary.input("npc")),
            ls.conn(summary, player),
            ls.conn(summary, npc),
        ],
        exposures=[
            ls.expose(player.input(), "player-input"),
            ls.expose(player.output(), "player-talk"),
            ls.expose(npc.input(), "npc-input"),
            ls.expose(npc.output(), "npc-talk"),
        ],
    )


@ls.job_spec(name="ruckus-player", input=Talk, output=str)
def player(job: ls.LiveJob):
    said = 0
    for talk in job.input:
        if talk.recent[-1].startswith("Player"):
            continue  # the player just spoke: wait for the NPC
        if said < 3:  # the player stops after three lines
            said += 1
            job.output.emit(f"player line {said}")


@ls.job_spec(name="ruckus-npc", input=Talk, output=str)
def npc(job: ls.LiveJob):
    said = 0
    for talk in job.input:
        if talk.recent[-1].startswith("NPC"):
            continue
        said += 1
        job.output.emit(f"npc line {said}")


@ls.job_spec(name="ruckus-summary", inputs={"npc": str, "player": str}, outputs={"default": Talk})
def summary(job: ls.LiveJob):
    recent: list[str] = []
    for tag, line in job.input.merge("npc", "player"):
        recent.append(f"{'NPC' if tag == 'npc' else 'Player'}: {line}")
        job.output.emit(Talk(summary=f"{len(recent)} lines so far", recent=recent[-10:]))


@ls.job_spec(name="ruckus-player-async", input=Talk, output=str)
async def player_async(job: ls.LiveJob):
    said = 0
    async for talk in job.input:
        if talk.recent[-1].startswith("Player"):
            continue
        if said < 3:
            said += 1
            await asyncio.sleep(0.001)  # thinking, as an LLM call would
            await job.output.emit(f"player line {said}")


@ls.job_spec(name="ruckus-npc-async", input=Talk, output=str)
async def npc_async(job: ls.LiveJob):
    said = 0
    async for talk in job.input:
        if talk.recent[-1].startswith("NPC"):
            continue
        said += 1
        await asyncio.sleep(0.001)
        await job.output.emit(f"npc line {said}")


OPENING = Talk(summary="This is the ancient dark times.", recent=["NPC: yello."])


def _assert_conversation_ended(env: ls.LiveEnv, run: ls.JobHandle) -> None:
    run.wait(timeout=10)
    assert run.status is ls.JobStatus.COMPLETED
    assert run.output("player-talk").values() == ["player line 1", "player line 2", "player line 3"]
    assert run.output("npc-talk").values() == ["npc line 1", "npc line 2", "npc line 3"]
    assert {info.status for info in env.jobs()} == {ls.JobStatus.COMPLETED}


def test_the_ruckus_conversation_ends_once_the_player_stops(env):
    run = _conversation(player, npc, summary, "conversation").start()
    run.input("player-input").feed(OPENING)
    run.input("player-input").end()
    run.input("npc-input").end()
    _assert_conversation_ended(env, run)


def test_the_ruckus_conversation_of_async_processors_ends(env):
    run = _conversation(player_async, npc_async, summary, "conversation-async").start()
    run.input("player-input").feed(OPENING)
    run.end()
    _assert_conversation_ended(env, run)


def test_the_conversation_goes_on_while_an_outside_input_is_open(env):
    run = _conversation(player, npc, summary, "conversation-open").start()
    run.input("player-input").feed(OPENING)
    run.input("player-input").end()
    wait_until(lambda: len(run.output("npc-talk").values()) == 3, timeout=10)
    # Quiet now, but the NPC's input is still open: the run must not end.
    with pytest.raises(ls.WaitTimeout):
        run.wait(timeout=0.3)
    assert run.status is ls.JobStatus.RUNNING
    run.input("npc-input").feed(Talk(summary="", recent=["Player: still there?"]))
    wait_until(lambda: len(run.output("npc-talk").values()) == 4, timeout=10)
    run.input("npc-input").end()
    run.wait(timeout=10)
    assert run.status is ls.JobStatus.COMPLETED
    assert run.output("npc-talk").values()[-1] == "npc line 4"


def test_many_conversations_at_once_all_end_whole(env):
    """Races: runs whose inputs end while their loops are busy, side by side."""
    flow = _conversation(player, npc, summary, "conversations")
    runs = [flow.start() for _ in range(12)]
    for run in runs:
        run.input("player-input").feed(OPENING)
        run.end()
    for run in runs:
        run.wait(timeout=20)
        assert run.status is ls.JobStatus.COMPLETED
        assert len(run.output("player-talk").values()) == 3
        assert len(run.output("npc-talk").values()) == 3


# -- single loops, every spec form ------------------------------------------------------


@ls.job_spec(name="loop-map")
def down_map(n: int) -> int | None:
    return n - 1 if n > 0 else None


@ls.job_spec(name="loop-flatmap")
def down_flat(n: int):
    if n > 0:
        yield n - 1


@ls.job_spec(name="loop-async-map")
async def down_async_map(n: int) -> int | None:
    await asyncio.sleep(0)
    return n - 1 if n > 0 else None


@ls.job_spec(name="loop-async-flatmap")
async def down_async_flat(n: int):
    await asyncio.sleep(0)
    if n > 0:
        yield n - 1


@ls.job_spec(name="loop-processor", input=int, output=int)
def down_processor(job: ls.LiveJob):
    for n in job.input:
        if n > 0:
            job.output.emit(n - 1)


@ls.job_spec(name="loop-async-processor", input=int, output=int)
async def down_async_processor(job: ls.LiveJob):
    async for n in job.input:
        if n > 0:
            await job.output.emit(n - 1)


FORMS = [down_map, down_flat, down_async_map, down_async_flat, down_processor, down_async_processor]


@pytest.mark.parametrize("step", FORMS, ids=lambda s: s.name)
def test_a_spec_feeding_itself_ends(env, step):
    flow = ls.Liveflow(f"self-{step.name}")
    flow.connect(step, step)
    flow.expose(step.input(), "start")
    flow.expose(step.output(), "steps")
    run = flow.start()
    run.input("start").feed_many([3, 5])
    run.end()
    run.wait(timeout=10)
    assert run.status is ls.JobStatus.COMPLETED
    assert sorted(run.output("steps").values()) == sorted([2, 1, 0, 4, 3, 2, 1, 0])


@pytest.mark.parametrize("first", FORMS, ids=lambda s: s.name)
@pytest.mark.parametrize("second", [down_map, down_async_processor], ids=lambda s: s.name)
def test_a_two_spec_loop_of_every_form_ends(env, first, second):
    back = second.labeled("back")
    flow = ls.Liveflow(f"loop-{first.name}-{second.name}")
    flow.connect(first, back)
    flow.connect(back, first)
    flow.expose(first.input(), "start")
    flow.expose(first.output(), "odd")
    run = flow.start()
    run.input("start").feed(9)
    run.end()
    run.wait(timeout=10)
    assert run.status is ls.JobStatus.COMPLETED
    assert run.output("odd").values() == [8, 6, 4, 2, 0]
    assert {info.status for info in env.jobs()} == {ls.JobStatus.COMPLETED}


def test_a_loop_quiet_for_a_while_speaks_again_while_its_input_is_open(env):
    flow = ls.Liveflow("quiet-then-again")
    flow.connect(down_processor, down_map)
    flow.connect(down_map, down_processor)
    flow.expose(down_processor.input(), "start")
    flow.expose(down_processor.output(), "steps")
    run = flow.start()
    run.input("start").feed(4)
    wait_until(lambda: run.output("steps").values() == [3, 1], timeout=10)
    with pytest.raises(ls.WaitTimeout):  # quiet, and its input open: it must not end
        run.wait(timeout=0.3)
    assert run.status is ls.JobStatus.RUNNING
    run.input("start").feed(6)  # the loop speaks again
    wait_until(lambda: run.output("steps").values() == [3, 1, 5, 3, 1], timeout=10)
    run.end()
    run.wait(timeout=10)
    assert run.status is ls.JobStatus.COMPLETED


def test_a_slow_step_holding_a_value_after_the_input_ended_is_not_quiet(env):
    """A value inside a processor is in flight: ending the input must not cut the loop."""
    release = threading.Event()

    @ls.job_spec(name="slow-cook", input=int, output=int)
    def slow(job: ls.LiveJob):
        for n in job.input:
            if n == 2:
                release.wait(10)  # holds the value while the rest of the flow is idle
            if n > 0:
                job.output.emit(n - 1)

    flow = ls.Liveflow("slow-loop")
    flow.connect(slow, down_map.labeled("pass"), transform=lambda n: n + 1)
    flow.connect(down_map.labeled("pass"), slow)
    flow.expose(slow.input(), "start")
    flow.expose(slow.output(), "steps")
    run = flow.start()
    run.input("start").feed(4)
    run.end()
    wait_until(lambda: run.output("steps").values() == [3, 2], timeout=10)
    with pytest.raises(ls.WaitTimeout):
        run.wait(timeout=0.3)
    release.set()
    run.wait(timeout=10)
    assert run.output("steps").values() == [3, 2, 1, 0]
    assert run.status is ls.JobStatus.COMPLETED


def test_a_job_speaking_before_it_reads_is_waited_for(env):
    """A loop with no outside input: the server serves first, then they rally."""

    @ls.job_spec(name="server", input=int, output=int)
    def server(job: ls.LiveJob):
        time.sleep(0.05)  # slow to serve: the loop is idle meanwhile, not ended
        job.output.emit(0)
        for n in job.input:
            if n < 6:
                job.output.emit(n + 1)

    @ls.job_spec(name="returner")
    def returner(n: int) -> int:
        return n + 1

    flow = ls.Liveflow("rally")
    flow.connect(server, returner)
    flow.connect(returner, server)
    flow.expose(server.output(), "shots")
    run = flow.start()
    run.wait(timeout=10)
    assert run.output("shots").values() == [0, 2, 4, 6]
    assert run.status is ls.JobStatus.COMPLETED


def test_last_words_at_the_end_of_input_reach_the_next_job(env):
    """Loop-fed inputs end upstream first, so what a job emits on its way out is read."""

    @ls.job_spec(name="tally", input=int, output=int)
    def tally(job: ls.LiveJob):
        seen = 0
        for n in job.input:
            seen += 1
            if n > 0:
                job.output.emit(n - 1)
        job.output.emit(-seen)  # last words: read by the next job, whose input is still open

    @ls.job_spec(name="relay")
    def relay(n: int) -> int | None:
        return n if n >= 0 else None

    @ls.job_spec(name="ledger", input=int, output=str)
    def ledger(job: ls.LiveJob):
        for n in job.input:
            if n < 0:
                job.output.emit(f"tally saw {-n}")

    flow = ls.Liveflow("last-words")
    flow.connect(tally, relay)
    flow.connect(relay, tally)
    flow.connect(tally, ledger)
    flow.expose(tally.input(), "start")
    flow.expose(ledger.output(), "notes")
    run = flow.start()
    run.input("start").feed(3)
    run.end()
    run.wait(timeout=10)
    assert run.output("notes").values() == ["tally saw 4"]


# -- nested flows holding loops -------------------------------------------------------------


def _countdown_flow(name: str) -> ls.Liveflow:
    inner = ls.Liveflow(name)
    inner.connect(down_processor, down_map)
    inner.connect(down_map, down_processor)
    inner.expose(down_processor.input(), "in")
    inner.expose(down_processor.output(), "out")
    return inner


@ls.job_spec(name="loop-double")
def double(n: int) -> int:
    return 2 * n


def test_a_nested_flow_holding_a_loop_ends_inside_a_plain_flow(env):
    outer = ls.Liveflow("outer-plain")
    inner = _countdown_flow("inner-loop")
    outer.connect(double, inner.input("in"))
    run = outer.start()
    run.feed_many([2, 3])
    run.end()
    run.wait(timeout=10)
    assert sorted(run.output().values()) == sorted(_countdown(4) + _countdown(6))
    assert {info.status for info in env.jobs()} == {ls.JobStatus.COMPLETED}


def _countdown(n: int) -> list[int]:
    """What the inner loop puts out for ``n``, in plain Python."""
    out = []
    while n > 0:
        out.append(n - 1)
        n -= 2
    return out


def test_a_nested_flow_holding_a_loop_inside_a_loop_ends(env):
    """The outer loop sees the inner loop's work: neither ends the other early."""
    inner = _countdown_flow("inner-of-loop")

    @ls.job_spec(name="again")
    def again(n: int) -> int | None:
        return n - 10 if n >= 10 else None  # big outputs of the inner loop go round once more

    outer = ls.Liveflow("outer-loop")
    outer.connect(inner.output("out"), again)
    outer.connect(again, inner.input("in"))
    outer.expose(inner.input("in"), "start")
    outer.expose(inner.output("out"), "all")
    run = outer.start()
    run.input("start").feed(25)
    run.end()
    run.wait(timeout=10)
    assert run.status is ls.JobStatus.COMPLETED
    expected, todo = [], [25]
    while todo:
        out = _countdown(todo.pop())
        expected += out
        todo += [n - 10 for n in out if n >= 10]
    assert sorted(run.output("all").values()) == sorted(expected)
    assert {info.status for info in env.jobs()} == {ls.JobStatus.COMPLETED}


def test_a_flow_without_a_cycle_counts_nothing(env):
    flow = ls.Liveflow("acyclic")
    flow.connect(down_map, double)
    run = flow.start()
    job = run._job
    assert all(s._activity is None for s in [*job._inputs.values(), *job._outputs.values()])
    run.feed(3)
    run.end()
    assert run.result(timeout=10) == [4]


# -- races: values in flight on every kind of thread when the outside input ends -------------


@ls.job_spec(name="split-piece")
def split_piece(n: int):
    if n >= 2:
        yield n // 2
        yield n - n // 2


@ls.job_spec(name="cool-piece")
async def cool_piece(n: int) -> int:
    await asyncio.sleep(0)
    return n


@ls.job_spec(name="relay-piece", input=int, output=int)
def relay_piece(job: ls.LiveJob):
    for i, n in enumerate(job.input):
        if i % 7 == 0:
            time.sleep(0.001)  # now and then a value sits inside the processor
        job.output.emit(n)


def _pieces(n: int) -> list[int]:
    out, todo = [], [n]
    while todo:
        m = todo.pop()
        if m >= 2:
            out += [m // 2, m - m // 2]
            todo += [m // 2, m - m // 2]
    return out


def test_runs_ended_while_their_loops_branch_on_three_kinds_of_thread_lose_nothing(env):
    flow = ls.Liveflow("pieces")
    flow.connect(split_piece, cool_piece)
    flow.connect(cool_piece, relay_piece)
    flow.connect(relay_piece, split_piece)
    flow.expose(split_piece.input(), "dough")
    flow.expose(split_piece.output(), "pieces")
    sizes = [37, 64, 100, 129, 200, 3, 1, 250]
    runs = [flow.start() for _ in sizes]
    for run, n in zip(runs, sizes, strict=True):
        run.input("dough").feed(n)
        run.end()  # at once: the loop is busy on a worker thread, the event loop or inline
    for run, n in zip(runs, sizes, strict=True):
        run.wait(timeout=30)
        assert run.status is ls.JobStatus.COMPLETED
        assert sorted(run.output("pieces").values()) == sorted(_pieces(n))


def test_a_loop_that_never_goes_quiet_runs_until_cancelled(env):
    @ls.job_spec(name="forever")
    def forever(n: int) -> int:
        return n + 1

    flow = ls.Liveflow("merry-go-round")
    flow.connect(forever, forever.labeled("round"))
    flow.connect(forever.labeled("round"), forever)
    flow.expose(forever.input(), "push")
    flow.expose(forever.output(), "laps")
    run = flow.start()
    run.input("push").feed(0)
    run.end()
    wait_until(lambda: len(run.output("laps")) > 100, timeout=10)
    assert run.status is ls.JobStatus.RUNNING  # values always in flight: not quiet, not ended
    run.cancel()
    wait_until(lambda: all(info.status in TERMINAL for info in env.jobs()), timeout=10)
    assert run.status is ls.JobStatus.CANCELLED


def test_a_loop_downstream_of_a_plain_chain_ends(env):
    flow = ls.Liveflow("chain-then-loop")
    flow.connect(double, down_processor)
    flow.connect(down_processor, down_map)
    flow.connect(down_map, down_processor)
    flow.expose(double.input(), "in")
    flow.expose(down_processor.output(), "out")
    run = flow.start()
    run.input("in").feed_many([2, 3])
    run.end()
    run.wait(timeout=10)
    assert sorted(run.output("out").values()) == sorted(_countdown(4) + _countdown(6))


@ls.job_spec(name="desk", inputs={"a": int, "b": str}, outputs={"to_m": int, "to_d": str, "log": str})
def desk(job: ls.LiveJob):
    for n in job.input("a"):  # first the countdown, to its end...
        job.output("to_m").emit(n)
    job.output("to_d").emit("a ended")  # ...then words into the other loop, still open...
    for line in job.input("b"):  # ...whose answer is read here
        job.output("log").emit(line)


@ls.job_spec(name="echo-desk")
def echo_desk(line: str) -> str:
    return f"heard: {line}"


@pytest.mark.parametrize("step", FORMS, ids=lambda s: s.name)
def test_loop_fed_inputs_end_one_at_a_time_each_after_the_last_ones_effects(env, step):
    """Ending a loop-fed input is work in flight until the job it ends has acted on it
    (a map's drain, a processor reading its end): only then is the next one ended."""
    flow = ls.Liveflow(f"desk-{step.name}")
    flow.connect(step, desk.input("a"))
    flow.connect(desk.output("to_m"), step)
    flow.connect(desk.output("to_d"), echo_desk)
    flow.connect(echo_desk, desk.input("b"))
    flow.expose(step.input(), "start")
    flow.expose(desk.output("log"), "log")
    run = flow.start()
    run.input("start").feed(3)
    run.end()
    run.wait(timeout=10)
    assert run.output("log").values() == ["heard: a ended"]
    assert not [r for info in env.jobs() for r in env.job(info.job_id).logs if "after it ended" in r.message]


@pytest.mark.parametrize("vault", ["sqlite", "redis"])
def test_the_conversation_ends_on_a_durable_vault_and_reads_back_whole(make_env, tmp_path, request, vault):
    if vault == "sqlite":
        url = f"sqlite:///{tmp_path / 'kitchen.db'}"
    else:
        url = request.getfixturevalue("redis_url")  # a redis-server of this session
    env = make_env(vault=url)
    run = _conversation(player, npc, summary, "conversation-durable").start(env=env)
    run.input("player-input").feed(OPENING)
    run.end()
    _assert_conversation_ended(env, run)
    env.flush()
    again = make_env(vault=url)
    assert again.job(run.job_id).output("npc-talk").values() == ["npc line 1", "npc line 2", "npc line 3"]


@ls.job_spec(name="two-readers", inputs={"num": int, "flag": bool}, outputs={"default": int})
async def two_readers(job: ls.LiveJob):
    """Livestack's liveflow.dummy processor: one task follows a flag, the main loop the numbers."""
    louder = False

    async def follow_flag() -> None:
        nonlocal louder
        async for flag in job.input("flag"):
            louder = flag

    flag = asyncio.create_task(follow_flag())
    async for n in job.input("num"):
        await asyncio.sleep(0.02)  # holds its value while the flag task reads the flag's end
        await job.output.emit(n)
    await flag


def test_a_processor_reading_in_two_tasks_keeps_its_value_counted_in_a_loop(env):
    flow = ls.Liveflow("dummy-loop")
    flow.connect(two_readers, down_map)
    flow.connect(down_map, two_readers.input("num"))
    flow.expose(two_readers.input("num"), "num")
    flow.expose(two_readers.input("flag"), "flag")
    flow.expose(two_readers.output(), "out")
    run = flow.start()
    run.input("flag").feed(True)
    run.input("num").feed(3)
    run.input("num").end()
    wait_until(lambda: len(run.output("out")) == 1, timeout=5)  # 3 is out, 2 is being held
    run.input("flag").end()  # the flag task reads this end while the main loop holds 2
    run.wait(timeout=10)
    assert run.output("out").values() == [3, 2, 1, 0]


@ls.job_spec(name="is-even")
def is_even(n: int) -> bool:
    return n % 2 == 0


def test_a_processor_reading_in_two_tasks_fed_by_two_loops_ends_whole(env):
    """The flag task reads values of its own loop while the main loop holds a value:
    each task's value stays counted until that task reads again."""
    flow = ls.Liveflow("dummy-two-loops")
    flow.connect(two_readers, down_map)
    flow.connect(down_map, two_readers.input("num"))
    flow.connect(two_readers, is_even)
    flow.connect(is_even, two_readers.input("flag"))
    flow.expose(two_readers.input("num"), "num")
    flow.expose(two_readers.output(), "out")
    run = flow.start()
    run.input("num").feed(5)
    run.end()
    run.wait(timeout=10)
    assert run.output("out").values() == [5, 4, 3, 2, 1, 0]
