"""Every comm message between the kernel and the browser, as types.

The browser side is ``labextension/src/messages.ts``: one TypedDict here per
type there, of the same name and fields (``tests/test_messages.py`` checks
that the two agree, field by field, optional fields included). Each widget
has its own union, told apart by ``type``; a ``reset`` carries the whole
state, anything else a change. The widgets build their messages as these
types, so mypy checks what the kernel sends against what the browser reads.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "BrowserMessage",
    "CancelFeed",
    "FeedProgress",
    "GraphEdgeState",
    "GraphHops",
    "GraphJourney",
    "GraphMessage",
    "GraphNodeState",
    "GraphReset",
    "GraphStage",
    "GraphState",
    "Hello",
    "Hop",
    "Journey",
    "KernelMessage",
    "KitchenCancel",
    "KitchenClose",
    "KitchenError",
    "KitchenFeed",
    "KitchenJob",
    "KitchenMessage",
    "KitchenOpen",
    "KitchenOpened",
    "KitchenRefresh",
    "KitchenRequest",
    "KitchenSnapshot",
    "KitchenStream",
    "KitchenTrouble",
    "KitchenWorker",
    "MediaCell",
    "PanelMessage",
    "PanelReset",
    "PanelState",
    "PlotMessage",
    "PlotPoints",
    "PlotReset",
    "ShowJourney",
    "StageHeader",
    "StagePause",
    "StagePlay",
    "StageRequest",
    "StageStep",
    "Stop",
    "TableJourney",
    "TableMessage",
    "TableReset",
    "TableRows",
    "TimelineGroup",
    "TimelineJob",
    "TimelineMessage",
    "TimelineReset",
    "TimelineState",
]

# -- shared parts -----------------------------------------------------------------------


class MediaCell(TypedDict):
    """A cell holding an image or a sound: its bytes as base64, with the type read from them."""

    media: Literal["image", "audio"]
    mime: str
    b64: str
    text: str


class FeedProgress(TypedDict):
    """One background feed (``job.feed_from``) as the kernel reports it."""

    id: int
    tag: str
    state: str
    count: int
    total: int | None
    rate: float
    eta: float | None
    error: str


class Hello(TypedDict):
    """Every model says hello once; the kernel answers with a ``reset``."""

    type: Literal["hello"]


# -- StreamTable ------------------------------------------------------------------------


class TableReset(TypedDict):
    type: Literal["reset"]
    columns: list[str]
    rows: list[list[str | MediaCell]]
    folded: int
    journeys: bool
    count: int
    rate: float
    ended: bool
    error: str


class _TableRows(TypedDict):
    type: Literal["rows"]
    rows: list[list[str | MediaCell]]
    folded: int
    journeys: bool
    count: int
    rate: float
    ended: bool
    error: str


class TableRows(_TableRows, total=False):
    """Rows appended since the last message; ``columns`` only when a new one appeared."""

    columns: list[str]


TableMessage = TableReset | TableRows


class TableJourney(TypedDict):
    """A row chosen in a table of a stepped run's stream: its journey (its # as text; None clears)."""

    type: Literal["journey"]
    seq: str | None


# -- StreamPlot -------------------------------------------------------------------------


class PlotReset(TypedDict):
    type: Literal["reset"]
    x: list[float]
    y: list[list[float | None]]
    count: int
    rate: float
    ended: bool
    error: str
    time_x: bool


class PlotPoints(TypedDict):
    """Points appended since the last message, one list of y per series."""

    type: Literal["points"]
    x: list[float]
    y: list[list[float | None]]
    count: int
    rate: float
    ended: bool
    error: str
    time_x: bool


PlotMessage = PlotReset | PlotPoints

# -- FlowGraph --------------------------------------------------------------------------


class _GraphNodeState(TypedDict):
    status: str


class GraphNodeState(_GraphNodeState, total=False):
    error: str


class GraphEdgeState(TypedDict):
    count: int
    rate: float


class Hop(TypedDict):
    """One hop of a stepped run: a value that went along an edge (``_stage.hop_dict``)."""

    index: int
    edge: str
    source: str | None
    source_tag: str
    target: str | None
    target_tag: str
    datapoint: str
    text: str
    scope: str
    failed: bool


class Stop(TypedDict):
    datapoint: str
    stream: str
    node: str | None
    where: str
    job: str | None
    text: str
    edges: list[str]


class _Journey(TypedDict):
    datapoint: str
    stops: list[Stop]


class Journey(_Journey, total=False):
    error: str


class StageHeader(TypedDict):
    """What the kernel says about the run's stage (with each ``hops`` message)."""

    playing: bool
    interval: float
    waiting: list[Hop]
    n_waiting: int
    released: int
    at_work: str | None
    note: str


class GraphStage(TypedDict):
    """The stage of a stepped run, whole: its header, the recent hops, the journey shown."""

    stepping: bool
    hops: list[Hop]
    journey: Journey | None
    playing: bool
    interval: float
    waiting: list[Hop]
    n_waiting: int
    released: int
    at_work: str | None
    note: str


class _GraphReset(TypedDict):
    type: Literal["reset"]
    nodes: dict[str, GraphNodeState]
    edges: dict[str, GraphEdgeState]
    status: str


class GraphReset(_GraphReset, total=False):
    """The whole state; ``stage`` for the graph of a stepped run."""

    stage: GraphStage


class GraphState(TypedDict):
    """The nodes and edges whose state changed, and the run's status."""

    type: Literal["state"]
    nodes: dict[str, GraphNodeState]
    edges: dict[str, GraphEdgeState]
    status: str


class GraphHops(TypedDict):
    """A ``state`` of a stepped run, with the hops released since the last message and the header."""

    type: Literal["hops"]
    nodes: dict[str, GraphNodeState]
    edges: dict[str, GraphEdgeState]
    status: str
    hops: list[Hop]
    folded: int
    playing: bool
    interval: float
    waiting: list[Hop]
    n_waiting: int
    released: int
    at_work: str | None
    note: str


class GraphJourney(TypedDict):
    """The journey now shown (None: none)."""

    type: Literal["journey"]
    journey: Journey | None


GraphMessage = GraphReset | GraphState | GraphHops | GraphJourney


class StageStep(TypedDict):
    """The stage's buttons."""

    type: Literal["step"]


class StagePlay(TypedDict):
    type: Literal["play"]
    interval: float


class StagePause(TypedDict):
    type: Literal["pause"]


class ShowJourney(TypedDict):
    """A dot clicked: show its datapoint's journey (None clears it)."""

    type: Literal["journey"]
    datapoint: str | None


StageRequest = StageStep | StagePlay | StagePause | ShowJourney

# -- JobPanel ---------------------------------------------------------------------------


class PanelReset(TypedDict):
    type: Literal["reset"]
    status: str
    inputs: dict[str, int]
    outputs: dict[str, int]
    traceback: str
    feeds: list[FeedProgress]
    options: str
    logs: list[str]


class PanelState(TypedDict):
    """The panel's state whole, with only the log records that are new."""

    type: Literal["state"]
    status: str
    inputs: dict[str, int]
    outputs: dict[str, int]
    traceback: str
    feeds: list[FeedProgress]
    logs: list[str]


PanelMessage = PanelReset | PanelState


class CancelFeed(TypedDict):
    """The panel's button on a background feed."""

    type: Literal["cancel_feed"]
    id: int


# -- the Kitchen side panel -------------------------------------------------------------


class KitchenFeed(TypedDict):
    id: int
    tag: str
    state: str
    count: int
    total: int | None
    rate: float
    eta: float | None


class KitchenJob(TypedDict):
    id: str
    spec: str
    status: str
    created: float | None
    inputs: int | None
    outputs: int | None
    rate: float | None
    feeds: list[KitchenFeed]


class KitchenWorker(TypedDict):
    spec: str
    concurrency: int
    busy: int
    completed: int
    failed: int


class KitchenStream(TypedDict):
    name: str
    count: int
    rate: float


class KitchenSnapshot(TypedDict):
    type: Literal["snapshot"]
    env: str
    vault: str
    specs: list[str]
    jobs: list[KitchenJob]
    job_total: int
    counts: dict[str, int]
    workers: list[KitchenWorker]
    streams: list[KitchenStream]


class KitchenTrouble(TypedDict):
    """What the kitchen sends instead of a snapshot when the env could not be looked at."""

    type: Literal["snapshot"]
    error: str


class KitchenOpened(TypedDict):
    """A widget made for a request of kind ``open``, to show in a main-area tab."""

    type: Literal["opened"]
    model_id: str
    title: str
    kind: str
    id: str


class KitchenError(TypedDict):
    type: Literal["error"]
    request: object
    error: str


KitchenMessage = KitchenSnapshot | KitchenTrouble | KitchenOpened | KitchenError


class KitchenCancel(TypedDict):
    type: Literal["cancel"]
    job_id: str


class KitchenOpen(TypedDict):
    type: Literal["open"]
    kind: Literal["job", "stream", "plot"]
    id: str


class KitchenClose(TypedDict):
    type: Literal["close"]
    model_id: str


class KitchenRefresh(TypedDict):
    type: Literal["refresh"]


KitchenRequest = KitchenCancel | KitchenOpen | KitchenClose | KitchenRefresh

# -- JobTimeline -------------------------------------------------------------------------


class _TimelineJob(TypedDict):
    id: str
    group: str
    status: str
    requested: float
    start: float | None
    end: float | None
    lane: int | None


class TimelineJob(_TimelineJob, total=False):
    """One job as a bar: when it was requested, ran and ended, its lane (None: no slot yet)."""

    error: str


class TimelineGroup(TypedDict):
    """One spec's lanes."""

    name: str
    concurrency: int | None
    lanes: int


class TimelineReset(TypedDict):
    type: Literal["reset"]
    now: float
    groups: list[TimelineGroup]
    jobs: list[TimelineJob]
    hidden: int


class TimelineState(TypedDict):
    """The jobs that changed or are new, those left out since (max_jobs), the time now."""

    type: Literal["state"]
    now: float
    groups: list[TimelineGroup]
    jobs: list[TimelineJob]
    dropped: list[str]
    hidden: int


TimelineMessage = TimelineReset | TimelineState

# -- all of them ------------------------------------------------------------------------

KernelMessage = TableMessage | PlotMessage | GraphMessage | PanelMessage | TimelineMessage | KitchenMessage
"""What a kernel sends."""

BrowserMessage = Hello | CancelFeed | TableJourney | StageRequest | KitchenRequest
"""What a browser sends."""
