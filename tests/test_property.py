"""Property: any chain of map / flat-map / filter specs in a Liveflow equals plain Python, in order."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import livestack_nb as ls
from livestack_nb.testing import collect

_names = itertools.count()

# (kind, parameter) -> plain Python function on a list
Step = tuple[str, int]


def _plain(step: Step, values: list[int]) -> list[int]:
    kind, k = step
    if kind == "map":
        return [v * k + 1 for v in values]
    if kind == "flat":
        return [v + i for v in values for i in range(k)]
    return [v for v in values if v % k != 0]


def _spec(step: Step) -> ls.JobSpec:
    kind, k = step
    name = f"{kind}{next(_names)}"
    if kind == "map":

        def f(v: int) -> int:
            return v * k + 1

    elif kind == "flat":

        def f(v: int) -> Iterator[int]:  # type: ignore[misc]
            for i in range(k):
                yield v + i

    else:

        def f(v: int) -> int | None:  # type: ignore[misc]
            return None if v % k == 0 else v

    return ls.job_spec(name=name)(f)


# Deterministic examples (no example database): the suite must not flake.
_settings = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

steps = st.one_of(
    st.tuples(st.just("map"), st.integers(-3, 3)),
    st.tuples(st.just("flat"), st.integers(0, 3)),
    st.tuples(st.just("filter"), st.integers(2, 4)),
)


@_settings
@given(chain=st.lists(steps, min_size=1, max_size=4), values=st.lists(st.integers(-50, 50), max_size=20))
def test_flow_of_random_specs_matches_plain_python(env, chain: list[Step], values: list[int]):
    expected = values
    for step in chain:
        expected = _plain(step, expected)

    specs = [_spec(step) for step in chain]
    flow = ls.Liveflow(f"chain{next(_names)}")
    for a, b in itertools.pairwise(specs):
        flow.connect(a, b)
    flow.expose(specs[0].input(), "in")
    flow.expose(specs[-1].output(), "out")
    run = flow.start()
    for v in values:
        run.input("in").feed(v)
    run.end()
    run.wait(timeout=10)
    assert run.output("out").values() == expected


@_settings
@given(step=steps, values=st.lists(st.integers(-50, 50), max_size=30))
def test_spec_op_in_a_pipe_matches_plain_python(env, step: Step, values: list[int]):
    result = collect(reactivex.from_iterable(values).pipe(_spec(step).op()), timeout=10)
    assert result == _plain(step, values)
