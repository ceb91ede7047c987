"""Liveflow: wiring specs, exposing ports, declarative form, nesting, operators, cycles, failure."""

from __future__ import annotations

import pytest
import reactivex
from pizzeria import Order, bake, box, knead, pizzeria_flow, taste
from reactivex import operators as ops

import livestack_nb as ls
from livestack_nb.testing import collect, wait_until


@ls.job_spec
def inc(n: int) -> int:
    return n + 1


@ls.job_spec
def dbl(n: int) -> int:
    return n * 2


@ls.job_spec(inputs={"left": int, "right": int}, outputs={"sum": int, "diff": int})
def pairs(job: ls.LiveJob):
    left: list[int] = []
    right: list[int] = []
    for tag, value in job.input.merge("left", "right"):
        (left if tag == "left" else right).append(value)
        while left and right:
            a, b = left.pop(0), right.pop(0)
            job.output("sum").emit(a + b)
            job.output("diff").emit(a - b)


def test_the_pizzeria(env):
    flow = pizzeria_flow()
    assert isinstance(flow, ls.JobSpec)
    run = flow.start()
    run.input("orders").feed(Order(pizza="margherita"))
    run.output("boxes")
    run.input("orders").feed({"pizza": "marinara", "size": 16})
    run.end()
    run.wait(timeout=10)
    assert run.output("boxes").values() == ["box(12IN MARGHERITA, SPICE 0)", "box(16IN MARINARA, SPICE 0)"]
    assert run.status is ls.JobStatus.COMPLETED


def test_a_flow_is_a_spec_whose_tags_are_its_exposures():
    flow = pizzeria_flow()
    assert flow.name == "pizzeria"
    assert flow.inputs == {"orders": Order}
    assert flow.outputs == {"boxes": str}


def test_the_declarative_form_builds_the_same_flow(env):
    flow = ls.Liveflow(
        "pizzeria",
        connections=[
            ls.conn(knead, bake),
            ls.conn(bake.output(), box, transform=lambda s: s.upper()),
            ls.conn(bake, taste.labeled("second-taster")),
        ],
        exposures=[ls.expose(knead.input(), "orders"), ls.expose(box.output(), "boxes")],
    )
    run = flow.start()
    run.input("orders").feed({"pizza": "bianca"})
    run.end()
    run.wait(timeout=10)
    assert run.output("boxes").values() == ["box(12IN BIANCA, SPICE 0)"]


def test_default_tags_are_the_unique_unconnected_ports(env):
    flow = ls.Liveflow("chain")
    flow.connect(inc, dbl)
    assert flow.run([1, 2, 3], timeout=10) == [4, 6, 8]


def test_connect_by_named_ports(env):
    flow = ls.Liveflow("ports")
    flow.connect(inc.output(), pairs.input("left"))
    flow.connect(dbl.output("default"), pairs.input("right"))
    flow.expose(inc.input(), "a")
    flow.expose(dbl.input(), "b")
    flow.expose(pairs.output("sum"), "sum")
    flow.expose(pairs.output("diff"), "diff")
    run = flow.start()
    run.input("a").feed(10)  # -> 11
    run.input("b").feed(3)  # -> 6
    run.end()
    run.wait(timeout=10)
    assert run.output("sum").values() == [17]
    assert run.output("diff").values() == [5]


def test_the_same_spec_twice_with_labels(env):
    flow = ls.Liveflow("twice")
    flow.connect(inc, inc.labeled("again"))
    flow.expose(inc.input(), "in")
    flow.expose(inc.labeled("again").output(), "out")
    run = flow.start()
    run.input("in").feed(1)
    run.end()
    run.wait(timeout=10)
    assert run.output("out").values() == [3]


def test_transform_adapts_types(env):
    @ls.job_spec
    def length(text: str) -> int:
        return len(text)

    flow = ls.Liveflow("adapt")
    flow.connect(inc, length, transform=lambda n: "x" * n)
    assert flow.run([2, 4], timeout=10) == [3, 5]


def test_reconnecting_the_same_ends_changes_nothing(env):
    flow = ls.Liveflow("idempotent")
    for _ in range(3):  # as if a cell were run three times
        flow.connect(inc, dbl)
    assert flow.run([1, 2], timeout=10) == [4, 6]


def test_nested_flow(env):
    inner = ls.Liveflow("inner")
    inner.connect(inc, dbl)
    outer = ls.Liveflow("outer")
    outer.connect(inner, box, transform=str)
    assert outer.run([1, 5], timeout=10) == ["box(4)", "box(12)"]


def test_flow_as_an_operator(env):
    flow = ls.Liveflow("op")
    flow.connect(inc, dbl)
    result = collect(reactivex.from_iterable(range(5)).pipe(flow.op(), ops.map(lambda n: n - 2)), timeout=10)
    assert result == [0, 2, 4, 6, 8]


def test_a_flow_with_one_named_input_and_output_is_an_operator(env):
    flow = ls.Liveflow("named-op")
    flow.connect(inc, dbl)
    flow.expose(inc.input(), "numbers")
    flow.expose(dbl.output(), "doubled")
    result = collect(reactivex.from_iterable(range(3)).pipe(flow.op()), timeout=10)
    assert result == [2, 4, 6]


def test_a_spec_with_several_inputs_is_no_operator(env):
    with pytest.raises(ls.LivestackError, match=r"'pairs'.*one input tag.*\['left', 'right'\]"):
        pairs.op()


def test_exposing_two_ports_under_one_name_is_a_wiring_error(env):
    flow = ls.Liveflow("twice")
    flow.connect(inc, dbl)
    flow.expose(dbl.output(), "out")
    flow.expose(dbl.output(), "out")  # a re-run cell: the same exposure again is fine
    with pytest.raises(ls.WiringError, match=r"'out' is already exposed"):
        flow.expose(inc.output(), "out")


def test_a_cycle_stops_on_its_condition_and_the_run_completes(env):
    @ls.job_spec
    def collatz(n: int) -> int:
        return n // 2 if n % 2 == 0 else 3 * n + 1

    @ls.job_spec
    def until_one(n: int) -> int | None:
        return None if n == 1 else n

    flow = ls.Liveflow("collatz")
    flow.connect(collatz, until_one)
    flow.connect(until_one, collatz)  # feedback loop
    flow.expose(collatz.input(), "start")
    flow.expose(collatz.output(), "steps")
    run = flow.start()
    run.input("start").feed(6)
    run.end()
    run.wait(timeout=10)
    assert run.output("steps").values() == [3, 10, 5, 16, 8, 4, 2, 1]
    assert run.status is ls.JobStatus.COMPLETED


def test_a_failing_job_fails_the_run_and_ends_the_others(env):
    @ls.job_spec
    def breaks_on_three(n: int) -> int:
        if n == 3:
            raise ZeroDivisionError("three")
        return n

    flow = ls.Liveflow("fragile")
    flow.connect(inc, breaks_on_three)
    flow.connect(breaks_on_three, dbl)
    run = flow.start()
    run.feed_many([0, 1, 2])  # no end(): the failure alone must finish the run
    with pytest.raises(ls.JobFailed):
        run.wait(timeout=10)
    assert run.status is ls.JobStatus.FAILED
    terminal = {ls.JobStatus.COMPLETED, ls.JobStatus.FAILED, ls.JobStatus.CANCELLED}
    wait_until(lambda: all(info.status in terminal for info in env.jobs()), timeout=5)
    assert run.output().ended


def test_two_runs_of_one_flow_do_not_mix(env):
    flow = ls.Liveflow("twice-run")
    flow.connect(inc, dbl)
    first, second = flow.start(), flow.start()
    first.feed_many([1, 2])
    second.feed_many([10])
    first.end()
    second.end()
    assert first.result(timeout=10) == [4, 6]
    assert second.result(timeout=10) == [22]


def test_fan_in_two_sources_into_one_input(env):
    flow = ls.Liveflow("fan-in")
    flow.connect(inc, box, transform=str)
    flow.connect(dbl, box, transform=str)
    flow.expose(inc.input(), "a")
    flow.expose(dbl.input(), "b")
    flow.expose(box.output(), "out")
    run = flow.start()
    run.input("a").feed(1)
    run.input("b").feed(5)
    run.end()
    run.wait(timeout=10)
    assert sorted(run.output("out").values()) == ["box(10)", "box(2)"]


def test_a_nested_flow_is_wired_by_its_exposed_types():
    inner = ls.Liveflow("inner-typed")
    inner.connect(inc, dbl)
    outer = ls.Liveflow("outer-typed")
    with pytest.raises(ls.WiringError):
        outer.connect(inner, box)  # int cannot feed str without a transform


def test_a_cycle_with_several_starts(env):
    @ls.job_spec
    def halve(n: int) -> int | None:
        return n // 2 if n > 1 else None

    flow = ls.Liveflow("halving")
    flow.connect(halve, halve.labeled("loop"))
    flow.connect(halve.labeled("loop"), halve)
    flow.expose(halve.input(), "start")
    flow.expose(halve.output(), "seen")
    run = flow.start()
    run.input("start").feed_many([16, 5])
    run.end()
    run.wait(timeout=10)
    assert sorted(run.output("seen").values()) == sorted([8, 2, 2])


def test_cancelling_a_run_cancels_it_and_ends_its_outputs(env):
    flow = ls.Liveflow("cancelled")
    flow.connect(inc, dbl)
    run = flow.start()
    run.feed(1)  # input stays open
    wait_until(lambda: run.output().values() == [4], timeout=5)
    run.cancel()
    wait_until(lambda: run.output().ended, timeout=5)
    wait_until(lambda: run.status is not ls.JobStatus.RUNNING, timeout=5)
    assert run.status is ls.JobStatus.CANCELLED


def test_a_failure_inside_a_cycle_fails_the_run(env):
    @ls.job_spec
    def down(n: int) -> int:
        if n == 2:
            raise ArithmeticError("two")
        return n - 1

    @ls.job_spec
    def gate(n: int) -> int | None:
        return n if n > 0 else None

    flow = ls.Liveflow("failing-loop")
    flow.connect(down, gate)
    flow.connect(gate, down)
    flow.expose(down.input(), "start")
    flow.expose(down.output(), "steps")
    run = flow.start()
    run.input("start").feed(5)
    with pytest.raises(ls.JobFailed) as info:
        run.wait(timeout=10)
    assert isinstance(info.value.__cause__, ArithmeticError)
    assert run.output("steps").ended


def test_an_exposure_of_a_spec_the_flow_does_not_hold_is_refused_naming_it():
    """Livestack's github-issues test: an exposure of a spec no connection touches."""
    with pytest.raises(ls.WiringError, match=r"spec 'box' is not part of the flow.*connect it first") as info:
        ls.Liveflow(
            "missing-exposure",
            connections=[ls.conn(inc, dbl)],
            exposures=[ls.expose(box.output(), "missing")],
        )
    assert "inc" in str(info.value) and "dbl" in str(info.value)  # the specs it does hold
    flow = ls.Liveflow("cell-by-cell")
    flow.connect(inc, dbl)
    with pytest.raises(ls.WiringError, match=r"'box' is not part of the flow"):
        flow.expose(box.input(), "orders")
    with pytest.raises(ls.WiringError, match=r"'inc' \(labeled 'again'\) is not part of the flow"):
        flow.expose(inc.labeled("again").output(), "out")
    assert [n.label for n in flow.nodes] == ["inc", "dbl"]  # nothing was placed by the refusals


def test_a_spec_added_on_purpose_or_the_one_spec_of_a_flow_can_be_exposed(env):
    alone = ls.Liveflow("one-spec")
    alone.expose(inc.input(), "numbers")  # an empty flow takes it as its one spec
    alone.expose(inc.output(), "next")
    run = alone.start()
    run.input("numbers").feed_many([1, 2])
    run.end()
    run.wait(timeout=10)
    assert run.output("next").values() == [2, 3]
    two = ls.Liveflow("two-pieces")
    two.connect(inc, dbl)
    two.add(box)  # a separate piece, placed on purpose
    two.expose(box.input(), "labels")
    two.expose(box.output(), "boxes")
    two.expose(inc.input(), "numbers")
    run = two.start()
    run.input("labels").feed("a")
    run.end()
    run.wait(timeout=10)
    assert run.output("boxes").values() == ["box(a)"]
