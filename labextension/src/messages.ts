/**
 * Every comm message between the kernel and the browser, as types.
 *
 * The kernel side is livestack_nb/widgets/_messages.py: one TypedDict per
 * interface here, of the same name and fields (tests/test_messages.py checks
 * that the two agree, field by field). Each widget has its own union, told
 * apart by `type`; a "reset" carries the whole state, anything else a change.
 * Object types, not interfaces, so a message is a JSON value to `send`.
 * Keep to the forms that test reads: one field a line, primitive types,
 * `X[]`, `Record<string, X>`, string literals, unions and the interfaces below.
 */

// -- shared parts ---------------------------------------------------------------------

/** A cell holding an image or a sound: its bytes as base64, with the type read from them. */
export type MediaCell = {
  media: 'image' | 'audio';
  mime: string;
  b64: string;
  text: string;
};

/** One background feed (``job.feed_from``) as the kernel reports it. */
export type FeedProgress = {
  id: number;
  tag: string;
  state: string;
  count: number;
  total: number | null;
  rate: number;
  eta: number | null;
  error: string;
};

/** Every model says hello once; the kernel answers with a "reset". */
export type Hello = {
  type: 'hello';
};

// -- StreamTable ----------------------------------------------------------------------

export type TableReset = {
  type: 'reset';
  columns: string[];
  rows: (string | MediaCell)[][];
  folded: number;
  journeys: boolean;
  count: number;
  rate: number;
  ended: boolean;
  error: string;
};

/** Rows appended since the last message; `columns` only when a new one appeared. */
export type TableRows = {
  type: 'rows';
  rows: (string | MediaCell)[][];
  folded: number;
  journeys: boolean;
  count: number;
  rate: number;
  ended: boolean;
  error: string;
  columns?: string[];
};

export type TableMessage = TableReset | TableRows;

/** A row chosen in a table of a stepped run's stream: its journey (its # as text; null clears). */
export type TableJourney = {
  type: 'journey';
  seq: string | null;
};

// -- StreamPlot -----------------------------------------------------------------------

export type PlotReset = {
  type: 'reset';
  x: number[];
  y: (number | null)[][];
  count: number;
  rate: number;
  ended: boolean;
  error: string;
  time_x: boolean;
};

/** Points appended since the last message, one list of y per series. */
export type PlotPoints = {
  type: 'points';
  x: number[];
  y: (number | null)[][];
  count: number;
  rate: number;
  ended: boolean;
  error: string;
  time_x: boolean;
};

export type PlotMessage = PlotReset | PlotPoints;

// -- FlowGraph ------------------------------------------------------------------------

export type GraphNodeState = {
  status: string;
  error?: string;
};

export type GraphEdgeState = {
  count: number;
  rate: number;
};

/** One hop of a stepped run: a value that went along an edge. */
export type Hop = {
  index: number;
  edge: string;
  source: string | null;
  source_tag: string;
  target: string | null;
  target_tag: string;
  datapoint: string;
  text: string;
  /** inside a nested flow: the nested node's label ("outer.inner" deeper); "" for this flow */
  scope: string;
  failed: boolean;
};

export type Stop = {
  datapoint: string;
  stream: string;
  node: string | null;
  /** "outside input", the node that made it, "into <node>", "outside output" */
  where: string;
  job: string | null;
  text: string;
  edges: string[];
};

export type Journey = {
  datapoint: string;
  stops: Stop[];
  error?: string;
};

/** What the kernel says about the run's stage (with each "hops" message). */
export type StageHeader = {
  playing: boolean;
  interval: number;
  waiting: Hop[];
  n_waiting: number;
  released: number;
  at_work: string | null;
  note: string;
};

/** The stage of a stepped run, whole: its header, the recent hops, the journey shown. */
export type GraphStage = {
  stepping: boolean;
  hops: Hop[];
  journey: Journey | null;
  playing: boolean;
  interval: number;
  waiting: Hop[];
  n_waiting: number;
  released: number;
  at_work: string | null;
  note: string;
};

/** The whole state; `stage` for the graph of a stepped run. */
export type GraphReset = {
  type: 'reset';
  nodes: Record<string, GraphNodeState>;
  edges: Record<string, GraphEdgeState>;
  status: string;
  stage?: GraphStage;
};

/** The nodes and edges whose state changed, and the run's status. */
export type GraphState = {
  type: 'state';
  nodes: Record<string, GraphNodeState>;
  edges: Record<string, GraphEdgeState>;
  status: string;
};

/** A "state" of a stepped run, with the hops released since the last message and the header. */
export type GraphHops = {
  type: 'hops';
  nodes: Record<string, GraphNodeState>;
  edges: Record<string, GraphEdgeState>;
  status: string;
  hops: Hop[];
  folded: number;
  playing: boolean;
  interval: number;
  waiting: Hop[];
  n_waiting: number;
  released: number;
  at_work: string | null;
  note: string;
};

/** The journey now shown (null: none). */
export type GraphJourney = {
  type: 'journey';
  journey: Journey | null;
};

export type GraphMessage = GraphReset | GraphState | GraphHops | GraphJourney;

/** The stage's buttons. */
export type StageStep = {
  type: 'step';
};

export type StagePlay = {
  type: 'play';
  interval: number;
};

export type StagePause = {
  type: 'pause';
};

/** A dot clicked: show its datapoint's journey (null clears it). */
export type ShowJourney = {
  type: 'journey';
  datapoint: string | null;
};

export type StageRequest = StageStep | StagePlay | StagePause | ShowJourney;

// -- JobPanel -------------------------------------------------------------------------

export type PanelReset = {
  type: 'reset';
  status: string;
  inputs: Record<string, number>;
  outputs: Record<string, number>;
  traceback: string;
  feeds: FeedProgress[];
  options: string;
  logs: string[];
};

/** The panel's state whole, with only the log records that are new. */
export type PanelState = {
  type: 'state';
  status: string;
  inputs: Record<string, number>;
  outputs: Record<string, number>;
  traceback: string;
  feeds: FeedProgress[];
  logs: string[];
};

export type PanelMessage = PanelReset | PanelState;

/** The panel's button on a background feed. */
export type CancelFeed = {
  type: 'cancel_feed';
  id: number;
};

// -- the Kitchen side panel -----------------------------------------------------------

export type KitchenFeed = {
  id: number;
  tag: string;
  state: string;
  count: number;
  total: number | null;
  rate: number;
  eta: number | null;
};

export type KitchenJob = {
  id: string;
  spec: string;
  status: string;
  created: number | null;
  inputs: number | null;
  outputs: number | null;
  rate: number | null;
  feeds: KitchenFeed[];
};

export type KitchenWorker = {
  spec: string;
  concurrency: number;
  busy: number;
  completed: number;
  failed: number;
};

export type KitchenStream = {
  name: string;
  count: number;
  rate: number;
};

export type KitchenSnapshot = {
  type: 'snapshot';
  env: string;
  vault: string;
  specs: string[];
  jobs: KitchenJob[];
  job_total: number;
  counts: Record<string, number>;
  workers: KitchenWorker[];
  streams: KitchenStream[];
};

/** What the kitchen sends instead of a snapshot when the env could not be looked at. */
export type KitchenTrouble = {
  type: 'snapshot';
  error: string;
};

/** A widget made for a request of kind "open", to show in a main-area tab. */
export type KitchenOpened = {
  type: 'opened';
  model_id: string;
  title: string;
  kind: string;
  id: string;
};

export type KitchenError = {
  type: 'error';
  request: unknown;
  error: string;
};

export type KitchenMessage = KitchenSnapshot | KitchenTrouble | KitchenOpened | KitchenError;

export type KitchenCancel = {
  type: 'cancel';
  job_id: string;
};

export type KitchenOpen = {
  type: 'open';
  kind: 'job' | 'stream' | 'plot';
  id: string;
};

export type KitchenClose = {
  type: 'close';
  model_id: string;
};

export type KitchenRefresh = {
  type: 'refresh';
};

export type KitchenRequest = KitchenCancel | KitchenOpen | KitchenClose | KitchenRefresh;

// -- JobTimeline -------------------------------------------------------------------------

/** One job as a bar: when it was requested, ran and ended, its lane (null: no slot yet). */
export type TimelineJob = {
  id: string;
  group: string;
  status: string;
  requested: number;
  start: number | null;
  end: number | null;
  lane: number | null;
  error?: string;
};

/** One spec's lanes. */
export type TimelineGroup = {
  name: string;
  concurrency: number | null;
  lanes: number;
};

export type TimelineReset = {
  type: 'reset';
  now: number;
  groups: TimelineGroup[];
  jobs: TimelineJob[];
  hidden: number;
};

/** The jobs that changed or are new, those left out since (max_jobs), the time now. */
export type TimelineState = {
  type: 'state';
  now: number;
  groups: TimelineGroup[];
  jobs: TimelineJob[];
  dropped: string[];
  hidden: number;
};

export type TimelineMessage = TimelineReset | TimelineState;

// -- all of them ------------------------------------------------------------------------

/** What a kernel sends. */
export type KernelMessage = TableMessage | PlotMessage | GraphMessage | PanelMessage | TimelineMessage | KitchenMessage;

/** What a browser sends. */
export type BrowserMessage = Hello | CancelFeed | TableJourney | StageRequest | KitchenRequest;
