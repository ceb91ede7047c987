/**
 * JobPanel: one job's status, options, in/out counts, log records and the
 * traceback of a failure. Log records arrive as appended deltas.
 */
import { LiveMessage, LiveModel, LiveView, el } from './base';

const MAX_LOGS = 200;

export class JobPanelModel extends LiveModel {
  status = '';
  options = '';
  inputs: Record<string, number> = {};
  outputs: Record<string, number> = {};
  logs: string[] = [];
  traceback = '';

  defaults(): any {
    return {
      ...super.defaults(),
      _model_name: 'JobPanelModel',
      _view_name: 'JobPanelView',
      title: ''
    };
  }

  applyReset(msg: LiveMessage): void {
    this.logs = [];
    this.applyDelta(msg);
  }

  applyDelta(msg: LiveMessage): void {
    this.status = msg.status ?? this.status;
    this.options = msg.options ?? this.options;
    this.inputs = msg.inputs ?? this.inputs;
    this.outputs = msg.outputs ?? this.outputs;
    this.traceback = msg.traceback ?? this.traceback;
    if (msg.logs) {
      this.logs = this.logs.concat(msg.logs as string[]).slice(-MAX_LOGS);
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

  build(): void {
    this.el.classList.add('lsnb-panel');
    this.head = el('div', 'lsnb-header');
    this.status = el('span', 'lsnb-badge');
    this.opts = el('pre', 'lsnb-options');
    this.counts = el('div', 'lsnb-counts');
    this.logs = el('pre', 'lsnb-logs');
    this.tb = el('pre', 'lsnb-error');
    this.el.append(this.head, this.counts, this.opts, this.logs, this.tb);
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
  }
}
