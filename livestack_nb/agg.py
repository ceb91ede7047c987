"""Aggregates of a window's values: ``ls.agg.count()``, ``ls.agg.quantile("ms", 0.95)``, ...

A window hands each aggregate the column of values it names (a field of each
value, a function of it, or the value itself) and gets one result back. Two
ways in, one meaning: :meth:`Agg.over` computes over a whole column at once
(builtins in C: ``len``, ``sum``, ``min``, ``sorted``), and
:meth:`Agg.accumulator` folds columns in piece by piece, so a window of a
million values over an hour need not hold them all. Every aggregate is exact,
except a quantile over more values than its ``exact=`` limit (100,000 by
default): it then switches to a :class:`QuantileSketch` whose result is within
``rel_error`` (1%) of the exact one (see there).
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Callable, Sequence
from operator import attrgetter, itemgetter
from typing import Any

from .errors import LivestackError

__all__ = [
    "Accumulator",
    "Agg",
    "QuantileSketch",
    "apply",
    "count",
    "first",
    "last",
    "max",
    "mean",
    "min",
    "quantile",
    "std",
    "sum",
    "top_k",
]

_min, _max, _sum = min, max, sum  # the builtins, before this module's names shadow them

Field = str | Callable[[Any], Any] | None


class Accumulator:
    """Folds columns of one window in, piece by piece; ``result()`` at the end."""

    def add_many(self, xs: Sequence[Any]) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError

    def merge(self, other: Any) -> None:
        """Fold in ``other`` (an accumulator of the same aggregate; two sessions merged)."""
        raise NotImplementedError


class Agg:
    """One aggregate over a window: what it reads (``field``) and how it folds.

    Parameters
    ----------
    field:
        A field name (a dict key or an attribute), a function of the value, or
        ``None`` for the value itself.
    """

    kind = "agg"

    def __init__(self, field: Field = None) -> None:
        if field is not None and not isinstance(field, str) and not callable(field):
            raise LivestackError(
                f"ls.agg.{self.kind}: field must be a name, a function or None, not {field!r}"
            )
        self.field = field

    @property
    def label(self) -> str:
        """How this aggregate is shown (in a window spec's name and docs)."""
        return f"{self.kind}({_field_label(self.field)})"

    def column(self, items: Sequence[Any]) -> list[Any]:
        """The values this aggregate reads, one per item of the window."""
        f = self.field
        if f is None:
            return items if isinstance(items, list) else list(items)
        if callable(f):
            return list(map(f, items))
        if not items:
            return []
        getter = itemgetter(f) if isinstance(items[0], dict) else attrgetter(f)
        try:
            return list(map(getter, items))
        except (KeyError, AttributeError, TypeError):
            bad = next(v for v in items if not _has(v, f))
            raise LivestackError(f"ls.agg.{self.kind}: a value has no field {f!r}: {bad!r}"[:300]) from None

    def over(self, xs: list[Any]) -> Any:
        """The aggregate of a whole column."""
        acc = self.accumulator()
        acc.add_many(xs)
        return acc.result()

    def accumulator(self) -> Accumulator:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"ls.agg.{self.label}"


def _has(v: Any, f: str) -> bool:
    return f in v if isinstance(v, dict) else hasattr(v, f)


def _field_label(f: Field) -> str:
    if f is None:
        return ""
    if isinstance(f, str):
        return f
    return getattr(f, "__name__", "fn")


# -- count, sum, mean, min, max, first, last -------------------------------------


class _Fold(Accumulator):
    """An accumulator kept as one value, folded with ``step(old, column)``."""

    __slots__ = ("combine", "finish", "step", "value")

    def __init__(
        self,
        step: Callable[[Any, list[Any]], Any],
        finish: Callable[[Any], Any],
        combine: Callable[[Any, Any], Any],
        empty: Any = None,
    ) -> None:
        self.step = step
        self.finish = finish
        self.combine = combine
        self.value: Any = empty

    def add_many(self, xs: Sequence[Any]) -> None:
        if xs:
            self.value = self.step(self.value, list(xs))

    def result(self) -> Any:
        return self.finish(self.value)

    def merge(self, other: Any) -> None:
        self.value = self.combine(self.value, other.value)


def _either(pick: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``pick(a, b)``, or whichever is there when one side has no value yet."""
    return lambda a, b: b if a is None else a if b is None else pick(a, b)


class _Count(Agg):
    kind = "count"

    def column(self, items: Sequence[Any]) -> list[Any]:
        return items if isinstance(items, list) else list(items)  # count needs no field values

    def over(self, xs: list[Any]) -> Any:
        return len(xs)

    def accumulator(self) -> Accumulator:
        return _Fold(lambda n, xs: n + len(xs), int, operator.add, 0)


class _Sum(Agg):
    kind = "sum"

    def over(self, xs: list[Any]) -> Any:
        return _sum(xs)

    def accumulator(self) -> Accumulator:
        return _Fold(lambda s, xs: s + _sum(xs), lambda s: s, operator.add, 0)


class _Mean(Agg):
    kind = "mean"

    def over(self, xs: list[Any]) -> Any:
        return _sum(xs) / len(xs) if xs else math.nan

    def accumulator(self) -> Accumulator:
        return _Fold(
            lambda st, xs: (st[0] + _sum(xs), st[1] + len(xs)),
            lambda st: st[0] / st[1] if st[1] else math.nan,
            lambda a, b: (a[0] + b[0], a[1] + b[1]),
            (0, 0),
        )


class _Extreme(Agg):
    def __init__(self, field: Field, pick: Callable[..., Any], kind: str) -> None:
        self.kind = kind
        super().__init__(field)
        self.pick = pick

    def over(self, xs: list[Any]) -> Any:
        return self.pick(xs) if xs else None

    def accumulator(self) -> Accumulator:
        pick = self.pick
        return _Fold(lambda m, xs: pick(xs) if m is None else pick(m, pick(xs)), lambda m: m, _either(pick))


class _First(Agg):
    kind = "first"

    def over(self, xs: list[Any]) -> Any:
        return xs[0] if xs else None

    def accumulator(self) -> Accumulator:
        return _Fold(
            lambda f, xs: (xs[0],) if f is None else f,
            lambda f: None if f is None else f[0],
            _either(lambda a, b: a),
        )


class _Last(Agg):
    kind = "last"

    def over(self, xs: list[Any]) -> Any:
        return xs[-1] if xs else None

    def accumulator(self) -> Accumulator:
        return _Fold(lambda _, xs: (xs[-1],), lambda f: None if f is None else f[0], _either(lambda a, b: b))


# -- std (sample, ddof=1, as pandas) --------------------------------------------


class _StdAcc(Accumulator):
    """Count, mean and sum of squared deviations, merged piece by piece (Chan et al.)."""

    __slots__ = ("m2", "mean", "n")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add_many(self, xs: Sequence[Any]) -> None:
        nb = len(xs)
        if not nb:
            return
        mb = math.fsum(xs) / nb
        m2b = math.fsum((x - mb) ** 2 for x in xs)
        na = self.n
        n = na + nb
        delta = mb - self.mean
        self.mean += delta * nb / n
        self.m2 += m2b + delta * delta * na * nb / n
        self.n = n

    def result(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else math.nan

    def merge(self, other: Any) -> None:
        if not other.n:
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.mean += delta * other.n / n
        self.n = n


class _Std(Agg):
    kind = "std"

    def accumulator(self) -> Accumulator:
        return _StdAcc()


# -- top_k -------------------------------------------------------------------------


class _TopK(Agg):
    kind = "top_k"

    def __init__(self, field: Field, k: int) -> None:
        super().__init__(field)
        if not isinstance(k, int) or k < 1:
            raise LivestackError(f"ls.agg.top_k: k must be an int >= 1, not {k!r}")
        self.k = k

    @property
    def label(self) -> str:
        return f"top_k({_field_label(self.field)}, {self.k})"

    def over(self, xs: list[Any]) -> Any:
        return [[v, n] for v, n in Counter(xs).most_common(self.k)]

    def accumulator(self) -> Accumulator:
        k = self.k

        def step(c: Counter[Any] | None, xs: list[Any]) -> Counter[Any]:
            c = c if c is not None else Counter()
            c.update(xs)
            return c

        def combine(a: Counter[Any], b: Counter[Any]) -> Counter[Any]:
            a.update(b)
            return a

        return _Fold(
            step, lambda c: [] if c is None else [[v, n] for v, n in c.most_common(k)], _either(combine)
        )


# -- quantile ------------------------------------------------------------------------


def exact_quantile(xs: Sequence[float], q: float, *, is_sorted: bool = False) -> float:
    """The ``q`` quantile with linear interpolation between order statistics (pandas' default)."""
    s = xs if is_sorted else sorted(xs)
    n = len(s)
    if not n:
        return math.nan
    pos = q * (n - 1)
    lo = int(pos)
    if lo >= n - 1:
        return float(s[-1])
    frac = pos - lo
    a, b = s[lo], s[lo + 1]
    return float(a + (b - a) * frac) if frac else float(a)


class QuantileSketch:
    """A DDSketch: quantiles of any number of values in bounded memory.

    Values are counted in buckets whose bounds grow geometrically by
    ``gamma = (1 + a) / (1 - a)``, so every value of a bucket is within
    ``a = rel_error`` of the bucket's representative. The quantile returned
    for ``q`` is therefore within ``rel_error * |x|`` of ``x``, the value of
    rank ``floor(q * (n - 1))`` among the ``n`` values added (the order
    statistic that pandas' linear interpolation starts from), whatever their
    distribution or order. Memory grows with the logarithm of the range of
    the values, not with their number: about 2,100 buckets cover 1e-9 to 1e9
    at 1%. Negative values have their own buckets and zero its own count.
    """

    def __init__(self, rel_error: float = 0.01) -> None:
        if not 0 < rel_error < 1:
            raise LivestackError(f"a quantile sketch needs 0 < rel_error < 1, not {rel_error!r}")
        self.rel_error = rel_error
        self.gamma = (1 + rel_error) / (1 - rel_error)
        self._log_gamma = math.log(self.gamma)
        self.pos: Counter[int] = Counter()
        self.neg: Counter[int] = Counter()
        self.zeros = 0
        self.n = 0

    def _index(self, x: float) -> int:
        return math.ceil(math.log(x) / self._log_gamma)

    def add_many(self, xs: Sequence[float]) -> None:
        """Count ``xs`` in their buckets."""
        index, pos, neg = self._index, self.pos, self.neg
        for x in xs:
            if x > 0:
                pos[index(x)] += 1
            elif x < 0:
                neg[index(-x)] += 1
            elif x == 0:
                self.zeros += 1
            else:
                raise LivestackError(f"a quantile sketch cannot count {x!r}")
        self.n += len(xs)

    def merge(self, other: QuantileSketch) -> None:
        """Count ``other``'s values too (a sketch of the same ``rel_error``)."""
        self.pos.update(other.pos)
        self.neg.update(other.neg)
        self.zeros += other.zeros
        self.n += other.n

    def _value(self, i: int) -> float:
        return 2 * self.gamma**i / (self.gamma + 1)

    def quantile(self, q: float) -> float:
        """The value of rank ``floor(q * (n - 1))``, within ``rel_error`` (NaN when empty)."""
        if not self.n:
            return math.nan
        rank = int(q * (self.n - 1))
        seen = 0
        for i in sorted(self.neg, reverse=True):  # most negative first
            seen += self.neg[i]
            if seen > rank:
                return -self._value(i)
        seen += self.zeros
        if seen > rank:
            return 0.0
        for i in sorted(self.pos):
            seen += self.pos[i]
            if seen > rank:
                return self._value(i)
        return self._value(_max(self.pos))  # pragma: no cover - rank < n always lands above


class _QuantileAcc(Accumulator):
    __slots__ = ("exact", "q", "rel_error", "sketch", "values")

    def __init__(self, q: float, exact: int, rel_error: float) -> None:
        self.q = q
        self.exact = exact
        self.rel_error = rel_error
        self.values: list[Any] | None = []
        self.sketch: QuantileSketch | None = None

    def add_many(self, xs: Sequence[Any]) -> None:
        if self.values is not None:
            self.values.extend(xs)
            if len(self.values) <= self.exact:
                return
            self.sketch = QuantileSketch(self.rel_error)
            xs, self.values = self.values, None
        assert self.sketch is not None
        self.sketch.add_many(xs)

    def result(self) -> float:
        if self.values is not None:
            return exact_quantile(self.values, self.q)
        assert self.sketch is not None
        return self.sketch.quantile(self.q)

    def merge(self, other: Any) -> None:
        if other.values is not None:
            self.add_many(other.values)
            return
        if self.sketch is None:
            self.sketch = QuantileSketch(self.rel_error)
            self.sketch.add_many(self.values or [])
            self.values = None
        self.sketch.merge(other.sketch)


class _Quantile(Agg):
    kind = "quantile"

    def __init__(self, field: Field, q: float, exact: int, rel_error: float) -> None:
        super().__init__(field)
        if not isinstance(q, (int, float)) or not 0 <= q <= 1:
            raise LivestackError(f"ls.agg.quantile: q must be a number in [0, 1], not {q!r}")
        if not isinstance(exact, int) or exact < 1:
            raise LivestackError(f"ls.agg.quantile: exact must be an int >= 1, not {exact!r}")
        QuantileSketch(rel_error)  # checks it
        self.q = float(q)
        self.exact = exact
        self.rel_error = rel_error

    @property
    def label(self) -> str:
        return f"quantile({_field_label(self.field)}, {self.q:g})"

    def over(self, xs: list[Any]) -> Any:
        if len(xs) <= self.exact:
            return exact_quantile(xs, self.q)
        return super().over(xs)

    def accumulator(self) -> Accumulator:
        return _QuantileAcc(self.q, self.exact, self.rel_error)


# -- any function of the window's values ----------------------------------------------


class _ListAcc(Accumulator):
    __slots__ = ("fn", "values")

    def __init__(self, fn: Callable[[list[Any]], Any]) -> None:
        self.fn = fn
        self.values: list[Any] = []

    def add_many(self, xs: Sequence[Any]) -> None:
        self.values.extend(xs)

    def result(self) -> Any:
        return self.fn(self.values)

    def merge(self, other: Any) -> None:
        self.values.extend(other.values)


class _Apply(Agg):
    kind = "apply"

    def __init__(self, fn: Callable[[list[Any]], Any], field: Field) -> None:
        if not callable(fn):
            raise LivestackError(f"ls.agg.apply: fn must be callable, not {fn!r}")
        super().__init__(field)
        self.fn = fn

    @property
    def label(self) -> str:
        name = getattr(self.fn, "__name__", "fn")
        return f"{name}({_field_label(self.field)})"

    def over(self, xs: list[Any]) -> Any:
        return self.fn(xs)

    def accumulator(self) -> Accumulator:
        return _ListAcc(self.fn)


# -- the public factories --------------------------------------------------------------


def count() -> Agg:
    """How many values the window holds."""
    return _Count(None)


def sum(field: Field = None) -> Agg:
    """The sum of ``field`` (exact for ints; floats added in order)."""
    return _Sum(field)


def mean(field: Field = None) -> Agg:
    """The mean of ``field`` (NaN for an empty column)."""
    return _Mean(field)


def min(field: Field = None) -> Agg:
    """The smallest value of ``field``."""
    return _Extreme(field, _min, "min")


def max(field: Field = None) -> Agg:
    """The largest value of ``field``."""
    return _Extreme(field, _max, "max")


def std(field: Field = None) -> Agg:
    """The sample standard deviation of ``field`` (``ddof=1`` as pandas; NaN below 2 values)."""
    return _Std(field)


def first(field: Field = None) -> Agg:
    """``field`` of the window's first value (in arrival order)."""
    return _First(field)


def last(field: Field = None) -> Agg:
    """``field`` of the window's last value (in arrival order)."""
    return _Last(field)


def top_k(field: Field = None, k: int = 3) -> Agg:
    """The ``k`` most frequent values of ``field`` as ``[[value, count], ...]``, most
    frequent first (ties in the order first seen)."""
    return _TopK(field, k)


def quantile(field: Field = None, q: float = 0.5, *, exact: int = 100_000, rel_error: float = 0.01) -> Agg:
    """The ``q`` quantile of ``field``.

    Exact (linear interpolation, as pandas' ``quantile``) while a window has
    given it at most ``exact`` values; above that a :class:`QuantileSketch`
    keeps memory bounded and the result is within ``rel_error`` of the exact
    order statistic of rank ``floor(q * (n - 1))``. Count windows hold their
    values anyway, and stay exact whatever their size.
    """
    return _Quantile(field, q, exact, rel_error)


def apply(fn: Callable[[list[Any]], Any], field: Field = None) -> Agg:
    """Any function of the window's values: ``fn(list of field values)``.

    A plain function in a window's ``agg=`` dict means the same (over the
    values themselves). It sees every value, so the window keeps them all.
    """
    return _Apply(fn, field)


def as_agg(name: str, spec: Any, where: str) -> Agg:
    """An ``agg=`` entry as an :class:`Agg` (a plain function becomes ``apply``)."""
    if isinstance(spec, Agg):
        return spec
    if callable(spec):
        return _Apply(spec, None)
    raise LivestackError(
        f"{where}: aggregate {name!r} must be an ls.agg aggregate (ls.agg.count(), ls.agg.mean('ms'), ...) "
        f"or a function of the window's values, not {spec!r}"
    )
