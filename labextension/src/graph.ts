/**
 * FlowGraph: a flow's specs as nodes and its streams as edges, laid out once
 * by dagre when the shape arrives. Live updates only change colours and
 * label text in place, so nothing moves while counts tick.
 */
import dagre from '@dagrejs/dagre';
import { LiveModel, LiveView, el, fmtRate } from './base';
import { GraphMessage, GraphReset, GraphState } from './messages';

const SVG = 'http://www.w3.org/2000/svg';

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
}
interface NodeState {
  status: string;
  error?: string;
}
interface EdgeState {
  count: number;
  rate: number;
}

export class FlowGraphModel extends LiveModel<GraphMessage> {
  nodes: Record<string, NodeState> = {};
  edges: Record<string, EdgeState> = {};
  status = '';

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
    this.applyDelta(msg);
  }

  applyDelta(msg: GraphState | GraphReset): void {
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
  private shapeKey = '';
  private selected = '';

  build(): void {
    this.el.classList.add('lsnb-graph');
    this.head = el('div', 'lsnb-header');
    this.canvas = svg('svg', { class: 'lsnb-graph-svg' });
    this.detail = el('pre', 'lsnb-error');
    this.detail.hidden = true;
    this.el.append(this.head, this.canvas, this.detail);
    this.listenTo(this.model, 'change:shape', () => this.schedule());
  }

  private layout(shape: Shape): void {
    const g = new dagre.graphlib.Graph({ multigraph: true });
    g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 70, edgesep: 12, marginx: 8, marginy: 8 });
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
      root.append(svg('path', { d, class: 'lsnb-edge', 'marker-end': 'url(#lsnb-arrow)' }));
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
    this.canvas.replaceChildren(root);
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
    for (const [id, parts] of this.nodeEls) {
      const st = m.nodes[id] || { status: 'idle' };
      const spec = shape.nodes.find(n => n.id === id)!.spec;
      parts.g.setAttribute('class', `lsnb-node lsnb-status-${st.status}`);
      parts.status.textContent = [spec === id ? '' : spec, st.status].filter(Boolean).join(' · ');
      parts.title.textContent = st.error ? `${id}: ${st.status}\n${st.error}` : `${id}: ${st.status}`;
    }
    for (const [id, label] of this.edgeEls) {
      const st = m.edges[id];
      // an ended stream shows its count only
      label.textContent = st ? (st.rate ? `${st.count} · ${fmtRate(st.rate)}` : `${st.count}`) : '';
    }
    const sel = this.selected ? m.nodes[this.selected] : undefined;
    if (sel && sel.error) {
      this.detail.textContent = `${this.selected}: ${sel.error}`;
      this.detail.hidden = false;
    } else {
      this.detail.hidden = true;
    }
  }
}
