"""The flow graph's static snapshot: an SVG drawn like the live view.

Specs are boxes coloured by status (a failed one red, its error in the
tooltip), streams are arrows labelled with their counts and rates, and a
flow's exposed inputs and outputs are small rounded port boxes. The layout
is :mod:`._layout`'s; every piece of user text goes through :func:`._svg.text`
or an escaped attribute.

A stepped run adds what its live stage shows: the last value that hopped
along each edge as a dot labelled with its text, the node that took the last
value outlined, a journey's edges lit, and (:func:`hops_html`) the hops so
far as a numbered list under the drawing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._format import esc
from ._layout import Box, Edge, Layout, Placed, layout
from ._svg import STATUS_COLOURS, el, fmt_rate, svg_root, text, text_width, truncate

__all__ = ["MAX_WIDTH", "edge_label", "graph_list", "graph_svg", "hops_html"]

#: Widest a graph is shown, in pixels; a larger drawing is scaled down to it.
MAX_WIDTH = 880
NAME = 32  # characters of a name shown in a box; the tooltip has all of it
EDGE = "#777"
LABEL = "#444"
NODE_H, PORT_H = 46.0, 24.0
#: The stage's colours (``.lsnb-dot``, ``.lsnb-at-work`` and ``.lsnb-journey`` in ``style/index.css``).
DOT, AT_WORK, JOURNEY = "#d55e00", "#e69f00", "#cc79a7"
DOT_TEXT = 24  # characters of a value on a dot in the drawing; the list has up to 60
HOPS_LISTED = 30  # the newest hops listed under a snapshot


def edge_label(tag: str, st: dict[str, Any] | None) -> str:
    """What an arrow says: its tags unless ``default``, its count, its rate while live."""
    tag = tag.removesuffix("→default")  # into the default input: the output's tag says it all
    parts = [] if tag == "default" else [tag]
    if st is not None:
        parts.append(f"{st['count']} · {fmt_rate(st['rate'])}" if st["rate"] else str(st["count"]))
    return ": ".join(parts)


def _frame(at: Placed) -> dict[str, object]:
    """A rectangle's attributes for a placed box."""
    return {"x": f"{at.x:.1f}", "y": f"{at.y:.1f}", "width": f"{at.width:.1f}", "height": f"{at.height:.1f}"}


def _sub(spec: dict[str, Any], status: str) -> str:
    """A node's second line: its spec (when the label differs) and its status."""
    return " · ".join(p for p in (spec["spec"] if spec["spec"] != spec["id"] else "", status) if p)


def _node(spec: dict[str, Any], st: dict[str, Any], at: Placed, at_work: bool = False) -> str:
    nid, status = spec["id"], st["status"]
    fill, stroke = STATUS_COLOURS.get(status, STATUS_COLOURS["idle"])
    if at_work:
        stroke = AT_WORK
    ink = "#fff" if status == "failed" else "#222"
    sub = _sub(spec, status)
    tip = f"{nid}: {status}" + (f"\n{st['error']}" if st.get("error") else "")
    cx, cy = at.x + at.width / 2, at.y + at.height / 2
    return el(
        "g",
        {"data-node": nid, "data-status": status, "data-at-work": "true" if at_work else None},
        el("title", {}, esc(tip)),
        el(
            "rect",
            {
                **_frame(at),
                "rx": 6,
                "fill": fill,
                "stroke": stroke,
                "stroke-width": 3.5 if at_work else 1.2,
                "stroke-dasharray": "4 2" if status == "cancelled" else None,
            },
        ),
        text(
            cx, cy - 4, truncate(nid, NAME), text_anchor="middle", font_size=13, font_weight="bold", fill=ink
        ),
        text(
            cx,
            cy + 13,
            truncate(sub, NAME + 12),
            text_anchor="middle",
            font_size=11,
            fill="#fff" if status == "failed" else LABEL,
        ),
    )


def _port(port: dict[str, Any], st: dict[str, Any] | None, at: Placed) -> str:
    count = f": {st['count']} values" if st else ""
    return el(
        "g",
        {"data-port": port["name"], "data-direction": port["direction"]},
        el("title", {}, esc(f"{port['direction']} port {port['name']}{count}")),
        el("rect", {**_frame(at), "rx": 12, "fill": "#fff", "stroke": "#888", "stroke-dasharray": "3 2"}),
        text(
            at.x + at.width / 2,
            at.y + at.height / 2 + 4,
            truncate(port["name"], NAME),
            text_anchor="middle",
            font_size=11,
            fill=LABEL,
        ),
    )


def _arrows(lay: Layout, labels: dict[str, str], lit: set[str] | None = None) -> list[str]:
    lines, heads, texts = [], [], []
    for route in lay.routes:
        on = lit is not None and route.edge.id in lit
        colour, width = (JOURNEY, 4.0) if on else (EDGE, 1.4)
        lines.append(
            el(
                "path",
                {
                    "d": route.d,
                    "fill": "none",
                    "stroke": colour,
                    "stroke-width": width,
                    "data-edge": route.edge.id,
                    "data-journey": "true" if on else None,
                },
            )
        )
        (x, y), (dx, dy) = route.tip, route.direction
        bx, by = x - 8 * dx, y - 8 * dy
        heads.append(
            el(
                "path",
                {
                    "d": f"M {x:.1f} {y:.1f} L {bx - 4 * dy:.1f} {by + 4 * dx:.1f} "
                    f"L {bx + 4 * dy:.1f} {by - 4 * dx:.1f} Z",
                    "fill": colour,
                },
            )
        )
        label = labels.get(route.edge.id, "")
        if label:
            (lx, ly), anchor = route.label_at, route.label_anchor
            # beside a downward line, under a loop's lane, else above the line
            ox, oy = (6, 4) if anchor == "start" else (0, 13) if route.back else (0, -5)
            texts.append(
                text(
                    lx + ox,
                    ly + oy,
                    label,
                    text_anchor=anchor,
                    font_size=11,
                    fill=LABEL,
                    stroke="#fff",
                    stroke_width=3,
                    paint_order="stroke",
                )
            )
    return lines + heads + texts


def _dots(lay: Layout, hops: list[dict[str, Any]], stops: dict[str, str]) -> tuple[list[str], float]:
    """The last value that hopped along each edge, a dot near its arrow's tip; on a
    journey's edges the value of the stop that travelled it. Also returns the
    leftmost x its labels reach: a label left of a narrow column runs past the
    layout's edge, and the drawing widens to keep it whole."""
    last: dict[str, str] = {h["edge"]: h["text"] for h in hops if not h.get("scope")}
    last.update(stops)
    parts = []
    left = 0.0
    for route in lay.routes:
        label = last.get(route.edge.id)
        if label is None:
            continue
        (x, y), (dx, dy) = route.tip, route.direction
        cx, cy = x - 16 * dx, y - 16 * dy
        across = abs(dx) >= abs(dy)
        shown = truncate(label, DOT_TEXT)
        left = min(left, (cx + 4 if across else cx - 9) - text_width(shown, 10))
        parts.append(
            el(
                "g",
                {"data-dot": route.edge.id},
                el("circle", {"cx": f"{cx:.1f}", "cy": f"{cy:.1f}", "r": 5, "fill": DOT, "stroke": "#fff"}),
                # under a line running right, left of one running down: the count is
                # above the first and right of the second
                text(
                    cx + 4 if across else cx - 9,
                    cy + 15 if across else cy + 4,
                    shown,
                    text_anchor="end",
                    font_size=10,
                    fill=DOT,
                    stroke="#fff",
                    stroke_width=3,
                    paint_order="stroke",
                ),
            )
        )
    return parts, left


def graph_svg(shape: dict[str, Any], state: Mapping[str, Any]) -> str:
    """An SVG of ``shape`` (nodes, edges, ports) coloured by ``state`` (as ``FlowGraph.state()``)."""
    node_st: dict[str, Any] = state.get("nodes", {})
    edge_st: dict[str, Any] = state.get("edges", {})
    if not shape["nodes"]:
        return svg_root(240, 40, text(12, 24, "no specs yet", font_size=12, fill=LABEL), max_width=MAX_WIDTH)
    boxes, edges, labels = [], [], {}
    for n in shape["nodes"]:
        st = node_st.get(n["id"], {"status": "idle"})
        sub = _sub(n, st["status"])
        wide = max(text_width(truncate(n["id"], NAME), 13), text_width(truncate(sub, NAME + 12), 11))
        boxes.append(Box(n["id"], max(110.0, wide + 24), NODE_H))
    for p in shape["ports"]:
        boxes.append(Box(p["id"], max(60.0, text_width(truncate(p["name"], NAME), 11) + 20), PORT_H))
    # a stepped run's edges carry a value on a dot as well as their count: room for both
    ride = text_width("x" * DOT_TEXT, 10) + 40 if shape.get("stepping") else 0.0
    for e in shape["edges"]:
        labels[e["id"]] = edge_label(e["label"], edge_st.get(e["id"]))
        edges.append(Edge(e["id"], e["source"], e["target"], max(ride, text_width(labels[e["id"]], 11))))
    for p in shape["ports"]:
        labels[p["id"]] = edge_label("default", edge_st.get(p["id"]))
        ends = (p["id"], p["node"]) if p["direction"] == "in" else (p["node"], p["id"])
        edges.append(Edge(p["id"], *ends, max(ride, text_width(labels[p["id"]], 11))))
    lay = layout(boxes, edges, max_width=MAX_WIDTH)
    journey = state.get("journey") or {}
    stops = {e: s["text"] for s in journey.get("stops", []) for e in s["edges"]}
    parts = _arrows(lay, labels, set(stops) if journey else None)
    at_work = state.get("at_work")
    for n in shape["nodes"]:
        parts.append(
            _node(n, node_st.get(n["id"], {"status": "idle"}), lay.boxes[n["id"]], n["id"] == at_work)
        )
    for p in shape["ports"]:
        parts.append(_port(p, edge_st.get(p["id"]), lay.boxes[p["id"]]))
    dots, left = _dots(lay, state.get("hops", []), stops)
    parts += dots
    if left < 0:
        shift = 4 - left
        parts = [el("g", {"transform": f"translate({shift:.1f},0)"}, *parts)]
        return svg_root(lay.width + shift, lay.height, *parts, max_width=MAX_WIDTH)
    return svg_root(lay.width, lay.height, *parts, max_width=MAX_WIDTH)


def _end(name: str | None) -> str:
    return "outside" if name is None else name


def _hop_line(h: dict[str, Any]) -> str:
    where = f"in {h['scope']}: " if h.get("scope") else ""
    failed = " (failed)" if h.get("failed") else ""
    return f"{where}{_end(h['source'])} → {_end(h['target'])}: {h['text']}{failed}"


def hops_html(
    hops: list[dict[str, Any]], released: int, header: dict[str, Any], journey: dict[str, Any] | None
) -> str:
    """The hops of a stepped run so far (the newest ``HOPS_LISTED``, numbered in release
    order), what waits, and the journey shown, as escaped HTML for the snapshot."""
    waiting = header.get("n_waiting", 0)
    line = f"step mode · {released} hop{'s' if released != 1 else ''} so far · {waiting} waiting"
    if header.get("at_work"):
        line += f" · at work: {header['at_work']}"
    shown = hops[-HOPS_LISTED:]
    start = shown[0]["index"] if shown else 0
    items = "".join(f"<li>{esc(_hop_line(h))}</li>" for h in shown)
    earlier = released - len(shown)
    more = f"<div>({earlier} earlier hops not listed)</div>" if earlier > 0 else ""
    out = (
        f'<div class="lsnb-hops"><div>{esc(line)}</div>{more}'
        f'<ol start="{int(start)}" style="margin:2px 0">{items}</ol>'
    )
    if journey:
        if journey.get("error"):
            path = f"not found: {journey['error']}"
        else:
            path = " → ".join(f"{s['where']}: {s['text']}" for s in journey["stops"])
        out += f'<div style="color:{JOURNEY}">journey of {esc(journey["datapoint"])}: {esc(path)}</div>'
    return out + "</div>"


def graph_list(shape: dict[str, Any], state: Mapping[str, Any]) -> str:
    """The graph as an HTML list of nodes, edges and ports, for where SVG is not shown."""
    node_st: dict[str, Any] = state.get("nodes", {})
    edge_st: dict[str, Any] = state.get("edges", {})
    rows = []
    for n in shape["nodes"]:
        st = node_st.get(n["id"], {"status": "idle"})
        fill, _ = STATUS_COLOURS.get(st["status"], STATUS_COLOURS["idle"])
        ink = "#fff" if st["status"] == "failed" else "#222"
        err = f" — {st['error']}" if "error" in st else ""
        rows.append(
            f'<li><span style="background:{fill};color:{ink};padding:0 4px">{esc(n["id"])}</span>'
            f" ({esc(n['spec'])}): {esc(st['status'])}{esc(err)}</li>"
        )
    for e in shape["edges"]:
        label = edge_label(e["label"], edge_st.get(e["id"]))
        rows.append(f"<li>{esc(e['source'])} → {esc(e['target'])}{esc(': ' + label if label else '')}</li>")
    for p in shape["ports"]:
        label = edge_label("default", edge_st.get(p["id"]))
        arrow = f"{p['name']} → {p['node']}" if p["direction"] == "in" else f"{p['node']} → {p['name']}"
        rows.append(f"<li>port {esc(arrow)}{esc(': ' + label if label else '')}</li>")
    return f"<ul>{''.join(rows)}</ul>"
