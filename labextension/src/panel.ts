/**
 * JobPanel: one job's status, options, in/out counts, log records and the
 * traceback of a failure. Log records arrive as appended deltas.
 */
import { LiveModel, LiveView, el, fmtRate } from './base';
import { CancelFeed, FeedProgress, PanelMessage, PanelReset, PanelState } from './messages';

export type { FeedProgress } from './messages';

const MAX_LOGS = 200;

export class JobPanelModel extends LiveModel<PanelMessage> {
  status = '';
  options = '';
  inputs: Record<string, number> = {};
  outputs: Record<string, number> = {};
  logs: string[] = [];
  traceback = '';
  feeds: FeedProgress[] = [];

  defaults(): any {
    return {
      ...super.defaults(),
      _model_name: 'JobPanelModel',
      _view_name: 'JobPanelView',
      title: ''
    };
  }

  applyReset(msg: PanelReset): void {
    this.logs = [];
    this.applyDelta(msg);
  }

  applyDelta(msg: PanelState | PanelReset): void {
    this.status = msg.status;
    if (msg.type === 'reset') {
      this.options = msg.options;
    }
    this.inputs = msg.inputs;
    this.outputs = msg.outputs;
    this.traceback = msg.traceback;
    this.feeds = msg.feeds;
    if (msg.logs.length) {
      this.logs = this.logs.concat(msg.logs).slice(-MAX_LOGS);
    }
  }
}

export class JobPanelView extends LiveView {
  private head!: HTMLDivElement;
  private status!: HTMLSpanElement;
  private opts!: HTMLPreElement;
  private counts!: HTMLDivElement;
  private logs!: HTMLPreElement;
  private tb!: HTMLPreElement;
  private feeds!: HTMLDivElement;

  build(): void {
    this.el.classList.add('lsnb-panel');
    this.head = el('div', 'lsnb-header');
    this.status = el('span', 'lsnb-badge');
    this.opts = el('pre', 'lsnb-options');
    this.counts = el('div', 'lsnb-counts');
    this.logs = el('pre', 'lsnb-logs');
    this.tb = el('pre', 'lsnb-error');
    this.feeds = el('div', 'lsnb-feedings');
    this.el.append(this.head, this.counts, this.feeds, this.opts, this.logs, this.tb);
  }

  draw(): void {
    const m = this.model as JobPanelModel;
    const title = this.model.get('title') as string;
    if (!m.live) {
      this.head.textContent = `${title}: waiting for the kernel`;
      return;
    }
    this.status.textContent = m.status;
    this.status.className = `lsnb-badge lsnb-status-${m.status}`;
    this.head.replaceChildren(document.createTextNode(`${title} `), this.status);
    const fmt = (o: Record<string, number>) =>
      Object.entries(o).map(([k, v]) => `${k}: ${v}`).join(', ') || '-';
    this.counts.textContent = `in ${fmt(m.inputs)} · out ${fmt(m.outputs)}`;
    this.opts.textContent = m.options ? `options ${m.options}` : '';
    this.opts.hidden = !m.options;
    this.logs.textContent = m.logs.join('\n');
    this.logs.hidden = m.logs.length === 0;
    this.tb.textContent = m.traceback;
    this.tb.hidden = !m.traceback;
    this.feeds.replaceChildren(...m.feeds.map(f => this.feedRow(f)));
    this.feeds.hidden = m.feeds.length === 0;
  }

  /** A tqdm-like line: a bar (indeterminate without a total), count, rate, ETA, cancel. */
  private feedRow(f: FeedProgress): HTMLElement {
    const row = el('div', `lsnb-feeding lsnb-feeding-${f.state}`);
    row.dataset.feed = String(f.id);
    const bar = el('progress', 'lsnb-feeding-bar');
    if (f.total !== null) {
      bar.max = Math.max(1, f.total);
      bar.value = f.count;
    } else if (f.state !== 'feeding') {
      bar.max = 1;
      bar.value = 1;
    }
    const of = f.total !== null ? `/${f.total.toLocaleString('en-US')}` : '';
    const eta = f.state === 'feeding' && f.eta !== null ? ` · ETA ${f.eta.toFixed(1)}s` : '';
    const err = f.error ? ` · ${f.error}` : '';
    const text = el(
      'span',
      'lsnb-feeding-text',
      `${f.state} ${f.tag}: ${f.count.toLocaleString('en-US')}${of} · ${fmtRate(f.rate)}${eta}${err}`
    );
    row.append(bar, text);
    if (f.state === 'feeding') {
      const cancel = el('button', 'lsnb-feeding-cancel', 'Cancel');
      cancel.title = 'stop feeding (what was fed stays fed)';
      cancel.onclick = () => {
        cancel.disabled = true;
        const request: CancelFeed = { type: 'cancel_feed', id: f.id };
        this.model.send(request, {});
      };
      row.append(cancel);
    }
    return row;
  }
}
