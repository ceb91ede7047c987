/**
 * The stage of a stepped run's flow graph: the controls (Step, Play, Pause,
 * a speed slider), the dots that carry each hop's value along its edge, and
 * the journey of a datapoint drawn over the graph.
 *
 * Messages to the kernel: {type: 'step'}, {type: 'play', interval},
 * {type: 'pause'}, {type: 'journey', datapoint} (null clears it). Every value
 * arrives as plain text and is set with textContent, never parsed as markup.
 */
import { el } from './base';
import type { Hop, Journey, StageHeader, StageRequest } from './messages';

const SVG = 'http://www.w3.org/2000/svg';
/** Slowest and fastest play, seconds a hop (SLOWEST, FASTEST in widgets/_stage.py). */
export const SLOWEST = 3.0;
export const FASTEST = 0.02;
/** Characters of a value written on a dot; the tooltip has all of it. */
const DOT_TEXT = 24;
/** Past this many hops waiting to be animated, the older ones are parked at once. */
const BACKLOG = 6;

export type { Hop, Journey, StageHeader, Stop } from './messages';

export function svgEl<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    e.setAttribute(k, String(v));
  }
  return e;
}

function cut(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}

/** Seconds a hop for a slider position 0..100 (log scale, right is faster). */
export function intervalAt(pos: number): number {
  return SLOWEST * Math.pow(FASTEST / SLOWEST, pos / 100);
}

export function positionOf(interval: number): number {
  const i = Math.min(SLOWEST, Math.max(FASTEST, interval));
  return Math.round((100 * Math.log(i / SLOWEST)) / Math.log(FASTEST / SLOWEST));
}

function fmtInterval(s: number): string {
  return s >= 1 ? `${s.toFixed(1)} s/hop` : `${Math.round(s * 1000)} ms/hop`;
}

/** The buttons and the slider; what they do is sent to the kernel. */
export class StageControls {
  readonly el: HTMLDivElement;
  private stepBtn: HTMLButtonElement;
  private playBtn: HTMLButtonElement;
  private pauseBtn: HTMLButtonElement;
  private slider: HTMLInputElement;
  private speed: HTMLSpanElement;
  private info: HTMLSpanElement;
  private note: HTMLSpanElement;
  private touched = false;

  constructor(send: (msg: StageRequest) => void, private playing: () => boolean) {
    this.el = el('div', 'lsnb-stage-controls');
    this.el.hidden = true;
    this.stepBtn = el('button', 'lsnb-stage-step', 'Step');
    this.playBtn = el('button', 'lsnb-stage-play', 'Play');
    this.pauseBtn = el('button', 'lsnb-stage-pause', 'Pause');
    this.stepBtn.title = 'release the oldest waiting hop';
    this.playBtn.title = 'release one hop per interval (slow motion)';
    this.slider = el('input', 'lsnb-stage-speed');
    this.slider.type = 'range';
    this.slider.min = '0';
    this.slider.max = '100';
    this.slider.title = 'speed: slower to the left, faster to the right';
    this.speed = el('span', 'lsnb-stage-interval');
    this.info = el('span', 'lsnb-stage-info');
    this.note = el('span', 'lsnb-stage-note');
    const label = el('span', 'lsnb-stage-label', 'speed');
    this.el.append(this.stepBtn, this.playBtn, this.pauseBtn, label, this.slider, this.speed, this.info, this.note);
    this.stepBtn.addEventListener('click', () => send({ type: 'step' }));
    this.playBtn.addEventListener('click', () => send({ type: 'play', interval: this.interval }));
    this.pauseBtn.addEventListener('click', () => send({ type: 'pause' }));
    this.slider.addEventListener('input', () => {
      this.touched = true;
      this.speed.textContent = fmtInterval(this.interval);
    });
    // a new speed while playing applies at once
    this.slider.addEventListener('change', () => {
      if (this.playing()) {
        send({ type: 'play', interval: this.interval });
      }
    });
  }

  get interval(): number {
    return intervalAt(Number(this.slider.value));
  }

  update(h: StageHeader, stepping: boolean, ended: boolean): void {
    this.el.hidden = !stepping;
    if (!this.touched) {
      this.slider.value = String(positionOf(h.interval));
    }
    this.speed.textContent = fmtInterval(this.interval);
    this.playBtn.disabled = h.playing || ended;
    this.pauseBtn.disabled = !h.playing;
    this.stepBtn.disabled = h.playing || ended;
    this.el.classList.toggle('lsnb-playing', h.playing);
    const hops = `${h.released} hop${h.released === 1 ? '' : 's'}`;
    this.info.textContent = `${hops} · ${h.n_waiting} waiting${h.playing ? ' · playing' : ''}`;
    this.note.textContent = h.note;
  }
}

interface Moving {
  hop: Hop;
  g: SVGGElement;
  start: number;
  duration: number;
}

/**
 * The dots: one moving along its edge per hop, one parked near the tip of each
 * edge (the last value that went along it), one waiting at the start of an edge
 * whose gate holds values. A click on a dot asks for its datapoint's journey.
 */
export class DotLayer {
  readonly g: SVGGElement;
  private parked = new Map<string, SVGGElement>();
  private waiting = new Map<string, SVGGElement>();
  private queue: Hop[] = [];
  private moving: Moving | null = null;
  private frame = 0;
  /** Hops of each edge not yet arrived (their counts are shown when they arrive). */
  readonly inFlight = new Map<string, number>();

  constructor(
    private paths: Map<string, SVGPathElement>,
    private onClick: (datapoint: string) => void,
    private onArrive: (hop: Hop | null, travelling: Hop | null) => void
  ) {
    this.g = svgEl('g', { class: 'lsnb-dots' });
  }

  private dot(hop: Hop, cls: string, label: string): SVGGElement {
    const g = svgEl('g', { class: `lsnb-dot ${cls}`, 'data-datapoint': hop.datapoint, 'data-edge': hop.edge });
    const title = svgEl('title', {});
    title.textContent = `${hop.datapoint}: ${hop.text}`;
    // a parked value's text ends at its dot, a waiting one's starts under its dot: on a
    // short edge the two do not cover each other (nor the count in the middle)
    const at =
      cls === 'lsnb-dot-parked' ? { x: 4, y: -9, 'text-anchor': 'end' }
      : cls === 'lsnb-dot-waiting' ? { x: -4, y: 17, 'text-anchor': 'start' }
      : { x: 0, y: -9, 'text-anchor': 'middle' };
    const t = svgEl('text', { class: 'lsnb-dot-text', ...at });
    t.textContent = cut(label, DOT_TEXT);
    g.append(title, svgEl('circle', { r: 6, cx: 0, cy: 0 }), t);
    g.addEventListener('click', ev => {
      ev.stopPropagation();
      this.onClick(hop.datapoint);
    });
    return g;
  }

  private place(g: SVGGElement, edge: string, at: (len: number) => number): boolean {
    const path = this.paths.get(edge);
    if (!path) {
      return false;
    }
    const len = path.getTotalLength();
    const p = path.getPointAtLength(Math.max(0, Math.min(len, at(len))));
    g.setAttribute('transform', `translate(${p.x.toFixed(1)} ${p.y.toFixed(1)})`);
    return true;
  }

  private park(hop: Hop): void {
    const old = this.parked.get(hop.edge);
    const g = this.dot(hop, 'lsnb-dot-parked', hop.text);
    if (this.place(g, hop.edge, len => len - 16)) {
      if (old) {
        old.replaceWith(g);
      } else {
        this.g.append(g);
      }
      this.parked.set(hop.edge, g);
    }
  }

  /** Forget every dot (a new layout or a reset); park ``recent`` without moving them. */
  reset(recent: Hop[]): void {
    this.stop();
    this.queue = [];
    this.inFlight.clear();
    this.parked.clear();
    this.waiting.clear();
    this.g.replaceChildren();
    for (const h of recent) {
      if (!h.scope) {
        this.park(h);
      }
    }
  }

  /** Hops released since the last call: each travels its edge in turn. */
  add(hops: Hop[], seconds: number): void {
    for (const h of hops) {
      if (h.scope) {
        continue; // inside a nested node: no edge of this graph moves (the node is at work)
      }
      this.queue.push(h);
      this.inFlight.set(h.edge, (this.inFlight.get(h.edge) || 0) + 1);
    }
    while (this.queue.length > BACKLOG) {
      this.arrive(this.queue.shift()!); // too many at once: the older ones are parked
    }
    this.seconds = seconds;
    if (!this.frame) {
      this.frame = requestAnimationFrame(t => this.tick(t));
    }
  }

  private seconds = 0.6;

  private arrive(hop: Hop): void {
    const n = (this.inFlight.get(hop.edge) || 1) - 1;
    if (n > 0) {
      this.inFlight.set(hop.edge, n);
    } else {
      this.inFlight.delete(hop.edge);
    }
    this.park(hop);
  }

  private tick(now: number): void {
    this.frame = 0;
    if (!this.moving) {
      const hop = this.queue.shift();
      if (!hop) {
        return;
      }
      const g = this.dot(hop, 'lsnb-dot-moving', hop.text);
      if (!this.place(g, hop.edge, () => 0)) {
        this.arrive(hop); // an edge this graph does not draw
        this.onArrive(hop, null);
        this.frame = requestAnimationFrame(t => this.tick(t));
        return;
      }
      this.g.append(g);
      // several queued: each goes faster so the dots keep up with the run
      const duration = (1000 * this.seconds) / Math.max(1, this.queue.length + 1);
      this.moving = { hop, g, start: now, duration: Math.max(60, duration) };
      this.onArrive(null, hop);
    }
    const m = this.moving;
    const f = Math.min(1, (now - m.start) / m.duration);
    const ease = f < 0.5 ? 2 * f * f : 1 - Math.pow(-2 * f + 2, 2) / 2;
    this.place(m.g, m.hop.edge, len => ease * (len - 16));
    if (f >= 1) {
      m.g.remove();
      this.moving = null;
      this.arrive(m.hop);
      this.onArrive(m.hop, null);
    }
    if (this.moving || this.queue.length) {
      this.frame = requestAnimationFrame(t => this.tick(t));
    }
  }

  /** The values waiting at their gates: a dot at the start of each such edge. */
  showWaiting(hops: Hop[], total: number): void {
    const byEdge = new Map<string, Hop[]>();
    for (const h of hops) {
      byEdge.set(h.edge, [...(byEdge.get(h.edge) || []), h]);
    }
    for (const [edge, g] of this.waiting) {
      if (!byEdge.has(edge)) {
        g.remove();
        this.waiting.delete(edge);
      }
    }
    const shown = hops.length;
    for (const [edge, list] of byEdge) {
      const more = list.length > 1 ? ` +${list.length - 1}` : '';
      const g = this.dot(list[0], 'lsnb-dot-waiting', `${list[0].text}${more}`);
      if (shown < total && edge === hops[hops.length - 1].edge) {
        g.querySelector('title')!.textContent += ` (${total} waiting in all)`;
      }
      if (this.place(g, edge, len => Math.min(14, len / 4))) {
        const old = this.waiting.get(edge);
        if (old) {
          old.replaceWith(g);
        } else {
          this.g.append(g);
        }
        this.waiting.set(edge, g);
      }
    }
  }

  get busy(): boolean {
    return this.moving !== null || this.queue.length > 0;
  }

  stop(): void {
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    if (this.moving) {
      this.moving.g.remove();
      this.moving = null;
    }
  }
}

/** The journey drawn over the graph: lit edges and nodes, the value at each stop. */
export function drawJourney(
  layer: SVGGElement,
  list: HTMLDivElement,
  journey: Journey | null,
  paths: Map<string, SVGPathElement>,
  nodes: Map<string, SVGGElement>,
  clear: () => void
): void {
  for (const p of paths.values()) {
    p.classList.remove('lsnb-journey');
  }
  for (const n of nodes.values()) {
    n.classList.remove('lsnb-journey');
  }
  layer.replaceChildren();
  list.replaceChildren();
  list.hidden = !journey;
  if (!journey) {
    return;
  }
  const head = el('span', 'lsnb-journey-head', `journey of ${journey.datapoint}`);
  const close = el('button', 'lsnb-journey-clear', 'clear');
  close.addEventListener('click', clear);
  list.append(head, close);
  if (journey.error) {
    list.append(el('div', 'lsnb-journey-error', `not found: ${journey.error}`));
    return;
  }
  const ol = el('ol', 'lsnb-journey-stops');
  journey.stops.forEach((s, i) => {
    const li = el('li', 'lsnb-journey-stop');
    li.append(el('b', undefined, s.where), document.createTextNode(`: ${s.text}`));
    li.title = `${s.datapoint} in ${s.stream}${s.job ? ` (job ${s.job})` : ''}`;
    ol.append(li);
    if (s.node !== null) {
      nodes.get(s.node)?.classList.add('lsnb-journey');
    }
    const edge = s.edges.find(e => paths.has(e));
    for (const e of s.edges) {
      paths.get(e)?.classList.add('lsnb-journey');
    }
    if (edge) {
      // the stop's value, numbered, in the middle of the edge it travelled
      const path = paths.get(edge)!;
      const p = path.getPointAtLength(path.getTotalLength() / 2);
      const t = svgEl('text', {
        class: 'lsnb-journey-label',
        x: p.x.toFixed(1),
        y: (p.y + 18).toFixed(1), // under the line: the values riding the edges are above it
        'text-anchor': 'middle',
        'data-stop': i
      });
      t.textContent = `${i + 1}. ${cut(s.text, DOT_TEXT)}`;
      layer.append(t);
    }
  });
  list.append(ol);
}
