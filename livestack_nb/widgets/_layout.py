"""A layered layout of a flow for its static snapshot.

The live view lays a flow out with dagre in the browser; a saved notebook
runs no code, so its snapshot is laid out here, in the same spirit: the
back-edges of cycles are set aside (so ranking ends), boxes are ranked by the
longest path from the sources, edges that cross ranks pass through a virtual
point in each rank they cross, and each rank is ordered by the mean position
of its neighbours to cut crossings. Ranks run left to right, or top to bottom
when that keeps a long chain narrower. Back-edges go round the drawing in a
lane of their own.

Coordinates are computed along the ranks (``r``) and across them (``o``),
then mapped to ``x, y`` for the chosen direction.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Box", "Edge", "Layout", "Placed", "Route", "layout"]

MARGIN = 12.0
SEP = 18.0  # between boxes of one rank
DUMMY = 10.0  # room a passing edge takes in a rank
LANE = 16.0  # between two back-edge lanes


@dataclass(frozen=True)
class Box:
    """Something to place: a node or a port, ``width`` x ``height`` pixels."""

    id: str
    width: float
    height: float


@dataclass(frozen=True)
class Edge:
    """An arrow from ``source`` to ``target`` with a label ``label_width`` wide."""

    id: str
    source: str
    target: str
    label_width: float = 0.0


@dataclass(frozen=True)
class Placed:
    """A box's top-left corner and size."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Route:
    """How an edge is drawn: an SVG path, where its arrow ends (pointing along
    ``direction``), and where its label goes: ``label_at`` is the label's start,
    middle or end (``label_anchor``, as SVG's ``text-anchor``) on the line."""

    edge: Edge
    d: str
    tip: tuple[float, float]
    direction: tuple[float, float]
    label_at: tuple[float, float]
    label_anchor: str
    back: bool


@dataclass
class Layout:
    width: float
    height: float
    vertical: bool
    boxes: dict[str, Placed] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)


def layout(boxes: Sequence[Box], edges: Sequence[Edge], *, max_width: float) -> Layout:
    """Left to right (as the live view) unless that would be shrunk below 3/4 to fit
    in ``max_width`` and top to bottom is narrower: a long chain then reads down the page."""
    across = _place(boxes, edges, vertical=False)
    if across.width * 0.75 <= max_width:
        return across
    down = _place(boxes, edges, vertical=True)
    return down if down.width < across.width else across


def _back_edges(ids: list[str], edges: Sequence[Edge]) -> set[int]:
    """Indexes of the edges that close a cycle (found by an iterative depth-first search)."""
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    has_in = set()
    for i, e in enumerate(edges):
        out[e.source].append((i, e.target))
        has_in.add(e.target)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    back: set[int] = set()
    for root in [v for v in ids if v not in has_in] + ids:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(out[root]))]
        while stack:
            v, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[v] = 2
                stack.pop()
                continue
            i, w = nxt
            if state.get(w) == 1:
                back.add(i)
            elif w not in state:
                state[w] = 1
                stack.append((w, iter(out[w])))
    return back


def _ranks(ids: list[str], forward: list[Edge]) -> dict[str, int]:
    """Longest path from the sources, over the acyclic ``forward`` edges."""
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for e in forward:
        preds[e.target].append(e.source)
        succs[e.source].append(e.target)
    waiting = {v: len(preds[v]) for v in ids}
    ready = [v for v in ids if not waiting[v]]
    rank = dict.fromkeys(ids, 0)
    while ready:
        v = ready.pop()
        for w in succs[v]:
            rank[w] = max(rank[w], rank[v] + 1)
            waiting[w] -= 1
            if not waiting[w]:
                ready.append(w)
    return rank


def _order(layers: list[list[str]], links: list[tuple[str, str]]) -> None:
    """Reorder each layer in place by the mean position of its neighbours, a few sweeps."""
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for a, b in links:
        down[a].append(b)
        up[b].append(a)
    pos: dict[str, float] = {}

    def index(layer: list[str]) -> None:
        for i, v in enumerate(layer):
            pos[v] = i - (len(layer) - 1) / 2

    for layer in layers:
        index(layer)
    for sweep in range(4):
        rng = range(1, len(layers)) if sweep % 2 == 0 else range(len(layers) - 2, -1, -1)
        near = up if sweep % 2 == 0 else down
        for r in rng:
            layer = layers[r]
            keys = {v: sum(pos[u] for u in near[v]) / len(near[v]) if near[v] else pos[v] for v in layer}
            layer.sort(key=keys.__getitem__)
            index(layer)


def _place(boxes: Sequence[Box], edges: Sequence[Edge], *, vertical: bool) -> Layout:
    ids = [b.id for b in boxes]
    size = {b.id: (b.height, b.width) if vertical else (b.width, b.height) for b in boxes}  # (r, o)
    edges = [e for e in edges if e.source in size and e.target in size]
    back = _back_edges(ids, edges)
    forward = [e for i, e in enumerate(edges) if i not in back]
    rank = _ranks(ids, forward)
    n_ranks = max(rank.values(), default=0) + 1

    # Virtual points for edges that cross ranks; chains[i] lists what edge i passes through.
    layers: list[list[str]] = [[] for _ in range(n_ranks)]
    for v in ids:
        layers[rank[v]].append(v)
    links: list[tuple[str, str]] = []
    chains: dict[int, list[str]] = {}
    for i, e in enumerate(edges):
        if i in back:
            continue
        chain = [e.source]
        for r in range(rank[e.source] + 1, rank[e.target]):
            dummy = f"\0{i}:{r}"
            layers[r].append(dummy)
            size[dummy] = (0.0, DUMMY)
            rank[dummy] = r
            chain.append(dummy)
        chain.append(e.target)
        links += itertools.pairwise(chain)
        chains[i] = chain
    _order(layers, links)

    # Along the ranks: each rank is as deep as its deepest box; gaps make room for labels.
    depth = [max((size[v][0] for v in layer), default=0.0) for layer in layers]
    gap = [48.0 if vertical else 56.0] * n_ranks
    if not vertical:
        for e in forward:
            r = rank[e.source]
            gap[r] = max(gap[r], min(220.0, e.label_width + 24))
    lead = MARGIN + (28.0 if back else 0.0)  # room for back-edges to come in from before rank 0
    start = []
    r_at = lead
    for r in range(n_ranks):
        start.append(r_at)
        r_at += depth[r] + gap[r]
    r_total = r_at - gap[-1] + lead

    # Across: each rank centred on the widest one.
    extent = [sum(size[v][1] for v in layer) + SEP * max(0, len(layer) - 1) for layer in layers]
    widest = max(extent, default=0.0)
    centre: dict[str, tuple[float, float]] = {}  # (r, o) of each box's centre
    for r, layer in enumerate(layers):
        o = MARGIN + (widest - extent[r]) / 2
        for v in layer:
            centre[v] = (start[r] + depth[r] / 2, o + size[v][1] / 2)
            o += size[v][1] + SEP
    o_total = MARGIN * 2 + widest + (LANE * len(back) + 20 if back else 0.0)  # lanes, the last label

    def xy(r: float, o: float) -> tuple[float, float]:
        return (o, r) if vertical else (r, o)

    def pt(r: float, o: float) -> str:
        x, y = xy(r, o)
        return f"{x:.1f} {y:.1f}"

    out = Layout(*((o_total, r_total) if vertical else (r_total, o_total)), vertical=vertical)
    for v in ids:
        (rc, oc), (sr, so) = centre[v], size[v]
        x, y = xy(rc - sr / 2, oc - so / 2)
        w, h = (so, sr) if vertical else (sr, so)
        out.boxes[v] = Placed(x, y, w, h)

    def near_end(v: str) -> float:
        return centre[v][0] + size[v][0] / 2

    def near_start(v: str) -> float:
        return centre[v][0] - size[v][0] / 2

    # Several edges between the same two boxes are spread apart a little.
    twins: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, e in enumerate(edges):
        twins[(e.source, e.target)].append(i)
    ahead = xy(1.0, 0.0)
    lane = 0
    for i, e in enumerate(edges):
        group = twins[(e.source, e.target)]
        spread = (group.index(i) - (len(group) - 1) / 2) * 8
        if i in back:
            # Out of the source's far side, round the drawing, into the target's near side.
            o_lane = MARGIN + widest + 8 + LANE * lane
            lane += 1
            rs, rt = rank[e.source], rank[e.target]
            r1 = start[rs] + depth[rs] + (gap[rs] / 3 if rs < n_ranks - 1 else 14)
            r2 = start[rt] - (gap[rt - 1] / 3 if rt else 14)
            # a quarter below the centres, clear of the forward arrows
            o1 = centre[e.source][1] + size[e.source][1] / 4 + spread
            o2 = centre[e.target][1] + size[e.target][1] / 4 + spread
            d = (
                f"M {pt(near_end(e.source), o1)} L {pt(r1, o1)} L {pt(r1, o_lane)} "
                f"L {pt(r2, o_lane)} L {pt(r2, o2)} L {pt(near_start(e.target), o2)}"
            )
            tip = xy(near_start(e.target), o2)
            label = xy((r1 + r2) / 2, o_lane)
            out.routes.append(Route(e, d, tip, ahead, label, "start" if vertical else "middle", back=True))
            continue
        chain = chains[i]
        # Points: out of the source, across each rank passed, into the target.
        pts = [(near_end(e.source), centre[e.source][1] + spread)]
        for dummy in chain[1:-1]:
            r, o = rank[dummy], centre[dummy][1]
            pts += [(start[r], o), (start[r] + depth[r], o)]
        pts.append((near_start(e.target), centre[e.target][1] + spread))
        d = f"M {pt(*pts[0])}"
        for k in range(1, len(pts)):
            (ra, oa), (rb, ob) = pts[k - 1], pts[k]
            if k % 2:  # a gap between ranks: an S-curve
                rm = (ra + rb) / 2
                d += f" C {pt(rm, oa)} {pt(rm, ob)} {pt(rb, ob)}"
            else:  # across a rank: straight
                d += f" L {pt(rb, ob)}"
        (ra, oa), (rb, ob) = pts[0], pts[1]
        # Where a fan-out's arrows are apart: beside the curve three quarters down,
        # or ending just before the arrowhead (the gap is as wide as the label).
        if vertical:
            label = xy(0.015625 * ra + 0.5625 * (ra + rb) / 2 + 0.421875 * rb, 0.15625 * oa + 0.84375 * ob)
        else:
            label = xy(rb - 10, ob)
        anchor = "start" if vertical else "end"
        out.routes.append(Route(e, d, xy(*pts[-1]), ahead, label, anchor, back=False))
    if vertical:  # labels are written to the right of their arrows: make room for them
        for route in out.routes:
            out.width = max(out.width, route.label_at[0] + 6 + route.edge.label_width + MARGIN)
    return out
