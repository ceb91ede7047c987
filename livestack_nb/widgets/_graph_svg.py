"""The flow graph's static snapshot: an SVG drawn like the live view.

Specs are boxes coloured by status (a failed one red, its error in the
tooltip), streams are arrows labelled with their counts and rates, and a
flow's exposed inputs and outputs are small rounded port boxes. The layout
is :mod:`._layout`'s; every piece of user text goes through :func:`._svg.text`
or an escaped attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._format import esc
from ._layout import Box, Edge, Layout, Placed, layout
from ._svg import STATUS_COLOURS, el, fmt_rate, svg_root, text, text_width, truncate

__all__ = ["MAX_WIDTH", "edge_label", "graph_list", "graph_svg"]

#: Widest a graph is shown, in pixels; a larger drawing is scaled down to it.
MAX_WIDTH = 880
NAME = 32  # characters of a name shown in a box; the tooltip has all of it
EDGE = "#777"
LABEL = "#444"
NODE_H, PORT_H = 46.0, 24.0


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


def _node(spec: dict[str, Any], st: dict[str, Any], at: Placed) -> str:
    nid, status = spec["id"], st["status"]
    fill, stroke = STATUS_COLOURS.get(status, STATUS_COLOURS["idle"])
    ink = "#fff" if status == "failed" else "#222"
    sub = _sub(spec, status)
    tip = f"{nid}: {status}" + (f"\n{st['error']}" if st.get("error") else "")
    cx, cy = at.x + at.width / 2, at.y + at.height / 2
    return el(
        "g",
        {"data-node": nid, "data-status": status},
        el("title", {}, esc(tip)),
        el(
            "rect",
            {
                **_frame(at),
                "rx": 6,
                "fill": fill,
                "stroke": stroke,
                "stroke-width": 1.2,
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


def _arrows(lay: Layout, labels: dict[str, str]) -> list[str]:
    lines, heads, texts = [], [], []
    for route in lay.routes:
        lines.append(el("path", {"d": route.d, "fill": "none", "stroke": EDGE, "stroke-width": 1.4}))
        (x, y), (dx, dy) = route.tip, route.direction
        bx, by = x - 8 * dx, y - 8 * dy
        heads.append(
            el(
                "path",
                {
                    "d": f"M {x:.1f} {y:.1f} L {bx - 4 * dy:.1f} {by + 4 * dx:.1f} "
                    f"L {bx + 4 * dy:.1f} {by - 4 * dx:.1f} Z",
                    "fill": EDGE,
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
    for e in shape["edges"]:
        labels[e["id"]] = edge_label(e["label"], edge_st.get(e["id"]))
        edges.append(Edge(e["id"], e["source"], e["target"], text_width(labels[e["id"]], 11)))
    for p in shape["ports"]:
        labels[p["id"]] = edge_label("default", edge_st.get(p["id"]))
        ends = (p["id"], p["node"]) if p["direction"] == "in" else (p["node"], p["id"])
        edges.append(Edge(p["id"], *ends, text_width(labels[p["id"]], 11)))
    lay = layout(boxes, edges, max_width=MAX_WIDTH)
    parts = _arrows(lay, labels)
    for n in shape["nodes"]:
        parts.append(_node(n, node_st.get(n["id"], {"status": "idle"}), lay.boxes[n["id"]]))
    for p in shape["ports"]:
        parts.append(_port(p, edge_st.get(p["id"]), lay.boxes[p["id"]]))
    return svg_root(lay.width, lay.height, *parts, max_width=MAX_WIDTH)


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
