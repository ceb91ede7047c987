"""Parallel attempts (Livestack's ParallelAttemptLiveflow): several specs race on
each value, the first acceptable result wins and the others are cancelled."""

from __future__ import annotations

import asyncio
import threading

import pytest
import reactivex
from pydantic import BaseModel
from reactivex import operators as ops

import livestack_nb as ls
from livestack_nb.testing import collect, wait_until


class Order(BaseModel):
    pizza: str


class Pizza(BaseModel):
    pizza: str
    oven: str
    burnt: bool = False


# Ovens held until the test lets them bake: who wins is decided by the test, not by timing.
gates: dict[str, threading.Event] = {}


def _gate(name: str) -> threading.Event:
    return gates.setdefault(name, threading.Event())


@pytest.fixture(autouse=True)
def _fresh_gates(env):  # after the env: its threads are let go before it closes
    gates.clear()
    yield
    for g in gates.values():
        g.set()  # nothing stays held after a test


@ls.job_spec(name="wood-oven")
def wood(order: Order) -> Pizza:
    _gate("wood").wait(10)
    return Pizza(pizza=order.pizza, oven="wood")


@ls.job_spec(name="gas-oven")
async def gas(order: Order) -> Pizza:
    while not _gate("gas").is_set():
        await asyncio.sleep(0.005)
    return Pizza(pizza=order.pizza, oven="gas", burnt=order.pizza == "calzone")


@ls.job_spec(name="electric-oven", input=Order, output=Pizza)
def electric(job: ls.LiveJob):
    for order in job.input:
        _gate("electric").wait(10)
        job.output.emit(Pizza(pizza=order.pizza, oven="electric"))


@ls.job_spec(name="brick-oven")
def brick(order: Order):
    _gate("brick").wait(10)
    yield Pizza(pizza=order.pizza, oven="brick", burnt=True)  # a flat-map: burns the first
    yield Pizza(pizza=order.pizza, oven="brick")


def _children(env: ls.LiveEnv, run: ls.JobHandle) -> dict[str, ls.JobStatus]:
    return {info.spec: info.status for info in env.jobs() if info.parent_id == run.job_id}


def test_three_ovens_race_and_the_first_pizza_wins_the_others_are_cancelled(env):
    race = ls.ParallelAttempts("three-ovens", [wood, gas, electric])
    run = race.start()
    run.feed({"pizza": "margherita"})
    wait_until(lambda: len(_children(env, run)) == 3, timeout=5)
    _gate("gas").set()
    wait_until(lambda: len(run.output().values()) == 1, timeout=5)
    assert run.output().values() == [Pizza(pizza="margherita", oven="gas")]
    wait_until(
        lambda: _children(env, run)
        == {"gas-oven": ls.JobStatus.COMPLETED, "wood-oven": ls.JobStatus.CANCELLED,
            "electric-oven": ls.JobStatus.CANCELLED},
        timeout=5,
    )  # fmt: skip
    assert any("attempt gas-oven won; cancelled" in r.message for r in run.logs)
    run.end()
    run.wait(timeout=5)
    assert run.status is ls.JobStatus.COMPLETED


def test_a_result_that_is_not_acceptable_does_not_win(env):
    race = ls.ParallelAttempts(
        "no-burnt-pizza", [gas, ls.attempt(brick), electric], accept=lambda pizza: not pizza.burnt
    )
    _gate("gas").set()
    _gate("brick").set()
    # gas burns calzones; brick burns its first, then bakes a good one: brick wins.
    out = race.run([{"pizza": "calzone"}, {"pizza": "marinara"}], timeout=10)
    assert (out[0].pizza, out[0].oven, out[0].burnt) == ("calzone", "brick", False)
    assert out[1].pizza == "marinara" and not out[1].burnt


def test_a_fallback_starts_only_when_the_first_are_slow(env):
    race = ls.ParallelAttempts("fallback", [gas, ls.attempt(wood, after=0.5)])
    _gate("gas").set()
    assert [p.oven for p in race.run([{"pizza": "a"}], timeout=10)] == ["gas"]
    assert [info.spec for info in env.jobs() if info.parent_id] == ["gas-oven"]  # wood never lit
    gates.clear()
    _gate("wood").set()
    run = race.start()
    run.feed({"pizza": "b"})
    run.end()
    run.wait(timeout=10)  # gas stays held: wood starts 0.5 s in, and wins
    assert [p.oven for p in run.output().values()] == ["wood"]
    # The winner is left to end on its own (its input has ended): it may finish just after.
    wait_until(
        lambda: (
            _children(env, run) == {"gas-oven": ls.JobStatus.CANCELLED, "wood-oven": ls.JobStatus.COMPLETED}
        ),
        timeout=5,
    )


def test_when_no_attempt_makes_it_the_race_fails_naming_each_fate(env):
    @ls.job_spec(name="cold-oven")
    def cold(order: Order) -> Pizza:
        raise RuntimeError("the oven is cold")

    race = ls.ParallelAttempts(
        "all-fail",
        [cold, ls.attempt(wood, timeout=0.1), ls.attempt(gas, label="gas-again")],
        accept=lambda pizza: not pizza.burnt,
    )
    _gate("gas").set()
    run = race.start()
    run.feed({"pizza": "calzone"})  # gas burns it; wood is held past its timeout
    with pytest.raises(ls.JobFailed) as info:
        run.wait(timeout=10)
    cause = info.value.__cause__
    assert isinstance(cause, ls.LivestackError)
    text = str(cause)
    assert "race 'all-fail': no attempt gave an acceptable result" in text
    assert "cold-oven: failed (RuntimeError: the oven is cold)" in text
    assert "wood-oven: timed out after 0.1 s" in text
    assert "gas-again: ended with no acceptable result" in text


def test_with_on_error_skip_a_lost_race_is_skipped_and_the_next_value_races(env):
    race = ls.ParallelAttempts("skip-lost", [gas], accept=lambda p: not p.burnt, on_error="skip")
    _gate("gas").set()
    out = race.run([{"pizza": "calzone"}, {"pizza": "funghi"}], timeout=10)
    assert [p.pizza for p in out] == ["funghi"]


def test_transforms_and_options_per_attempt(env):
    class Heat(BaseModel):
        degrees: int = 250

    @ls.job_spec(name="thermo-oven")
    def thermo(name: str, options: Heat) -> str:
        return f"{name} at {options.degrees}"

    race = ls.ParallelAttempts(
        "transformed",
        [ls.attempt(thermo, options={"degrees": 400}, transform_input=lambda o: o.pizza,
                    transform_output=lambda s: Pizza(pizza=s, oven="thermo"))],
        input=Order,
        output=Pizza,
    )  # fmt: skip
    assert race.run([{"pizza": "diavola"}], timeout=10) == [Pizza(pizza="diavola at 400", oven="thermo")]


def test_a_race_is_a_spec_in_a_flow_and_an_operator(env):
    _gate("wood").set()

    @ls.job_spec(name="take-order")
    def take(name: str) -> Order:
        return Order(pizza=name)

    @ls.job_spec(name="serve")
    def serve(pizza: Pizza) -> str:
        return f"{pizza.pizza} from the {pizza.oven} oven"

    race = ls.ParallelAttempts("in-a-flow", [gas, wood])
    flow = ls.Liveflow("pizzeria-race")
    flow.connect(take, race)
    flow.connect(race, serve)
    assert flow.run(["margherita", "funghi"], timeout=10) == [
        "margherita from the wood oven",
        "funghi from the wood oven",
    ]
    orders = reactivex.from_iterable([Order(pizza="a"), Order(pizza="b")])
    assert collect(orders.pipe(race.op(), ops.map(lambda p: p.oven)), timeout=10) == ["wood", "wood"]


def test_a_race_shows_its_attempts_in_its_graph(env, comms):
    import livestack_nb.widgets as lw

    race = ls.ParallelAttempts("graph-race", [wood, gas, electric])
    run = race.start()
    assert [n.id for n in run.graph.nodes] == ["race", "wood-oven", "gas-oven", "electric-oven", "winner"]
    graph = lw.FlowGraph(run)
    run.feed({"pizza": "quattro"})
    _gate("electric").set()
    run.end()
    run.wait(timeout=10)

    def settled():
        st = graph.state()
        done = [st["nodes"].get(n, {}).get("status") for n in ("electric-oven", "race")]
        return st if done == ["completed", "completed"] else None

    state = wait_until(settled, timeout=5)
    nodes = {nid: st["status"] for nid, st in state["nodes"].items()}
    assert nodes == {
        "race": "completed",
        "winner": "completed",
        "electric-oven": "completed",
        "wood-oven": "cancelled",
        "gas-oven": "cancelled",
    }
    edges = {eid: e["count"] for eid, e in state["edges"].items() if "port" not in eid}
    assert edges == {  # what the latest value's attempts were fed, and made
        "race/default->electric-oven/default": 1,
        "race/default->wood-oven/default": 1,
        "race/default->gas-oven/default": 1,
        "electric-oven/default->winner/default": 1,
        "wood-oven/default->winner/default": 0,
        "gas-oven/default->winner/default": 0,
    }
    assert "electric-oven" in graph.snapshot_html()
    jobs = run.node_jobs  # which job runs each node: the race's, and each attempt's latest
    assert jobs["race"] == jobs["winner"] == run.job_id
    assert env.job(jobs["electric-oven"]).status is ls.JobStatus.COMPLETED


def test_a_race_is_checked_when_it_is_written():
    with pytest.raises(ls.WiringError, match=r"attempt 'thin' \(spec 'thin'\): str values do not fit"):

        @ls.job_spec(name="thin")
        def thin(order: Order) -> str:
            return order.pizza

        ls.ParallelAttempts("misfit", [wood, thin])
    with pytest.raises(ls.WiringError, match=r"two attempts are labelled 'wood-oven'"):
        ls.ParallelAttempts("twice", [wood, wood])
    with pytest.raises(ls.WiringError, match=r"needs at least one attempt"):
        ls.ParallelAttempts("none", [])
    with pytest.raises(ls.LivestackError, match=r"timeout= must be seconds > 0"):
        ls.attempt(wood, timeout=0)
    with pytest.raises(ls.LivestackError, match=r"after= must be seconds >= 0"):
        ls.attempt(wood, after=-1)
    with pytest.raises(ls.LivestackError, match=r"expected a JobSpec"):
        ls.attempt("wood")  # type: ignore[arg-type]
    with pytest.raises(ls.DataValidationError, match=r"'hot'"):

        class Heat(BaseModel):
            degrees: int

        @ls.job_spec(name="hot")
        def hot(order: Order, options: Heat) -> Pizza:
            return Pizza(pizza=order.pizza, oven="hot")

        ls.ParallelAttempts("bad-options", [ls.attempt(hot, label="wood-oven", options={"degrees": "x"})])


def test_a_race_on_a_sqlite_vault_records_its_attempts_for_a_new_env(make_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'ovens.db'}"
    env = make_env(vault=url)
    _gate("electric").set()
    race = ls.ParallelAttempts("durable-race", [wood, electric])
    run = race.start(env=env)
    run.feed_many([{"pizza": "a"}, {"pizza": "b"}])
    run.end()
    run.wait(timeout=10)
    _gate("wood").set()  # the cancelled wood ovens' threads return before this env closes
    env.flush()
    later = make_env(vault=url)
    children = sorted((info.spec, info.status) for info in later.jobs() if info.parent_id == run.job_id)
    assert children == [("electric-oven", "completed")] * 2 + [("wood-oven", "cancelled")] * 2
    assert [p.oven for p in later.job(run.job_id).output().values()] == [
        "electric",
        "electric",
    ]  # typed: the race is known by name


def test_a_race_itself_shows_as_its_graph_then_follows_its_latest_run(env, comms):
    import livestack_nb.widgets as lw
    from livestack_nb.widgets._display import widget_for

    race = ls.ParallelAttempts("shown-race", [wood, electric])
    graph = widget_for(race)
    assert isinstance(graph, lw.FlowGraph)
    assert [n["id"] for n in graph.shape["nodes"]] == ["race", "wood-oven", "electric-oven", "winner"]
    assert graph.state()["status"] == "not started"
    _gate("wood").set()
    run = race.start()
    run.feed({"pizza": "x"})
    run.end()
    run.wait(timeout=10)

    def followed():
        graph._settle()
        return graph.state()["nodes"].get("wood-oven", {}).get("status") == "completed"

    wait_until(followed, timeout=5)
    assert graph.state()["status"] == "completed"


def test_with_dead_letters_a_lost_race_goes_to_the_errors_stream_and_the_next_value_races(env):
    race = ls.ParallelAttempts("dead-lost", [gas], accept=lambda p: not p.burnt, on_error="dead_letter")
    _gate("gas").set()
    run = race.start()
    run.feed_many([{"pizza": "calzone"}, {"pizza": "funghi"}])
    run.end()
    run.wait(timeout=10)
    assert [p.pizza for p in run.output().values()] == ["funghi"]
    (letter,) = run.errors.values()
    assert letter.value == Order(pizza="calzone")
    assert "no attempt gave an acceptable result" in str(letter.error)


def test_a_derived_race_is_the_same_race_under_another_name(env):
    race = ls.ParallelAttempts("first-race", [gas, wood], accept=lambda p: not p.burnt)
    again = race.derive("second-race")
    assert isinstance(again, ls.ParallelAttempts) and again.attempts == race.attempts
    _gate("wood").set()
    assert [p.oven for p in again.run([{"pizza": "calzone"}], timeout=10)] == ["wood"]  # gas burns it
    assert [n.id for n in again.graph().nodes] == ["race", "gas-oven", "wood-oven", "winner"]
    with pytest.raises(ls.LivestackError, match=r"a race has none of its own"):
        race.derive("third-race", options={"spice": 1})
    with pytest.raises(ls.LivestackError, match=r"needs a new, non-empty name"):
        race.derive("first-race")
