"""The batch path: DataFrame-typed tags and ``DataStream.to_pandas``."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import BaseModel

import livestack_nb as ls
from livestack_nb.testing import virtual_clock


class Reading(BaseModel):
    sensor: str
    value: float


def _times(*seconds: float) -> list[pd.Timestamp]:
    return list(pd.to_datetime(list(seconds), unit="s", utc=True))


def test_to_pandas_indexes_each_row_by_the_time_of_its_datapoint():
    stream = ls.DataStream("s")
    with virtual_clock(start=10) as clock:
        stream.push([1, 2])
        clock.advance(2)
        stream.push([3])
        clock.advance(1)
        stream.push([4, 5, 6])
    df = stream.to_pandas()
    assert list(df["value"]) == [1, 2, 3, 4, 5, 6]
    assert list(df.index) == _times(10, 10, 12, 13, 13, 13)
    assert list(df.index) == _times(*(dp.timestamp for dp in stream.datapoints()))
    assert df.index.name == "timestamp"


def test_to_pandas_holds_only_the_bounded_history_even_mid_chunk():
    stream = ls.DataStream("s", history=4)
    with virtual_clock(start=1) as clock:
        stream.push([1, 2, 3])
        clock.advance(1)
        stream.push([4, 5])
    with pytest.warns(ls.TruncatedHistoryWarning, match="to_pandas"):
        df = stream.to_pandas()
    assert list(df["value"]) == [2, 3, 4, 5]
    assert list(stream.to_pandas(last=2)["value"]) == [4, 5]
    assert list(df.index) == _times(1, 1, 2, 2)


def test_to_pandas_of_models_dicts_and_mixed_models():
    class Other(BaseModel):
        sensor: str
        value: float
        unit: str = "C"

    models = ls.DataStream("m", value_type=Reading)
    models.push([Reading(sensor="a", value=1.0), Reading(sensor="b", value=2.5)])
    df = models.to_pandas()
    assert list(df.columns) == ["sensor", "value"]
    assert list(df["value"]) == [1.0, 2.5]

    mixed = ls.DataStream("x")
    mixed.push([Reading(sensor="a", value=1.0), Other(sensor="b", value=2.0)])
    df = mixed.to_pandas()
    assert list(df["sensor"]) == ["a", "b"]
    assert df["unit"].isna().tolist() == [True, False]

    dicts = ls.DataStream("d")
    dicts.push([{"a": 1, "b": 2}, {"a": 3, "b": 4}])
    assert dicts.to_pandas()["b"].tolist() == [2, 4]


@ls.job_spec
def scale(df: pd.DataFrame) -> pd.DataFrame:
    return df * 2


@ls.job_spec
def big_only(df: pd.DataFrame) -> pd.DataFrame | None:
    out = df[df["x"] > 2]
    return out if len(out) else None


def test_dataframes_flow_through_a_flow_whole(env):
    flow = ls.Liveflow("frames")
    flow.connect(scale, big_only)
    run = flow.start()
    frames = [pd.DataFrame({"x": [0, 1]}), pd.DataFrame({"x": [1, 2, 3]})]
    run.feed_many(frames)
    run.end()
    run.wait(timeout=10)
    (out,) = run.output().values()
    assert out["x"].tolist() == [4, 6]
    assert len(run.output()) == 1


def test_a_value_that_is_not_a_dataframe_is_refused_by_name(env):
    job = scale.start()
    with pytest.raises(ls.DataValidationError) as info:
        job.feed({"x": [1, 2]})
    assert "DataFrame" in str(info.value)
    assert (info.value.spec, info.value.tag) == ("scale", "default")
    job.end()
    job.wait(timeout=10)


@ls.job_spec
def rows(data: pd.DataFrame | pd.Series) -> int:
    return len(data)


def test_a_union_with_dataframe_takes_either_and_refuses_the_rest(env):
    assert rows.run([pd.DataFrame({"x": [1, 2]}), pd.Series([1, 2, 3])], timeout=10) == [2, 3]
    job = rows.start()
    with pytest.raises(ls.DataValidationError):
        job.feed(3)
    job.end()
    job.wait(timeout=10)
