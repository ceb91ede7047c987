"""Bad input, fuzzed: every outcome is the right output or a LivestackError saying where.

No hang (every wait is bounded), no broken env (each example ends with a job
that still runs), nothing fed before a rejected value lost.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from typing import Any

import pytest
from conftest import closing_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import livestack_nb as ls
from livestack_nb.testing import collect

_names = itertools.count()

# Deterministic and modest: the suite must stay fast on two cores and never flake.
_settings = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.binary(max_size=50),
    st.sampled_from(["x" * 200_000, "<script>alert(1)</script>", "\x00\ud7ff\U0010ffff", b"\x00" * 100_000]),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _nested(depth: int) -> Any:
    v: Any = 0
    for _ in range(depth):
        v = {"a": [v]}
    return v


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@_settings
@given(values=st.lists(json_like, max_size=8), deep=st.integers(0, 300))
def test_any_json_like_value_comes_out_as_it_went_in(env, values: list[Any], deep: int):
    @ls.job_spec(name=f"echo{next(_names)}", inputs={"default": Any}, outputs={"default": Any})
    def echo(job: ls.LiveJob) -> None:  # a processor: a map would drop None (it filters)
        for v in job.input:
            job.output.emit(v)

    fed = [*values, _nested(deep)]
    out = echo.run(fed, timeout=20)
    want = [v for v in fed if v is not None]  # emitting None emits nothing (documented)
    assert len(out) == len(want) and all(map(_same, out, want))


class Order(BaseModel):
    pizza: str
    size: int = 12
    toppings: list[str] = []


def _expected(tp: Any, v: Any) -> Any:
    """What pydantic makes of ``v`` as ``tp``, or an exception."""
    from pydantic import TypeAdapter

    return TypeAdapter(tp).validate_python(v)


TAGS: dict[str, Any] = {"order": Order, "count": int, "name": str, "ratio": float, "blob": bytes}


@_settings
@given(feeds=st.lists(st.tuples(st.sampled_from([*TAGS, "nope", ""]), json_like), min_size=1, max_size=12))
def test_wrong_types_and_unknown_tags_are_rejected_naming_where_and_lose_nothing(env, feeds):
    name = f"kitchen{next(_names)}"

    @ls.job_spec(name=name, inputs=TAGS, outputs={"default": Any})
    def kitchen(job: ls.LiveJob) -> None:
        for tag, v in job.input.merge(*TAGS):
            job.output.emit((tag, v))

    job = kitchen.start()
    accepted: list[tuple[str, Any]] = []
    for tag, v in feeds:
        if tag not in TAGS:
            with pytest.raises(ls.LivestackError, match=f"spec '{name}' has no input tag") as e:
                job.input(tag).feed(v)
            assert "order" in str(e.value)  # it names the tags that exist
            continue
        try:
            want = _expected(TAGS[tag], v)
        except Exception:
            with pytest.raises(ls.DataValidationError) as d:
                job.input(tag).feed(v)
            assert f"spec '{name}', input tag '{tag}'" in str(d.value)
            assert d.value.spec == name and d.value.tag == tag
        else:
            job.input(tag).feed(v)
            accepted.append((tag, want))
    job.end()
    out = job.result(timeout=20)
    for t in TAGS:  # order is kept per tag (tags are merged by arrival)
        assert [v for tag, v in out if tag == t] == [v for tag, v in accepted if tag == t]
    assert len(out) == len(accepted)


class Oven(BaseModel):
    spice: int = 0
    mode: str = "bake"


@_settings
@given(options=json_like)
def test_bad_options_are_refused_naming_the_spec(env, options: Any):
    name = f"oven{next(_names)}"

    @ls.job_spec(name=name)
    def oven(n: int, options: Oven) -> int:
        return n + options.spice

    try:
        want = Oven.model_validate({} if options is None else options)
    except Exception:
        with pytest.raises(ls.LivestackError, match=f"spec '{name}'"):
            oven.start(options=options)
    else:
        assert oven.run([1, 2], options=options, timeout=20) == [1 + want.spice, 2 + want.spice]


TYPES = [int, str, float, Order, Any]
spec_shapes = st.lists(
    st.tuples(st.sampled_from(range(len(TYPES))), st.sampled_from(range(len(TYPES)))), min_size=2, max_size=5
)
edges = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 4), st.sampled_from(["default", "other"]), st.booleans()),
    max_size=6,
)


@_settings
@given(shapes=spec_shapes, wiring=edges, values=st.lists(st.integers(-5, 5), max_size=5))
def test_random_wiring_is_refused_at_once_or_runs_to_an_end(shapes, wiring, values):
    with closing_env() as env:
        specs = []
        for i, (a, b) in enumerate(shapes):
            tin, tout = TYPES[a], TYPES[b]
            spec = ls.JobSpec(f"s{next(_names)}_{i}", input=tin, output=tout)
            spec.define_worker(lambda v, tout=tout: _convert(v, tout))
            specs.append(spec)
        flow = ls.Liveflow(f"random{next(_names)}")
        for src, dst, tag, transform in wiring:
            if not (src < dst < len(specs)):  # forward edges only: a run of it must end
                continue
            try:
                flow.connect(
                    specs[src].output(tag) if tag != "default" else specs[src],
                    specs[dst],
                    transform=(lambda v: v) if transform else None,
                )
            except ls.WiringError as e:
                assert specs[src].name in str(e) or specs[dst].name in str(e) or tag in str(e)
        flow.expose(specs[0].input(), "in")
        run = flow.start()
        with contextlib.suppress(ls.DataValidationError):
            run.input("in").feed_many([_convert(v, TYPES[shapes[0][0]]) for v in values])
        run.input("in").end()
        try:
            run.wait(timeout=20)
        except ls.JobFailed as e:
            assert "spec" in str(e)  # names the job and spec that failed
        # the env still runs jobs afterwards
        assert specs[-1].run([], timeout=20, env=env) == []
        assert env.jobs()


def _convert(v: Any, tp: Any) -> Any:
    if tp is Order:
        return Order(pizza=str(v))
    if tp is Any:
        return v
    if isinstance(v, Order):
        return tp(v.size)
    return tp(v)


def test_a_bad_value_in_a_batch_sends_nothing_and_the_job_goes_on(env):
    @ls.job_spec
    def inc(n: int) -> int:
        return n + 1

    job = inc.start()
    job.feed_many([1, 2])
    with pytest.raises(ls.DataValidationError, match="spec 'inc', input tag 'default'"):
        job.feed_many([3, "four", 5])
    job.feed_many([6])
    job.end()
    assert job.result(timeout=10) == [2, 3, 7]
    assert collect(job.output().replay()) == [2, 3, 7]


class Reading(BaseModel):
    value: float
    raw: bytes = b""


def test_a_model_with_nan_and_binary_fields_reads_back_from_the_sqlite_vault(make_env, tmp_path):
    db = f"sqlite:///{tmp_path / 'v.db'}"
    env = make_env(vault=db)

    @ls.job_spec(name="reading")
    def reading(r: Reading) -> Reading:
        return r

    fed = [Reading(value=float("nan"), raw=b"\xff\x00"), Reading(value=1.5)]
    job = reading.start(env=env)
    job.feed_many(fed)
    job.end()
    job.wait(timeout=10)
    env.close()
    again = make_env(vault=db)
    with again:

        @ls.job_spec(name="reading")
        def reading2(r: Reading) -> Reading:
            return r

        out = collect(again.job(job.job_id).output().replay())
    assert [type(r) for r in out] == [Reading, Reading]
    assert math.isnan(out[0].value) and out[0].raw == b"\xff\x00" and out[1] == fed[1]


plain_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**53), 2**53),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=30),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(_settings, max_examples=15)
@given(
    floats=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5),
    texts=st.lists(st.one_of(st.text(max_size=40), st.just("y" * 300_000)), max_size=4),
    data=st.lists(plain_json, max_size=5),
)
def test_what_a_sqlite_vault_stored_reads_back_the_same_in_a_new_env(tmp_path_factory, floats, texts, data):
    db = f"sqlite:///{tmp_path_factory.mktemp('vault') / 'v.db'}"
    ids = {}
    with closing_env(vault=db):
        for name, tp, values in (("f", float, floats), ("t", str, texts), ("d", Any, data)):
            spec = ls.JobSpec(name, input=tp, output=tp)
            spec.define_worker(lambda v: v)
            job = spec.start()
            job.feed_many(values)
            job.end()
            job.wait(timeout=20)
            ids[name] = (job.job_id, [v for v in values if v is not None])
    with closing_env(vault=db) as env:
        for name, tp in (("f", float), ("t", str), ("d", Any)):
            ls.JobSpec(name, input=tp, output=tp).define_worker(lambda v: v)
            job_id, want = ids[name]
            out = collect(env.job(job_id).output().replay())
            assert len(out) == len(want) and all(map(_same, out, want)), name
