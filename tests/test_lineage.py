"""Datapoints by id (``env.datapoint``) and their journey back to the outside input
(``datapoint.lineage()``): from memory, from a SQLite vault in a later process's env,
through transforms, nested flows and step mode; bad ids and truncated histories."""

from __future__ import annotations

import pytest

import livestack_nb as ls
from livestack_nb.lineage import Stop


@ls.job_spec(name="lin-knead")
def knead(order: str) -> str:
    return f"dough for {order}"


@ls.job_spec(name="lin-bake", input=str, output=str)
def bake(job: ls.LiveJob):
    for dough in job.input:
        job.output.emit(f"pizza from {dough}")


@ls.job_spec(name="lin-box")
async def box(pizza: str):
    yield f"box of {pizza}"


def _kitchen(name: str) -> ls.Liveflow:
    oven = ls.Liveflow(
        f"{name}-oven",
        connections=[ls.conn(bake, box)],
        exposures=[ls.expose(bake.input(), "dough"), ls.expose(box.output(), "boxes")],
    )
    return ls.Liveflow(
        name,
        connections=[ls.conn(knead, oven.input("dough"), transform=str.upper)],
        exposures=[ls.expose(knead.input(), "orders"), ls.expose(oven.output("boxes"), "boxes")],
    )


def _where(stops: list[Stop]) -> list[tuple[str | None, str, str, object]]:
    return [(s.node, s.side, s.tag, s.value) for s in stops]


def test_the_lineage_of_a_boxed_pizza_goes_back_to_its_order(env):
    run = _kitchen("lin-kitchen").start()
    run.input("orders").feed_many(["margherita", "funghi"])
    run.end()
    run.wait(timeout=10)
    last = run.output("boxes").datapoints()[-1]
    assert last.value == "box of pizza from DOUGH FOR FUNGHI"
    assert env.datapoint(last.id) == last
    stops = last.lineage()
    assert stops[0].datapoint_id == last.id
    outside = stops[-1]
    assert (outside.node, outside.job_id, outside.value, outside.parents) == (None, None, "funghi", ())
    assert stops[-1].stream_id == f"{run.job_id}/in/orders"
    values = [s.value for s in stops]
    # Each value as it was at each stop: through the transform (upper case) and the nested flow.
    assert values[0] == "box of pizza from DOUGH FOR FUNGHI"
    assert "pizza from DOUGH FOR FUNGHI" in values
    assert "DOUGH FOR FUNGHI" in values and "dough for funghi" in values
    knead_stop = next(s for s in stops if s.value == "dough for funghi")
    assert (knead_stop.node, knead_stop.side) == ("lin-knead", "out")
    assert knead_stop.job_id == run.node_jobs["lin-knead"]
    bake_stop = next(s for s in stops if s.value == "pizza from DOUGH FOR FUNGHI")
    assert (bake_stop.node, bake_stop.side) == ("lin-bake", "out")
    assert env.job(bake_stop.job_id).spec.name == "lin-bake"
    # The same walk by id, on the env.
    assert env.lineage(last.id) == stops
    assert str(stops[-1]) == "outside orders: 'funghi'"


def test_a_stepped_hop_names_a_datapoint_whose_journey_is_its_path(env):
    run = _kitchen("lin-stepped").start(step=True)
    run.feed("diavola")
    run.end()
    hops = run.step(20)
    run.wait(timeout=10)
    out = hops[-1]
    assert out.edge == "port:out:boxes"
    dp = env.datapoint(out.datapoint_id)
    assert dp.value == out.value == "box of pizza from DOUGH FOR DIAVOLA"
    journey = dp.lineage()
    assert journey[-1].node is None and journey[-1].value == "diavola"
    # Every hop's datapoint is on the way (each is the value as it left a stop).
    ids = {s.datapoint_id for s in journey}
    assert all(h.datapoint_id in ids for h in hops)
    # The box as it reached the outside is one stop further on.
    final = env.datapoint(run.output("boxes").datapoints()[0].id)
    assert final.parents == (out.datapoint_id,)
    assert final.lineage()[0].node is None and final.lineage()[0].side == "out"


def test_a_single_job_s_outputs_go_back_to_what_was_fed(env):
    job = bake.start()
    job.feed_many(["a", "b"])
    job.end()
    job.wait(timeout=10)
    dp = job.output().datapoints()[1]
    assert _where(dp.lineage()) == [
        ("lin-bake", "out", "default", "pizza from b"),
        ("lin-bake", "in", "default", "b"),
    ]
    assert dp.lineage()[1].job_id == job.job_id


def test_a_datapoint_is_read_back_from_a_sqlite_vault_by_a_later_env(make_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'kitchen.db'}"
    first = make_env(vault=url)
    with ls.use_env(first):
        run = _kitchen("lin-durable").start()
        run.input("orders").feed("quattro")
        run.end()
        run.wait(timeout=10)
        dp = run.output("boxes").datapoints()[0]
        expected = _where(dp.lineage())
        run_id = run.job_id
    first.close()
    later = make_env(vault=url)
    again = later.datapoint(dp.id)
    assert (again.id, again.value, again.parents) == (dp.id, dp.value, dp.parents)
    stops = later.lineage(dp.id)
    assert _where(stops) == expected
    assert stops[-1].stream_id == f"{run_id}/in/orders" and stops[-1].job_id is None
    assert any(s.job_id is not None and later.job(s.job_id).spec.name == "lin-knead" for s in stops)


def test_bad_ids_are_refused_naming_them(env):
    run = _kitchen("lin-bad").start()
    run.feed("x")
    run.end()
    run.wait(timeout=10)
    sid = run.output("boxes").stream_id
    with pytest.raises(KeyError, match=r"'nonsense' is not a datapoint id: expected '<stream id>:<seq>'"):
        env.datapoint("nonsense")
    with pytest.raises(TypeError, match=r"a datapoint id is a string .*not int 42"):
        env.datapoint(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not int 3"):
        env.lineage(3)  # type: ignore[arg-type]
    unknown = r"no datapoint 'nowhere/out/x:0' in env .*no stream 'nowhere/out/x'"
    with pytest.raises(ls.LivestackError, match=unknown):
        env.datapoint("nowhere/out/x:0")
    with pytest.raises(KeyError, match=rf"no datapoint '{sid}:5': stream '{sid}' has 1 datapoint\(s\)"):
        env.datapoint(f"{sid}:5")


@ls.job_spec(name="lin-first-only")
def first_only(n: int) -> int | None:
    return n * 100 if n == 0 else None


def test_a_truncated_history_is_said_by_the_look_up_and_ends_the_journey(make_env):
    env = make_env(history=2)
    with ls.use_env(env):
        job = first_only.start()
        job.feed_many(list(range(6)))
        job.end()
        job.wait(timeout=10)
    dp = job.output().datapoints()[0]
    assert dp.value == 0
    fed = f"{job.job_id}/in/default:0"
    with pytest.raises(KeyError, match=rf"datapoint '{fed}' is no longer held: .*history=.*durable vault"):
        env.datapoint(fed)
    assert env.datapoint(f"{job.job_id}/in/default:5").value == 5  # still in memory
    stops = dp.lineage(env)
    assert [s.held for s in stops] == [True, False]
    assert (stops[1].datapoint_id, stops[1].value, stops[1].side) == (fed, None, "in")
    assert "no longer held" in str(stops[1])
