"""The batch path: DataFrames through the 3-spec flow, and ``to_pandas()``.

Run with ``make bench`` (or ``.venv/bin/python bench/batch.py [DATAPOINTS]
[REPEAT] [--profile]``).

1. Rows/s through the same map, map, filter flow as ``throughput.py``, each
   datapoint a ``pandas.DataFrame`` of 10,000 rows and each spec vectorised
   (``x * 2``, ``x + 1``, keep rows with ``x % 3 != 0``), against the same
   three vectorised steps applied to the same frames in a plain loop.
2. ``stream.to_pandas()`` of 1,000,000 buffered rows (a ``LiveEnv`` with
   ``history=1_000_000``) for pydantic-model rows, dict rows and scalars,
   against building the same frame directly from the same values.

Contenders alternate and the best of REPEAT is kept for each, so a machine
that gets busier during the run moves both sides alike. ``--profile`` prints
where the flow and ``to_pandas`` spend their time (cProfile).
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

import livestack_nb as ls

ROWS = 10_000  # rows per datapoint
BUFFERED = 1_000_000  # rows held by the stream for to_pandas()


# -- 1. DataFrames through map, map, filter ---------------------------------


def double(df: pd.DataFrame) -> pd.DataFrame:
    return df * 2


def inc(df: pd.DataFrame) -> pd.DataFrame:
    return df + 1


def keep(df: pd.DataFrame) -> pd.DataFrame | None:
    out = df[df["x"].to_numpy() % 3 != 0]
    return out if len(out) else None


def frames(n: int) -> list[pd.DataFrame]:
    return [pd.DataFrame({"x": np.arange(i * ROWS, (i + 1) * ROWS, dtype=np.int64)}) for i in range(n)]


def plain_loop(data: list[pd.DataFrame]) -> int:
    out = []
    for df in data:
        r = keep(inc(double(df)))
        if r is not None:
            out.append(r)
    return sum(len(f) for f in out)


def make_flow(env: ls.LiveEnv) -> ls.Liveflow:
    with env:

        @ls.job_spec(name="double")
        def s_double(df: pd.DataFrame) -> pd.DataFrame:
            return double(df)

        @ls.job_spec(name="inc")
        def s_inc(df: pd.DataFrame) -> pd.DataFrame:
            return inc(df)

        @ls.job_spec(name="keep")
        def s_keep(df: pd.DataFrame) -> pd.DataFrame | None:
            return keep(df)

        flow = ls.Liveflow("batch")
        flow.connect(s_double, s_inc)
        flow.connect(s_inc, s_keep)
    return flow


def liveflow(data: list[pd.DataFrame]) -> int:
    env = ls.LiveEnv()
    try:
        run = env.start(make_flow(env))
        run.feed_many(data)
        run.end()
        run.wait(600)
        return sum(len(f) for f in run.output().values())
    finally:
        env.close()


# -- 2. to_pandas() of 1 M buffered rows ------------------------------------


class Reading(BaseModel):
    sensor: str
    n: int
    value: float


def model_rows(n: int) -> list[Any]:
    names = [f"s{i}" for i in range(16)]
    return [Reading(sensor=names[i % 16], n=i, value=i * 0.5) for i in range(n)]


def dict_rows(n: int) -> list[Any]:
    names = [f"s{i}" for i in range(16)]
    return [{"sensor": names[i % 16], "n": i, "value": i * 0.5} for i in range(n)]


def scalar_rows(n: int) -> list[Any]:
    return [i * 0.5 for i in range(n)]


def direct_models(values: list[Any]) -> pd.DataFrame:
    fields = list(Reading.model_fields)
    return pd.DataFrame({f: [getattr(v, f) for v in values] for f in fields})


def direct_dicts(values: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(values)


def direct_scalars(values: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({"value": values})


def buffered_stream(env: ls.LiveEnv, tp: Any, values: list[Any]) -> ls.DataStream:
    """The output stream of a pass-through job fed ``values``: it holds them
    the way any job's output does (in the chunks the flow made)."""

    def same(x: Any) -> Any:
        return x

    with env:
        spec = ls.job_spec(name=f"hold-{tp.__name__}", input=tp, output=tp)(same)
    job = env.start(spec)
    job.feed_many(values)
    job.end()
    job.wait(600)
    return job.output()


# -- measuring ---------------------------------------------------------------


def best_of(fns: dict[str, Callable[[], Any]], repeat: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Run each fn ``repeat`` times, interleaved; best time and last result of each."""
    best = dict.fromkeys(fns, float("inf"))
    results: dict[str, Any] = {}
    order = list(fns.items())
    for _ in range(repeat):
        order.reverse()  # neither side always goes first
        for name, fn in order:
            gc.collect()
            t0 = time.perf_counter()
            results[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best, results


def profile(fn: Callable[[], Any], title: str, lines: int = 14) -> None:
    print(f"\n--- profile: {title} ---")
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(lines)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    want_profile = "--profile" in sys.argv
    n = int(args[0]) if args else 2_000
    repeat = int(args[1]) if len(args) > 1 else 5

    data = frames(n)
    rows = n * ROWS
    liveflow(data[:10])  # warm up (imports, first TypeAdapter, thread pool)
    contenders = {"plain loop": lambda: plain_loop(data), "Liveflow": lambda: liveflow(data)}
    times, results = best_of(contenders, repeat)
    if results["plain loop"] != results["Liveflow"]:
        raise SystemExit(f"rows out differ: {results}")
    print(f"{n:,} DataFrames of {ROWS:,} rows ({rows:,} rows) through map x2 + filter, best of {repeat}\n")
    print(f"{'contender':<16}{'rows/s':>16}{'datapoints/s':>14}{'vs loop':>10}")
    for name, t in times.items():
        print(f"{name:<16}{rows / t:>16,.0f}{n / t:>14,.0f}{times['plain loop'] / t:>9.2f}x")
    per_dp = (times["Liveflow"] - times["plain loop"]) / n * 1e6
    print(f"\nflow cost over the loop: {per_dp:.1f} us per datapoint (3 specs, 4 streams)")

    print(f"\nto_pandas() of {BUFFERED:,} buffered rows against building the frame directly")
    print(f"(best of {repeat})\n")
    print(f"{'rows':<10}{'to_pandas (s)':>15}{'direct (s)':>12}{'ratio':>8}")
    env = ls.LiveEnv(history=BUFFERED)
    try:
        for label, tp, make, direct in (
            ("models", Reading, model_rows, direct_models),
            ("dicts", dict, dict_rows, direct_dicts),
            ("scalars", float, scalar_rows, direct_scalars),
        ):
            values = make(BUFFERED)
            stream = buffered_stream(env, tp, values)
            assert len(stream.values()) == BUFFERED
            t, frames_ = best_of(
                {"to_pandas": stream.to_pandas, "direct": lambda values=values, d=direct: d(values)}, repeat
            )
            got, want = frames_["to_pandas"], frames_["direct"]
            assert got.shape == want.shape and list(got.columns) == list(want.columns), (got, want)
            ratio = t["to_pandas"] / t["direct"]
            print(f"{label:<10}{t['to_pandas']:>15.3f}{t['direct']:>12.3f}{ratio:>7.2f}x")
            if want_profile:
                profile(stream.to_pandas, f"to_pandas of {label}")
            del values, stream, frames_, got, want
    finally:
        env.close()

    if want_profile:
        profile(lambda: liveflow(data), "Liveflow, DataFrames")


if __name__ == "__main__":
    main()
