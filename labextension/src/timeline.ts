/**
 * JobTimeline: jobs over time as a Gantt chart, one lane per worker slot.
 * Per spec a heading, a row showing how many jobs waited for a slot, then
 * the lanes, each job a bar from when a slot took it to its end, coloured by
 * status. Drawn with plain SVG elements (createElementNS); every piece of
 * text is set as textContent, a failed job's error in the bar's <title>.
 * The sizes and colours are the static snapshot's (widgets/_timeline_svg.py).
 */
import { LiveModel, LiveView, el } from './base';
import { TimelineGroup, TimelineJob, TimelineMessage, TimelineReset, TimelineState } from './messages';

const SVG = 'http://www.w3.org/2000/svg';

/** Bar colours by status, [fill, stroke] (STATUS_COLOURS in widgets/_svg.py). */
export const STATUS_COLOURS: Record<string, [string, string]> = {
  idle: ['#f4f4f4', '#555'],
  requested: ['#fff8d6', '#555'],
  running: ['#d6ebff', '#1f77b4'],
  completed: ['#dcf5dc', '#2ca02c'],
  failed: ['#e53935', '#8e0000'],
  cancelled: ['#eeeeee', '#555']
};

/** The snapshot's font (FONT in widgets/_svg.py): monospace, so text widths are known. */
const FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace";
const WIDTH = 760;
const LABEL_W = 130;
const RIGHT = 16;
const HEAD_H = 20;
const WAIT_H = 18;
const LANE_H = 22;
const GAP = 8;
const AXIS_H = 26;

/** One job as a bar (TimelineJob in ./messages). */
export type JobRow = TimelineJob;
type Group = TimelineGroup;

export class JobTimelineModel extends LiveModel<TimelineMessage> {
  jobs = new Map<string, JobRow>();
  groups: Group[] = [];
  now = 0;
  hidden = 0;

  defaults(): any {
    return {
      ...super.defaults(),
      _model_name: 'JobTimelineModel',
      _view_name: 'JobTimelineView',
      title: ''
    };
  }

  applyReset(msg: TimelineReset): void {
    this.jobs.clear();
    this.applyDelta(msg);
  }

  applyDelta(msg: TimelineState | TimelineReset): void {
    if (msg.type === 'state') {
      for (const id of msg.dropped) {
        this.jobs.delete(id);
      }
    }
    for (const r of msg.jobs) {
      this.jobs.set(r.id, r);
    }
    this.groups = msg.groups;
    this.now = msg.now;
    this.hidden = msg.hidden;
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

function label(x: number, y: number, content: string, attrs: Record<string, string | number> = {}): SVGTextElement {
  const t = svg('text', { x, y, 'font-size': 11, fill: '#666', ...attrs });
  t.textContent = content;
  return t;
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}

/** A job's tooltip: what the snapshot's bar_tip says. */
export function barTip(r: JobRow, now: number): string {
  const lines = [`job ${r.id} (${r.group}): ${r.status}`];
  if (r.start !== null) {
    const ran = (r.end ?? now) - r.start;
    lines.push(`waited ${(r.start - r.requested).toFixed(2)} s for a slot, ran ${ran.toFixed(2)} s`);
  } else if (r.end !== null) {
    lines.push(`ended after ${(r.end - r.requested).toFixed(2)} s without a slot`);
  } else {
    lines.push(`waiting for a slot for ${(now - r.requested).toFixed(2)} s`);
  }
  if (r.error) {
    lines.push(r.error);
  }
  return lines.join('\n');
}

/** What a bar says: its job id without the spec's name (the group's heading has it). */
function shortId(r: JobRow): string {
  return r.id.startsWith(`${r.group}-`) ? r.id.slice(r.group.length + 1) : r.id;
}

/** How many jobs waited for a slot: [time, count from then on], oldest first. */
function waitingSteps(rows: JobRow[], now: number): [number, number][] {
  const events: [number, number][] = [];
  for (const r of rows) {
    const left = r.start ?? r.end ?? now;
    if (left > r.requested) {
      events.push([r.requested, 1], [left, -1]);
    }
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const steps: [number, number][] = [];
  let count = 0;
  for (const [t, d] of events) {
    count += d;
    if (steps.length && steps[steps.length - 1][0] === t) {
      steps[steps.length - 1][1] = count;
    } else {
      steps.push([t, count]);
    }
  }
  return steps;
}

function niceStep(span: number, n: number): number {
  const raw = span / Math.max(1, n - 1);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw * (1 - 1e-9)) ?? raw;
}

export class JobTimelineView extends LiveView {
  private head!: HTMLDivElement;
  private canvas!: SVGSVGElement;
  /** When the last message came, by this page's clock: running bars grow from there. */
  private lastNow = 0;
  private lastAt = 0;
  private ticker = 0;

  build(): void {
    this.el.classList.add('lsnb-timeline');
    this.head = el('div', 'lsnb-header');
    this.canvas = svg('svg', { class: 'lsnb-timeline-svg', 'font-family': FONT });
    this.el.append(this.head, this.canvas);
    // A running job's bar grows between messages too (a few frames a second, while any runs).
    this.ticker = window.setInterval(() => {
      const m = this.model as JobTimelineModel;
      if (m.live && [...m.jobs.values()].some(r => r.end === null)) {
        this.schedule();
      }
    }, 250);
  }

  remove(): any {
    window.clearInterval(this.ticker);
    return super.remove();
  }

  draw(): void {
    const m = this.model as JobTimelineModel;
    const title = this.model.get('title') as string;
    if (!m.live) {
      this.head.textContent = `${title}: waiting for the kernel`;
      return;
    }
    if (m.now !== this.lastNow) {
      this.lastNow = m.now;
      this.lastAt = performance.now();
    }
    const rows = [...m.jobs.values()];
    const running = rows.some(r => r.end === null);
    // Between messages (about one a second while only the time moves) the clock runs on,
    // at most two seconds ahead of the kernel's last word.
    const now = running ? m.now + Math.min(2, (performance.now() - this.lastAt) / 1000) : m.now;
    const counts = new Map<string, number>();
    for (const r of rows) {
      counts.set(r.status, (counts.get(r.status) || 0) + 1);
    }
    const order = ['requested', 'running', 'completed', 'failed', 'cancelled'];
    const summary = rows.length
      ? `${rows.length} job${rows.length === 1 ? '' : 's'}: ` +
        order.filter(s => counts.has(s)).map(s => `${counts.get(s)} ${s}`).join(', ')
      : 'no jobs yet';
    this.head.textContent = `${title} · ${summary}`;
    this.canvas.replaceChildren(...this.drawing(m, rows, now));
  }

  private drawing(m: JobTimelineModel, rows: JobRow[], now: number): SVGElement[] {
    if (!rows.length) {
      this.size(240, 40);
      return [label(12, 24, 'no jobs yet', { 'font-size': 12 })];
    }
    const t0 = Math.min(...rows.map(r => r.requested));
    const ends = rows.filter(r => r.end !== null).map(r => r.end as number);
    // While a job runs or waits the chart reaches to now; after, to the last end.
    const t1 = ends.length < rows.length ? now : Math.max(...ends);
    const span = Math.max(t1 - t0, 1e-3);
    const plotW = WIDTH - LABEL_W - RIGHT;
    const x = (t: number) => LABEL_W + ((t - t0) / span) * plotW;
    const parts: SVGElement[] = [];
    let y = 4;
    for (const g of m.groups) {
      const mine = rows.filter(r => r.group === g.name);
      const conc = g.concurrency !== null ? ` · concurrency ${g.concurrency}` : '';
      parts.push(
        label(4, y + 14, truncate(g.name, 40) + conc, { 'font-size': 12, 'font-weight': 'bold', fill: '#222' })
      );
      y += HEAD_H;
      const steps = waitingSteps(mine, now);
      const most = Math.max(0, ...steps.map(s => s[1]));
      parts.push(label(4, y + 13, `waiting (max ${most})`));
      if (most) {
        const base = y + WAIT_H - 2;
        const d = [`M ${x(steps[0][0]).toFixed(1)} ${base}`];
        let level = base;
        for (const [t, c] of steps) {
          d.push(`L ${x(t).toFixed(1)} ${level.toFixed(1)}`);
          level = base - ((WAIT_H - 4) * c) / most;
          d.push(`L ${x(t).toFixed(1)} ${level.toFixed(1)}`);
        }
        const last = x(t0 + span).toFixed(1);
        d.push(`L ${last} ${level.toFixed(1)} L ${last} ${base} Z`);
        const path = svg('path', {
          d: d.join(' '),
          fill: STATUS_COLOURS.requested[0],
          stroke: '#b8860b',
          'stroke-width': 1,
          'data-waiting': g.name
        });
        const tip = svg('title', {});
        tip.textContent = `${g.name}: jobs waiting for a slot (at most ${most} at once)`;
        path.append(tip);
        parts.push(path);
      }
      y += WAIT_H;
      for (let lane = 0; lane < g.lanes; lane++) {
        const top = y + lane * LANE_H;
        parts.push(label(4, top + 15, `slot ${lane + 1}`));
        parts.push(svg('line', { x1: LABEL_W, x2: WIDTH - RIGHT, y1: top + LANE_H, y2: top + LANE_H, stroke: '#eee' }));
      }
      for (const r of mine) {
        if (r.lane === null || r.start === null) {
          continue;
        }
        const top = y + r.lane * LANE_H + 3;
        const a = x(r.start);
        const w = Math.max(2, x(r.end ?? now) - a);
        const [fill, stroke] = STATUS_COLOURS[r.status] || STATUS_COLOURS.idle;
        const bar = svg('g', {
          class: `lsnb-bar lsnb-status-${r.status}`,
          'data-job': r.id,
          'data-status': r.status,
          'data-lane': r.lane
        });
        const tip = svg('title', {});
        tip.textContent = barTip(r, now);
        const rect = svg('rect', {
          x: a.toFixed(1), y: top.toFixed(1), width: w.toFixed(1), height: LANE_H - 6,
          rx: 3, fill, stroke, 'stroke-width': 1.2
        });
        if (r.status === 'cancelled') {
          rect.setAttribute('stroke-dasharray', '4 2');
        }
        bar.append(tip, rect);
        if (w > 40) {
          bar.append(
            label(a + 4, top + 12, truncate(shortId(r), Math.max(1, Math.floor((w - 8) / 6.6))), {
              fill: r.status === 'failed' ? '#fff' : '#222'
            })
          );
        }
        parts.push(bar);
      }
      y += g.lanes * LANE_H + GAP;
    }
    parts.push(svg('line', { x1: LABEL_W, x2: WIDTH - RIGHT, y1: y, y2: y, stroke: '#999' }));
    const step = niceStep(span, 6);
    const decimals = step >= 1 ? 0 : step >= 0.1 ? 1 : 2;
    for (let t = 0; t <= span + 1e-9; t += step) {
      const tx = x(t0 + t);
      parts.push(svg('line', { x1: tx.toFixed(1), x2: tx.toFixed(1), y1: y, y2: y + 4, stroke: '#999' }));
      parts.push(label(tx, y + 16, `${t.toFixed(decimals)}s`, { 'font-size': 10, 'text-anchor': 'middle' }));
    }
    const note = m.hidden
      ? `time since the first request (${m.hidden} older jobs left out)`
      : 'time since the first request';
    parts.push(label(WIDTH - RIGHT, y + 30, note, { 'font-size': 10, 'text-anchor': 'end' }));
    this.size(WIDTH, y + AXIS_H + 10);
    return parts;
  }

  private size(w: number, h: number): void {
    this.canvas.setAttribute('viewBox', `0 0 ${w} ${Math.ceil(h)}`);
    this.canvas.setAttribute('width', String(w));
    this.canvas.setAttribute('height', String(Math.ceil(h)));
  }
}
