"""The job timeline's static snapshot: an SVG drawn like the live view.

Per spec, a heading, a row showing how many of its jobs waited for a slot
over time, then one lane per slot with each job a bar from when a slot
took it to its end, coloured by status (a failed one red, its error in the
tooltip). The front end (``src/timeline.ts``) draws the same picture with
the same sizes and colours. Every piece of user text goes through
:func:`._svg.text` or an escaped attribute.
"""

from __future__ import annotations

from typing import Any

from ._format import esc
from ._svg import STATUS_COLOURS, el, nice_ticks, svg_root, text, truncate

__all__ = ["bar_tip", "short_id", "timeline_list", "timeline_svg", "waiting_steps"]

WIDTH = 760.0  # the drawing's width in px
LABEL_W = 130.0  # the column of group and lane names
RIGHT = 16.0
HEAD_H, WAIT_H, LANE_H, GAP, AXIS_H = 20.0, 18.0, 22.0, 8.0, 26.0
INK = "#222"
MUTED = "#666"


def bar_tip(row: dict[str, Any], now: float) -> str:
    """A job's tooltip: id, spec, status, how long it waited for a slot and ran, its error."""
    lines = [f"job {row['id']} ({row['group']}): {row['status']}"]
    start, end = row["start"], row["end"]
    if start is not None:
        lines.append(f"waited {start - row['requested']:.2f} s for a slot, ran {(end or now) - start:.2f} s")
    elif end is not None:
        lines.append(f"ended after {end - row['requested']:.2f} s without a slot")
    else:
        lines.append(f"waiting for a slot for {now - row['requested']:.2f} s")
    if row.get("error"):
        lines.append(row["error"])
    return "\n".join(lines)


def short_id(row: dict[str, Any]) -> str:
    """What a bar says: its job id without the spec's name (the group's heading has it)."""
    job_id, prefix = str(row["id"]), f"{row['group']}-"
    return job_id[len(prefix) :] if job_id.startswith(prefix) else job_id


def waiting_steps(rows: list[dict[str, Any]], now: float) -> list[tuple[float, int]]:
    """How many jobs waited for a slot, as ``(time, count from then on)``, oldest first."""
    events: list[tuple[float, int]] = []
    for r in rows:
        left = r["start"] if r["start"] is not None else r["end"] if r["end"] is not None else now
        if left > r["requested"]:
            events += [(r["requested"], 1), (left, -1)]
    events.sort()
    steps: list[tuple[float, int]] = []
    count = 0
    for t, d in events:
        count += d
        if steps and steps[-1][0] == t:
            steps[-1] = (t, count)
        else:
            steps.append((t, count))
    return steps


def _span(state: dict[str, Any]) -> tuple[float, float]:
    rows = state["jobs"]
    t0 = min(r["requested"] for r in rows)
    ends = [r["end"] for r in rows if r["end"] is not None]
    # While a job runs or waits the chart reaches to now; after, to the last end.
    t1 = state["now"] if len(ends) < len(rows) else max(ends)
    return t0, max(t1 - t0, 1e-3)


def timeline_svg(state: dict[str, Any]) -> str:
    """An SVG of ``state`` (as ``JobTimeline.state()``): lanes of bars per spec over time."""
    rows: list[dict[str, Any]] = state["jobs"]
    if not rows:
        return svg_root(240, 40, text(12, 24, "no jobs yet", font_size=12, fill=MUTED), max_width=WIDTH)
    t0, span = _span(state)
    now = state["now"]
    plot_w = WIDTH - LABEL_W - RIGHT

    def x(t: float) -> float:
        return LABEL_W + (t - t0) / span * plot_w

    parts: list[str] = []
    y = 4.0
    for g in state["groups"]:
        mine = [r for r in rows if r["group"] == g["name"]]
        conc = f" · concurrency {g['concurrency']}" if g["concurrency"] is not None else ""
        parts.append(
            text(4, y + 14, truncate(g["name"], 40) + conc, font_size=12, font_weight="bold", fill=INK)
        )
        y += HEAD_H
        steps = waiting_steps(mine, now)
        most = max((c for _, c in steps), default=0)
        parts.append(text(4, y + 13, f"waiting (max {most})", font_size=11, fill=MUTED))
        if most:
            base = y + WAIT_H - 2
            d = [f"M {x(steps[0][0]):.1f} {base:.1f}"]
            level = base
            for t, c in steps:
                d.append(f"L {x(t):.1f} {level:.1f}")
                level = base - (WAIT_H - 4) * c / most
                d.append(f"L {x(t):.1f} {level:.1f}")
            last = t0 + span
            d.append(f"L {x(last):.1f} {level:.1f} L {x(last):.1f} {base:.1f} Z")
            fill, _ = STATUS_COLOURS["requested"]
            parts.append(
                el(
                    "path",
                    {
                        "d": " ".join(d),
                        "fill": fill,
                        "stroke": "#b8860b",
                        "stroke-width": 1,
                        "data-waiting": g["name"],
                    },
                    el("title", {}, esc(f"{g['name']}: jobs waiting for a slot (at most {most} at once)")),
                )
            )
        y += WAIT_H
        for lane in range(g["lanes"]):
            top = y + lane * LANE_H
            parts.append(text(4, top + 15, f"slot {lane + 1}", font_size=11, fill=MUTED))
            parts.append(
                el(
                    "line",
                    {
                        "x1": LABEL_W,
                        "x2": WIDTH - RIGHT,
                        "y1": top + LANE_H,
                        "y2": top + LANE_H,
                        "stroke": "#eee",
                    },
                )
            )
        for r in mine:
            if r["lane"] is None:
                continue
            top = y + r["lane"] * LANE_H + 3
            a, b = x(r["start"]), x(r["end"] if r["end"] is not None else now)
            w = max(2.0, b - a)
            fill, stroke = STATUS_COLOURS.get(r["status"], STATUS_COLOURS["idle"])
            label = ""
            if w > 40:
                label = text(
                    a + 4,
                    top + 12,
                    truncate(short_id(r), max(1, int((w - 8) / 6.6))),
                    font_size=11,
                    fill="#fff" if r["status"] == "failed" else INK,
                )
            parts.append(
                el(
                    "g",
                    {"data-job": r["id"], "data-status": r["status"], "data-lane": r["lane"]},
                    el("title", {}, esc(bar_tip(r, now))),
                    el(
                        "rect",
                        {
                            "x": f"{a:.1f}",
                            "y": f"{top:.1f}",
                            "width": f"{w:.1f}",
                            "height": f"{LANE_H - 6:.1f}",
                            "rx": 3,
                            "fill": fill,
                            "stroke": stroke,
                            "stroke-width": 1.2,
                            "stroke-dasharray": "4 2" if r["status"] == "cancelled" else None,
                        },
                    ),
                    label,
                )
            )
        y += g["lanes"] * LANE_H + GAP
    ticks, step = nice_ticks(0.0, span, 6)
    parts.append(el("line", {"x1": LABEL_W, "x2": WIDTH - RIGHT, "y1": y, "y2": y, "stroke": "#999"}))
    decimals = 0 if step >= 1 else 1 if step >= 0.1 else 2
    for t in ticks:
        tx = x(t0 + t)
        parts.append(
            el("line", {"x1": f"{tx:.1f}", "x2": f"{tx:.1f}", "y1": y, "y2": y + 4, "stroke": "#999"})
        )
        parts.append(text(tx, y + 16, f"{t:.{decimals}f}s", font_size=10, fill=MUTED, text_anchor="middle"))
    hidden = state.get("hidden", 0)
    note = (
        f"time since the first request ({hidden} older jobs left out)"
        if hidden
        else "time since the first request"
    )
    parts.append(text(WIDTH - RIGHT, y + 30, note, font_size=10, fill=MUTED, text_anchor="end"))
    height = y + AXIS_H + 10
    return svg_root(WIDTH, height, *parts, max_width=WIDTH)


def timeline_list(state: dict[str, Any]) -> str:
    """The timeline as an HTML list per spec, for where SVG is not shown."""
    rows: list[dict[str, Any]] = state["jobs"]
    if not rows:
        return "<p>no jobs yet</p>"
    t0 = min(r["requested"] for r in rows)
    now = state["now"]
    out = []
    for g in state["groups"]:
        items = []
        for r in rows:
            if r["group"] != g["name"]:
                continue
            fill, _ = STATUS_COLOURS.get(r["status"], STATUS_COLOURS["idle"])
            ink = "#fff" if r["status"] == "failed" else "#222"
            where = f"slot {r['lane'] + 1}, " if r["lane"] is not None else ""
            when = f"requested at {r['requested'] - t0:.2f} s; "
            tip = bar_tip(r, now).split("\n", 1)[1].replace("\n", "; ")
            items.append(
                f'<li><span style="background:{fill};color:{ink};padding:0 4px">{esc(r["id"])}</span> '
                f"{esc(r['status'])}: {esc(where + when + tip)}</li>"
            )
        conc = f" (concurrency {g['concurrency']})" if g["concurrency"] is not None else ""
        out.append(f"<div><b>{esc(g['name'])}</b>{esc(conc)}<ul>{''.join(items)}</ul></div>")
    hidden = state.get("hidden", 0)
    if hidden:
        out.append(f"<div>{hidden} older jobs left out</div>")
    return "".join(out)
