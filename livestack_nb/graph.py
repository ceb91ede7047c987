"""The shape of a flow as data: nodes, edges and exposed ports.

A job sees the graph it runs in (``job.graph``) and widgets draw it, so the
description is plain frozen data that does not depend on how a flow is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Graph", "GraphEdge", "GraphExposure", "GraphNode"]


@dataclass(frozen=True)
class GraphNode:
    """A spec placed in a flow: its ``id`` is its label (the spec name by default)."""

    id: str
    spec: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    job_id: str | None = None


@dataclass(frozen=True)
class GraphEdge:
    """A connection from ``source``'s output tag to ``target``'s input tag."""

    source: str
    source_tag: str
    target: str
    target_tag: str
    stream_id: str | None = None
    transform: bool = False


@dataclass(frozen=True)
class GraphExposure:
    """A port of the flow: ``name`` on the outside, ``node``'s ``tag`` inside."""

    name: str
    node: str
    tag: str
    direction: str  # "in" or "out"
    stream_id: str | None = None


@dataclass(frozen=True)
class Graph:
    """A flow's nodes, edges and exposures; empty for a job outside any flow."""

    name: str = ""
    nodes: tuple[GraphNode, ...] = ()
    edges: tuple[GraphEdge, ...] = ()
    exposures: tuple[GraphExposure, ...] = ()
    job_id: str | None = None
    _index: dict[str, GraphNode] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, node_id: str) -> GraphNode:
        """The node labelled ``node_id``."""
        if not self._index:
            self._index.update((n.id, n) for n in self.nodes)
        return self._index[node_id]
