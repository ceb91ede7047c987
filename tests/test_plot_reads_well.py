"""Plots that read well: time fields on a time axis, a colour-blind-safe palette that repeats late."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import livestack_nb.widgets as lw
from livestack_nb.stream import DataStream
from livestack_nb.widgets._svg import PALETTE, dash_of

SVG_NS = "{http://www.w3.org/2000/svg}"
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def _svg(html: str) -> ET.Element:
    return ET.fromstring(re.search(r"<svg.*?</svg>", html, re.S).group(0))


def _texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]


def test_an_epoch_seconds_field_is_a_time_axis_and_plain_numbers_are_not(comms):
    s = DataStream("events")
    s.push([{"ts": T0 + 60 * i, "n": float(i)} for i in range(30)])
    plot = lw.StreamPlot(s, x="ts", y=["n"])
    plot.comm.hello()
    assert plot.comm.custom()[-1]["time_x"] is True
    texts = _texts(_svg(plot.snapshot_html()))
    assert "ts (UTC)" in texts
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in texts), texts  # not one tick "1.77e+09"
    assert not any("e+09" in t for t in texts)
    counts = DataStream("counts")
    counts.push([{"i": float(i), "n": float(i)} for i in range(30)])
    numbers = lw.StreamPlot(counts, x="i", y=["n"])
    numbers.comm.hello()
    assert numbers.comm.custom()[-1]["time_x"] is False
    assert "i" in _texts(_svg(numbers.snapshot_html()))


def test_datetime_values_and_days_apart_read_as_dates(comms):
    s = DataStream("days")
    s.push([{"day": dt.datetime(2026, 1, 1) + dt.timedelta(days=i), "n": float(i)} for i in range(20)])
    plot = lw.StreamPlot(s, x="day", y=["n"])
    assert [p[0] for p in plot.points()][:2] == [T0, T0 + 86_400]  # naive datetimes taken as UTC
    texts = _texts(_svg(plot.snapshot_html()))
    assert any(re.fullmatch(r"2026-01-\d\d", t) for t in texts), texts


def test_the_palette_is_colour_blind_safe_and_longer_with_dashes_after(comms):
    assert PALETTE[:3] == ("#0072b2", "#e69f00", "#009e73")  # Okabe-Ito
    assert len(set(PALETTE)) == 8
    assert [dash_of(i) for i in (0, 7, 8, 15, 16)] == [None, None, "6 3", "6 3", "2 2"]
    s = DataStream("wide")
    s.push([{f"f{j}": float(i + j) for j in range(10)} for i in range(5)])
    root = _svg(lw.StreamPlot(s, kind="line").snapshot_html())
    lines = [e for e in root.iter(f"{SVG_NS}polyline") if e.get("data-series")]
    styles = [(e.get("stroke"), e.get("stroke-dasharray")) for e in lines]
    assert len(set(styles)) == 10  # ten series, ten looks
    assert styles[8] == (PALETTE[0], "6 3")
