"""ls.agg: every aggregate against pandas on the same data, and the quantile sketch's error bound."""

from __future__ import annotations

import math
import random
from itertools import pairwise

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import livestack_nb as ls
from livestack_nb.agg import QuantileSketch, exact_quantile

_settings = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def close(a: float, b: float) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def both_ways(agg: ls.agg.Agg, xs: list[float], cut: int) -> tuple[object, object]:
    """The aggregate over the whole column, and folded in two pieces by its accumulator."""
    acc = agg.accumulator()
    acc.add_many(xs[:cut])
    acc.add_many(xs[cut:])
    return agg.over(list(xs)), acc.result()


@_settings
@given(xs=st.lists(floats, min_size=1, max_size=60), cut=st.integers(0, 60), q=st.floats(0, 1))
def test_every_aggregate_matches_pandas_whole_and_in_pieces(xs, cut, q):
    s = pd.Series(xs, dtype=float)
    expected = {
        "count": len(s),
        "sum": s.sum(),
        "mean": s.mean(),
        "min": s.min(),
        "max": s.max(),
        "std": s.std(),
        "first": s.iloc[0],
        "last": s.iloc[-1],
        "quantile": s.quantile(q),
    }
    aggs = {
        "count": ls.agg.count(),
        "sum": ls.agg.sum(),
        "mean": ls.agg.mean(),
        "min": ls.agg.min(),
        "max": ls.agg.max(),
        "std": ls.agg.std(),
        "first": ls.agg.first(),
        "last": ls.agg.last(),
        "quantile": ls.agg.quantile(q=q),
    }
    for name, agg in aggs.items():
        whole, pieces = both_ways(agg, xs, cut)
        assert close(whole, expected[name]), (name, whole, expected[name])
        assert close(pieces, expected[name]), (name, pieces, expected[name])


@_settings
@given(xs=st.lists(st.integers(0, 6), min_size=1, max_size=60), k=st.integers(1, 4), cut=st.integers(0, 60))
def test_top_k_matches_pandas_value_counts(xs, k, cut):
    counts = pd.Series(xs).value_counts()
    for got in both_ways(ls.agg.top_k(k=k), xs, cut):
        assert len(got) == min(k, counts.size)
        # counts in order, and each value's count is pandas' count
        assert [n for _, n in got] == sorted(counts.to_numpy().tolist(), reverse=True)[:k]
        assert all(counts[v] == n for v, n in got)
        # ties are broken by first appearance
        for (v1, n1), (v2, n2) in pairwise(got):
            assert n1 > n2 or xs.index(v1) < xs.index(v2)


def test_fields_functions_and_user_functions():
    rows = [{"ms": 3, "path": "/a"}, {"ms": 5, "path": "/b"}, {"ms": 10, "path": "/a"}]
    agg = ls.agg.mean("ms")
    assert agg.over(agg.column(rows)) == 6
    by_fn = ls.agg.max(lambda r: r["ms"] * 2)
    assert by_fn.over(by_fn.column(rows)) == 20
    spread = ls.agg.apply(lambda xs: max(xs) - min(xs), "ms")
    assert spread.over(spread.column(rows)) == 7
    assert "quantile(ms, 0.95)" in repr(ls.agg.quantile("ms", 0.95))


def test_bad_aggregates_are_clear_errors():
    with pytest.raises(ls.LivestackError, match="q must be a number in"):
        ls.agg.quantile("ms", 95)
    with pytest.raises(ls.LivestackError, match="k must be an int"):
        ls.agg.top_k("x", 0)
    with pytest.raises(ls.LivestackError, match="rel_error"):
        ls.agg.quantile("x", 0.5, rel_error=2)
    agg = ls.agg.sum("ms")
    with pytest.raises(ls.LivestackError, match="no field 'ms'"):
        agg.column([{"ms": 1}, {"latency": 2}])


# -- the sketch ------------------------------------------------------------------------


def _check_bound(values: list[float], rel: float, qs: list[float]) -> float:
    sketch = QuantileSketch(rel)
    for i in range(0, len(values), 997):  # in pieces, as a window spills
        sketch.add_many(values[i : i + 997])
    s = sorted(values)
    worst = 0.0
    for q in qs:
        exact = s[int(q * (len(s) - 1))]
        got = sketch.quantile(q)
        err = abs(got - exact) / abs(exact) if exact else abs(got)
        assert err <= rel + 1e-12, (q, got, exact)
        worst = max(worst, err)
    return worst


@pytest.mark.parametrize(
    "draw",
    [
        lambda r: r.lognormvariate(3, 1.5),  # latencies: long tail
        lambda r: r.uniform(0.001, 1000),
        lambda r: r.expovariate(0.01),
        lambda r: r.uniform(-500, 500),  # negatives, around zero
        lambda r: float(r.choice([0, 0, 1, 250, 250, 251])),  # many ties and zeros
    ],
)
def test_the_sketch_is_within_its_relative_error_bound(draw):
    r = random.Random(7)
    values = [draw(r) for _ in range(50_000)]
    qs = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1]
    for rel in (0.01, 0.05):
        _check_bound(values, rel, qs)


def test_the_sketch_stays_small_and_merges():
    r = random.Random(3)
    a, b = QuantileSketch(), QuantileSketch()
    xs = [r.lognormvariate(0, 3) for _ in range(100_000)]
    a.add_many(xs[:50_000])
    b.add_many(xs[50_000:])
    a.merge(b)
    assert a.n == 100_000
    assert len(a.pos) < 2_000  # buckets grow with the log of the range, not the count
    s = sorted(xs)
    exact = s[int(0.95 * (len(s) - 1))]
    assert abs(a.quantile(0.95) - exact) <= 0.01 * exact


def test_a_quantile_switches_to_the_sketch_above_its_exact_limit():
    r = random.Random(5)
    xs = [r.lognormvariate(2, 1) for _ in range(20_000)]
    agg = ls.agg.quantile(q=0.95, exact=1_000)
    acc = agg.accumulator()
    for i in range(0, len(xs), 500):
        acc.add_many(xs[i : i + 500])
    exact = sorted(xs)[int(0.95 * (len(xs) - 1))]
    got = acc.result()
    assert got != exact_quantile(xs, 0.95)  # approximate now...
    assert abs(got - exact) <= 0.01 * exact  # ...within its bound
    small = agg.accumulator()
    small.add_many(xs[:1_000])
    assert small.result() == exact_quantile(xs[:1_000], 0.95)  # exact up to the limit
