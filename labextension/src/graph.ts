/**
 * FlowGraph: a flow's specs as nodes and its streams as edges, laid out once
 * by dagre when the shape arrives. Live updates only change colours and
 * label text in place, so nothing moves while counts tick.
 *
 * The graph of a stepped run is also a stage (./stage): controls, a dot per
 * hop moving along its edge, the node at work outlined, a datapoint's journey.
 * Messages: "reset" (with "stage" for a stepped run), "state", "hops" (a
 * state plus the hops released since the last one and the stage's header),
 * "journey".
 */
import dagre from '@dagrejs/dagre';
import { LiveModel, LiveView, el, fmtRate } from './base';
import { GraphHops, GraphJourney, GraphMessage, GraphReset, GraphState, ShowJourney } from './messages';
import { DotLayer, Hop, Journey, StageControls, StageHeader, drawJourney } from './stage';

const SVG = 'http://www.w3.org/2000/svg';

function showJourney(datapoint: string | null): ShowJourney {
  return { type: 'journey', datapoint };
}

interface NodeSpec {
  id: string;
  spec: string;
}
interface EdgeSpec {
  id: string;
  source: string;
  target: string;
  label: string;
}
interface PortSpec {
  id: string;
  name: string;
  node: string;
  direction: 'in' | 'out';
}
interface Shape {
  nodes: NodeSpec[];
  edges: EdgeSpec[];
  ports: PortSpec[];
  /** a stepped run: longer edges, room for the values riding them */
  stepping?: boolean;
}
interface NodeState {
  status: string;
  error?: string;
}
interface EdgeState {
  count: number;
  rate: number;
}

/** Hops a model keeps for its views (the newest). */
const KEEP_HOPS = 200;

export class FlowGraphModel extends LiveModel<GraphMessage> {
  nodes: Record<string, NodeState> = {};
  edges: Record<string, EdgeState> = {};
  status = '';
  stepping = false;
  stage: StageHeader = {
    playing: false, interval: 0.5, waiting: [], n_waiting: 0, released: 0, at_work: null, note: ''
  };
  /** The newest hops released, oldest first; views animate those they have not seen. */
  hops: Hop[] = [];
  /** Counts resets: a view parks the hops of a reset instead of moving them. */
  resets = 0;
  journey: Journey | null = null;

  defaults(): any {
    return {
      ...super.defaults(),
      _model_name: 'FlowGraphModel',
      _view_name: 'FlowGraphView',
      title: '',
      shape: { nodes: [], edges: [], ports: [] }
    };
  }

  applyReset(msg: GraphReset): void {
    this.nodes = {};
    this.edges = {};
    this.resets += 1;
    this.stepping = !!msg.stage;
    this.hops = msg.stage ? msg.stage.hops.slice() : [];
    this.journey = msg.stage ? msg.stage.journey : null;
    if (msg.stage) {
      this.header(msg.stage);
    }
    this.applyState(msg);
  }

  applyDelta(msg: GraphState | GraphHops | GraphJourney): void {
    if (msg.type === 'journey') {
      this.journey = msg.journey;
      return;
    }
    if (msg.type === 'hops') {
      this.header(msg);
      this.hops = this.hops.concat(msg.hops).slice(-KEEP_HOPS);
    }
    this.applyState(msg);
  }

  private header(h: StageHeader): void {
    this.stage = {
      playing: h.playing,
      interval: h.interval,
      waiting: h.waiting,
      n_waiting: h.n_waiting,
      released: h.released,
      at_work: h.at_work,
      note: h.note
    };
  }

  private applyState(msg: GraphState | GraphHops | GraphReset): void {
    Object.assign(this.nodes, msg.nodes || {});
    Object.assign(this.edges, msg.edges || {});
    this.status = msg.status ?? this.status;
  }
}

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    e.setAttribute(k, String(v));
  }
  return e;
}

function text(x: number, y: number, cls: string, content: string): SVGTextElement {
  const t = svg('text', { x, y, class: cls, 'text-anchor': 'middle' });
  t.textContent = content;
  return t;
}

export class FlowGraphView extends LiveView {
  private head!: HTMLDivElement;
  private canvas!: SVGSVGElement;
  private detail!: HTMLPreElement;
  private nodeEls = new Map<string, { g: SVGGElement; status: SVGTextElement; title: SVGTitleElement }>();
  private edgeEls = new Map<string, SVGTextElement>();
  private pathEls = new Map<string, SVGPathElement>();
  private shapeKey = '';
  private selected = '';
  private controls!: StageControls;
  private dots!: DotLayer;
  private journeyLayer!: SVGGElement;
  private journeyList!: HTMLDivElement;
  private seenHop = -1;
  private seenResets = -1;
  private travelling: Hop | null = null;
  private shownJourney: Journey | null | undefined = undefined;

  build(): void {
    this.el.classList.add('lsnb-graph');
    this.head = el('div', 'lsnb-header');
    const m = this.model as FlowGraphModel;
    this.controls = new StageControls(msg => this.model.send(msg, {}), () => m.stage.playing);
    this.canvas = svg('svg', { class: 'lsnb-graph-svg' });
    this.journeyList = el('div', 'lsnb-journey-list');
    this.journeyList.hidden = true;
    this.detail = el('pre', 'lsnb-error');
    this.detail.hidden = true;
    this.dots = new DotLayer(
      this.pathEls,
      dp => this.model.send(showJourney(m.journey?.datapoint === dp ? null : dp), {}),
      (_arrived, travelling) => {
        this.travelling = travelling;
        this.schedule();
      }
    );
    this.journeyLayer = svg('g', { class: 'lsnb-journey-layer' });
    this.el.append(this.head, this.controls.el, this.canvas, this.journeyList, this.detail);
    this.listenTo(this.model, 'change:shape', () => this.schedule());
  }

  private layout(shape: Shape): void {
    const g = new dagre.graphlib.Graph({ multigraph: true });
    const ranksep = shape.stepping ? 170 : 70;
    g.setGraph({ rankdir: 'LR', nodesep: shape.stepping ? 40 : 24, ranksep, edgesep: 12, marginx: 8, marginy: 8 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of shape.nodes) {
      const w = Math.max(110, 8 * Math.max(n.id.length, n.spec.length) + 24);
      g.setNode(n.id, { width: w, height: 46 });
    }
    for (const p of shape.ports) {
      g.setNode(p.id, { width: Math.max(60, 7 * p.name.length + 20), height: 24 });
    }
    // Labels get a fixed size up front: later counts never change the layout.
    for (const e of shape.edges) {
      g.setEdge(e.source, e.target, { width: 120, height: 16, labelpos: 'c', id: e.id }, e.id);
    }
    for (const p of shape.ports) {
      const [a, b] = p.direction === 'in' ? [p.id, p.node] : [p.node, p.id];
      g.setEdge(a, b, { width: 120, height: 16, labelpos: 'c', id: p.id }, p.id);
    }
    dagre.layout(g);

    this.nodeEls.clear();
    this.edgeEls.clear();
    this.pathEls.clear();
    const root = svg('g', {});
    const defs = svg('defs', {});
    const marker = svg('marker', {
      id: 'lsnb-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'
    });
    marker.append(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'lsnb-arrow' }));
    defs.append(marker);
    root.append(defs);

    for (const e of g.edges()) {
      const info = g.edge(e) as any;
      const pts = info.points as { x: number; y: number }[];
      const d = pts.map((p, i) => `${i ? 'L' : 'M'} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
      const path = svg('path', { d, class: 'lsnb-edge', 'marker-end': 'url(#lsnb-arrow)', 'data-edge': info.id });
      root.append(path);
      this.pathEls.set(info.id, path);
      const label = text(info.x, info.y + 4, 'lsnb-edge-label', '');
      root.append(label);
      this.edgeEls.set(info.id, label);
    }
    const ports = new Map(shape.ports.map(p => [p.id, p]));
    const specs = new Map(shape.nodes.map(n => [n.id, n]));
    for (const id of g.nodes()) {
      const n = g.node(id);
      const x = n.x - n.width / 2;
      const y = n.y - n.height / 2;
      const port = ports.get(id);
      if (port) {
        const gp = svg('g', { class: `lsnb-port lsnb-port-${port.direction}`, 'data-port': port.name });
        gp.append(svg('rect', { x, y, width: n.width, height: n.height, rx: 12 }));
        gp.append(text(n.x, n.y + 4, 'lsnb-port-name', port.name));
        root.append(gp);
        continue;
      }
      const spec = specs.get(id)!;
      const gn = svg('g', { class: 'lsnb-node lsnb-status-idle', 'data-node': id });
      const title = svg('title', {});
      gn.append(title);
      gn.append(svg('rect', { x, y, width: n.width, height: n.height, rx: 6 }));
      gn.append(text(n.x, n.y - 4, 'lsnb-node-name', id));
      const status = text(n.x, n.y + 13, 'lsnb-node-status', spec.spec === id ? '' : spec.spec);
      gn.append(status);
      gn.addEventListener('click', () => {
        this.selected = this.selected === id ? '' : id;
        this.schedule();
      });
      root.append(gn);
      this.nodeEls.set(id, { g: gn, status, title });
    }
    const gl = g.graph();
    const w = Math.ceil((gl.width || 100) + 2);
    const h = Math.ceil((gl.height || 60) + 2);
    this.canvas.setAttribute('viewBox', `0 0 ${w} ${h}`);
    this.canvas.setAttribute('width', String(w));
    this.canvas.setAttribute('height', String(h));
    // journeys and dots over everything else
    root.append(this.journeyLayer, this.dots.g);
    this.canvas.replaceChildren(root);
    this.seenResets = -1; // the dots are placed again on the new edges
    this.shownJourney = undefined;
  }

  /** The hops, the waiting values, the node at work and the journey of a stepped run. */
  private drawStage(m: FlowGraphModel): void {
    if (m.resets !== this.seenResets) {
      this.seenResets = m.resets;
      this.dots.reset(m.hops.slice(-50));
      this.seenHop = m.hops.length ? m.hops[m.hops.length - 1].index : -1;
      this.travelling = null;
    } else {
      const fresh = m.hops.filter(h => h.index > this.seenHop);
      if (fresh.length) {
        this.seenHop = fresh[fresh.length - 1].index;
        this.dots.add(fresh, m.stage.playing ? Math.min(0.9, m.stage.interval * 0.8) : 0.7);
      }
    }
    this.dots.showWaiting(m.stage.waiting, m.stage.n_waiting);
    const ended = ['completed', 'failed', 'cancelled'].includes(m.status);
    this.controls.update(m.stage, m.stepping, ended && !m.stage.n_waiting);
    if (m.journey !== this.shownJourney) {
      this.shownJourney = m.journey;
      drawJourney(this.journeyLayer, this.journeyList, m.journey, this.pathEls,
        new Map([...this.nodeEls].map(([id, parts]) => [id, parts.g])),
        () => this.model.send(showJourney(null), {}));
    }
  }

  draw(): void {
    const m = this.model as FlowGraphModel;
    const shape = this.model.get('shape') as Shape;
    const key = JSON.stringify(shape);
    if (key !== this.shapeKey) {
      this.shapeKey = key;
      this.layout(shape);
    }
    const title = this.model.get('title') as string;
    this.head.textContent = m.live ? [title, m.status].filter(Boolean).join(' · ') : `${title}: waiting for the kernel`;
    if (m.stepping) {
      this.drawStage(m);
    }
    // the node at work: where the moving dot goes, else the one that took the last value
    const atWork = m.stepping ? (this.travelling ? this.travelling.target : this.dots.busy ? null : m.stage.at_work) : null;
    for (const [id, parts] of this.nodeEls) {
      const st = m.nodes[id] || { status: 'idle' };
      const spec = shape.nodes.find(n => n.id === id)!.spec;
      parts.g.classList.remove(...Array.from(parts.g.classList).filter(c => c.startsWith('lsnb-status-')));
      parts.g.classList.add(`lsnb-status-${st.status}`);
      parts.g.classList.toggle('lsnb-at-work', id === atWork);
      parts.status.textContent = [spec === id ? '' : spec, st.status].filter(Boolean).join(' · ');
      parts.title.textContent = st.error ? `${id}: ${st.status}\n${st.error}` : `${id}: ${st.status}`;
    }
    for (const [id, label] of this.edgeEls) {
      const st = m.edges[id];
      // an ended stream shows its count only; a hop counts once its dot has arrived
      const count = st ? st.count - (m.stepping ? this.dots.inFlight.get(id) || 0 : 0) : 0;
      label.textContent = st ? (st.rate ? `${count} · ${fmtRate(st.rate)}` : `${count}`) : '';
    }
    const sel = this.selected ? m.nodes[this.selected] : undefined;
    if (sel && sel.error) {
      this.detail.textContent = `${this.selected}: ${sel.error}`;
      this.detail.hidden = false;
    } else {
      this.detail.hidden = true;
    }
  }

  remove(): any {
    this.dots.stop();
    return super.remove();
  }
}
