/**
 * The "Kitchen" side panel: the active notebook kernel's specs, jobs, workers
 * and named streams, live.
 *
 * It follows the notebook that is current in the shell and opens a comm to
 * the kernel's ``livestack-nb:kitchen`` target (registered when the kernel
 * imports livestack_nb; ``livestack_nb/widgets/kitchen.py`` answers). The
 * kernel sends snapshots at most ten times a second, only when something
 * changed; ages are counted here from the jobs' start times. A kernel without
 * livestack-nb closes the comm: the panel says so and asks again after the
 * kernel next goes idle (a cell ran, maybe importing it).
 *
 * Opening a job or stream asks the kernel to make its widget and renders that
 * widget model with the notebook's own widget renderer (so the notebook's
 * widget manager), in a main-area tab (JupyterLab) or the right side panel
 * (Notebook 7, whose main area holds only the notebook). Every value is text.
 *
 * The shell, notebook panels and kernels are used through the few members
 * read here (JupyterLab 4 and Notebook 7 have them alike), which keeps the
 * front end free of JupyterLab's application packages.
 */
import { Panel, Widget } from '@lumino/widgets';
import { el, fmtRate } from './base';
import {
  KitchenFeed,
  KitchenMessage,
  KitchenRequest,
  KitchenSnapshot,
  KitchenTrouble,
  KitchenWorker
} from './messages';

const TARGET = 'livestack-nb:kitchen';
const WIDGET_MIME = 'application/vnd.jupyter.widget-view+json';
const STATUSES = ['all', 'running', 'requested', 'completed', 'failed', 'cancelled'];

/** What the kitchen keeps of the kernel's last snapshot (or why it has none). */
type Snapshot = KitchenSnapshot | KitchenTrouble;

/** Seconds as a short age: 4s, 3m 2s, 2h 5m. */
export function fmtAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) {
    return `${s}s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m ${s % 60}s`;
  }
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function isNotebookPanel(w: any): boolean {
  return !!(w && w.sessionContext && w.content && w.content.rendermime);
}

export class KitchenPanel extends Widget {
  private app: any;
  private notebook: any = null;
  private comm: any = null;
  private connected = false;
  private lastTry = 0;
  private idleSinceTry = false;
  private watched: any = null;
  private retryTimer: number | null = null;
  private snap: Snapshot | null = null;
  private filter = 'all';
  private note = '';
  private ticker: number | null = null;
  private tabs = new Map<string, Widget>();
  private cells = new Map<string, HTMLElement>();
  private shapeKey = '';
  messages = 0;

  private head = el('div', 'lsnb-kitchen-head');
  private body = el('div', 'lsnb-kitchen-body');

  constructor(app: any) {
    super();
    this.app = app;
    this.addClass('lsnb-kitchen');
    this.addClass('lsnb-widget');
    this.id = 'livestack-nb-kitchen';
    this.title.label = 'Kitchen';
    this.title.caption = 'Kitchen: live jobs of this notebook\'s kernel (livestack-nb)';
    this.node.appendChild(this.head);
    this.node.appendChild(this.body);
    const shell = app.shell;
    if (shell.currentChanged) {
      shell.currentChanged.connect(() => this.follow(shell.currentWidget), this);
    }
    this.follow(shell.currentWidget);
    this.render();
    // a page going away closes its comm, so the kernel stops sending to it
    window.addEventListener('beforeunload', () => this.disconnect(''));
  }

  /** Follow ``w`` if it is a notebook; other widgets (our own tabs) keep the last one. */
  private follow(w: any): void {
    if (!isNotebookPanel(w) || w === this.notebook) {
      return;
    }
    if (this.notebook) {
      this.notebook.sessionContext.kernelChanged.disconnect(this.onKernel, this);
      this.notebook.sessionContext.statusChanged.disconnect(this.onStatus, this);
    }
    this.notebook = w;
    w.sessionContext.kernelChanged.connect(this.onKernel, this);
    w.sessionContext.statusChanged.connect(this.onStatus, this);
    w.disposed.connect(() => {
      if (this.notebook === w) {
        this.notebook = null;
        this.disconnect('');
        this.render();
      }
    });
    this.onKernel();
  }

  private onKernel(): void {
    this.disconnect('');
    const kernel = this.notebook?.sessionContext?.session?.kernel ?? null;
    if (kernel !== this.watched) {
      this.watched?.iopubMessage?.disconnect(this.onIopub, this);
      this.watched = kernel;
      kernel?.iopubMessage?.connect(this.onIopub, this);
    }
    this.connect();
  }

  private onStatus(_ctx: any, status: string): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      this.disconnect('');
      this.render();
    }
  }

  /** A cell finished (idle after an execute request): it may have imported livestack_nb. */
  private onIopub(_kernel: any, msg: any): void {
    if (
      this.connected ||
      msg?.header?.msg_type !== 'status' ||
      msg?.content?.execution_state !== 'idle' ||
      msg?.parent_header?.msg_type !== 'execute_request'
    ) {
      return;
    }
    this.idleSinceTry = true;
    if (!this.comm) {
      this.scheduleRetry();
    }
  }

  /** Ask the kernel again, at most once a second, and never drop the last ask. */
  private scheduleRetry(): void {
    if (this.retryTimer !== null) {
      return;
    }
    const delay = Math.max(0, 1000 - (Date.now() - this.lastTry));
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = null;
      if (!this.connected && !this.comm && this.notebook) {
        this.onKernel();
      }
    }, delay);
  }

  private disconnect(note: string): void {
    const comm = this.comm;
    this.comm = null;
    this.connected = false;
    this.snap = null;
    this.note = note;
    if (comm && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        /* the kernel is gone */
      }
    }
  }

  private connect(): void {
    const kernel = this.notebook?.sessionContext?.session?.kernel;
    if (!kernel || kernel.isDisposed) {
      this.render();
      return;
    }
    this.lastTry = Date.now();
    this.idleSinceTry = false;
    let comm: any;
    try {
      comm = kernel.createComm(TARGET);
    } catch (e) {
      this.note = String(e);
      this.render();
      return;
    }
    this.comm = comm;
    comm.onMsg = (msg: any) => {
      if (this.comm !== comm) {
        return;
      }
      this.messages += 1;
      this.node.dataset.messages = String(this.messages);
      this.connected = true;
      this.onMessage(msg.content.data as KitchenMessage);
    };
    comm.onClose = () => {
      if (this.comm === comm) {
        this.comm = null;
        const refused = !this.connected;
        this.connected = false;
        this.snap = null;
        this.render();
        if (refused && this.idleSinceTry) {
          this.scheduleRetry(); // a cell ran while we asked: it may have imported livestack_nb
        }
      }
    };
    try {
      const opened = comm.open({});
      if (opened && opened.done) {
        opened.done.catch(() => undefined);
      }
    } catch {
      this.comm = null;
    }
    this.render();
  }

  private onMessage(data: KitchenMessage): void {
    if (data.type === 'snapshot') {
      const had = this.snap !== null && !('error' in this.snap) && !this.note;
      this.snap = data;
      this.note = '';
      if (had && !('error' in data) && this.shape(data) === this.shapeKey) {
        this.texts(data);
      } else {
        this.render();
      }
    } else if (data.type === 'opened') {
      void this.openTab(data.model_id, String(data.title || data.id), `${data.kind}:${data.id}`);
    } else if (data.type === 'error') {
      this.note = String(data.error);
      this.render();
    }
  }

  private send(data: KitchenRequest): void {
    if (this.comm && !this.comm.isDisposed) {
      this.comm.send(data);
    }
  }

  /** Render widget ``modelId`` with the notebook's widget renderer, in a tab of its own. */
  private async openTab(modelId: string, title: string, key: string): Promise<void> {
    const old = this.tabs.get(key);
    if (old && !old.isDisposed) {
      old.dispose(); // the kernel made a new widget: show that one
    }
    const rendermime = this.notebook?.content?.rendermime;
    if (!rendermime) {
      return;
    }
    const renderer = rendermime.createRenderer(WIDGET_MIME);
    const tab = new Panel();
    tab.id = `lsnb-kitchen-tab-${modelId}`;
    tab.addClass('lsnb-kitchen-tab');
    tab.title.label = title;
    tab.title.caption = title;
    tab.title.closable = true;
    tab.addWidget(renderer);
    this.tabs.set(key, tab);
    const comm = this.comm;
    tab.disposed.connect(() => {
      if (this.tabs.get(key) === tab) {
        this.tabs.delete(key);
      }
      if (comm && comm === this.comm) {
        this.send({ type: 'close', model_id: modelId });
      }
    });
    const lab = this.app.shell.mode !== undefined || String(this.app.name).includes('Lab');
    this.app.shell.add(tab, lab ? 'main' : 'right', { rank: 1000 });
    this.app.shell.activateById(tab.id);
    const data: Record<string, any> = {};
    data[WIDGET_MIME] = { model_id: modelId, version_major: 2, version_minor: 1 };
    const model = { trusted: true, data, metadata: {}, setData: () => undefined };
    try {
      await renderer.renderModel(model);
    } catch (e) {
      tab.node.appendChild(el('div', 'lsnb-kitchen-note', `could not show the widget: ${e}`));
    }
  }

  protected onAfterAttach(): void {
    if (this.ticker === null) {
      this.ticker = window.setInterval(() => this.tickAges(), 1000);
    }
  }

  protected onBeforeDetach(): void {
    if (this.ticker !== null) {
      window.clearInterval(this.ticker);
      this.ticker = null;
    }
  }

  dispose(): void {
    this.disconnect('');
    this.onBeforeDetach();
    super.dispose();
  }

  private tickAges(): void {
    const now = Date.now() / 1000;
    this.body.querySelectorAll<HTMLElement>('[data-created]').forEach(e => {
      e.textContent = fmtAge(now - Number(e.dataset.created));
    });
  }

  // -- drawing -------------------------------------------------------------------------

  private render(): void {
    this.head.replaceChildren();
    this.body.replaceChildren();
    this.cells.clear();
    this.shapeKey = '';
    const name = this.notebook?.context?.path ?? this.notebook?.title?.label;
    const title = el('div', 'lsnb-kitchen-title', 'Kitchen');
    this.head.appendChild(title);
    if (!this.notebook) {
      this.head.appendChild(el('div', 'lsnb-kitchen-state', 'Open a notebook to see its kitchen.'));
      return;
    }
    this.head.appendChild(el('div', 'lsnb-kitchen-nb', String(name ?? '')));
    const snap = this.snap;
    if (!snap) {
      const none = el(
        'div',
        this.comm ? 'lsnb-kitchen-state lsnb-kitchen-connecting' : 'lsnb-kitchen-state lsnb-kitchen-none',
        this.comm
          ? 'Connecting to the kernel…'
          : 'No livestack-nb env in this kernel: import livestack_nb in the notebook.'
      );
      this.head.appendChild(none);
      if (!this.comm) {
        const retry = el('button', 'lsnb-kitchen-retry', 'Look again');
        retry.onclick = () => this.onKernel();
        this.head.appendChild(retry);
      }
      if (this.note) {
        this.head.appendChild(el('div', 'lsnb-kitchen-note', this.note));
      }
      return;
    }
    if ('error' in snap) {
      this.head.appendChild(el('div', 'lsnb-kitchen-note', snap.error));
      return;
    }
    this.head.appendChild(el('div', 'lsnb-kitchen-env', `env ${snap.env} · ${snap.vault}`));
    if (this.note) {
      this.head.appendChild(el('div', 'lsnb-kitchen-note', this.note));
    }
    this.shapeKey = this.shape(snap);
    this.renderJobs(snap);
    this.renderWorkers(snap);
    this.renderStreams(snap);
    this.renderSpecs(snap);
  }

  /** What, when it changes, needs the lists drawn again (else texts change in place). */
  private shape(snap: KitchenSnapshot): string {
    return JSON.stringify([
      this.filter,
      snap.env,
      snap.specs,
      snap.jobs.map(j => [j.id, j.status, j.feeds.map(f => [f.id, f.state])]),
      snap.workers.map(w => w.spec),
      snap.streams.map(st => st.name)
    ]);
  }

  /** Texts that change while the shape stays: set in place, so rows under the pointer stay put. */
  private texts(snap: KitchenSnapshot): void {
    const set = (key: string, text: string) => {
      const e = this.cells.get(key);
      if (e && e.textContent !== text) {
        e.textContent = text;
      }
    };
    set('jobs-h', `Jobs (${snap.job_total})`);
    for (const st of STATUSES) {
      set(`filter:${st}`, `${st} ${st === 'all' ? snap.job_total : snap.counts[st] ?? 0}`);
    }
    for (const j of snap.jobs) {
      set(`in:${j.id}`, j.inputs === null ? '–' : String(j.inputs));
      set(`out:${j.id}`, j.outputs === null ? '–' : String(j.outputs));
      set(`rate:${j.id}`, j.rate === null ? '–' : fmtRate(j.rate));
      for (const f of j.feeds) {
        set(`feed:${j.id}:${f.id}`, feedText(f));
      }
    }
    for (const w of snap.workers) {
      set(`worker:${w.spec}`, workerText(w));
      const e = this.cells.get(`worker:${w.spec}`);
      e?.classList.toggle('lsnb-busy', w.busy > 0);
      e?.classList.toggle('lsnb-idle', w.busy === 0);
    }
    for (const st of snap.streams) {
      set(`stream:${st.name}`, `${st.name}: ${st.count} · ${fmtRate(st.rate)}`);
    }
  }

  private cell<K extends keyof HTMLElementTagNameMap>(
    key: string,
    tag: K,
    cls: string,
    text: string
  ): HTMLElementTagNameMap[K] {
    const e = el(tag, cls, text);
    this.cells.set(key, e);
    return e;
  }

  private section(title: string, key: string): HTMLElement {
    const s = el('div', 'lsnb-kitchen-section');
    s.appendChild(this.cell(key, 'div', 'lsnb-kitchen-h', title));
    this.body.appendChild(s);
    return s;
  }

  private renderJobs(snap: KitchenSnapshot): void {
    const s = this.section(`Jobs (${snap.job_total})`, 'jobs-h');
    const filters = el('div', 'lsnb-kitchen-filters');
    for (const st of STATUSES) {
      const n = st === 'all' ? snap.job_total : snap.counts[st] ?? 0;
      const b = this.cell(`filter:${st}`, 'button', 'lsnb-kitchen-filter', `${st} ${n}`);
      b.dataset.status = st;
      b.title = st === 'all' ? 'show every job' : `show only ${st} jobs`;
      if (st === this.filter) {
        b.classList.add('lsnb-selected');
      }
      b.onclick = () => {
        this.filter = st;
        this.shapeKey = '';
        this.render();
      };
      filters.appendChild(b);
    }
    s.appendChild(filters);
    const list = el('div', 'lsnb-kitchen-jobs');
    const now = Date.now() / 1000;
    const jobs = snap.jobs.filter(j => this.filter === 'all' || j.status === this.filter);
    for (const j of jobs.slice().reverse()) {
      const row = el('div', `lsnb-kitchen-job lsnb-status-${j.status}`);
      row.dataset.job = j.id;
      row.title = `${j.id}: click to open its JobPanel`;
      const top = el('div', 'lsnb-kitchen-line');
      top.appendChild(el('span', 'lsnb-kitchen-status', j.status));
      top.appendChild(el('span', 'lsnb-kitchen-spec', j.spec));
      top.appendChild(el('span', 'lsnb-kitchen-id', j.id));
      row.appendChild(top);
      const bottom = el('div', 'lsnb-kitchen-line lsnb-kitchen-counts');
      bottom.appendChild(el('span', 'lsnb-kitchen-label', 'in'));
      bottom.appendChild(this.cell(`in:${j.id}`, 'span', 'lsnb-kitchen-in', j.inputs === null ? '–' : String(j.inputs)));
      bottom.appendChild(el('span', 'lsnb-kitchen-label', 'out'));
      bottom.appendChild(this.cell(`out:${j.id}`, 'span', 'lsnb-kitchen-out', j.outputs === null ? '–' : String(j.outputs)));
      bottom.appendChild(this.cell(`rate:${j.id}`, 'span', 'lsnb-kitchen-rate', j.rate === null ? '–' : fmtRate(j.rate)));
      const age = el('span', 'lsnb-kitchen-age', j.created ? fmtAge(now - j.created) : '–');
      age.title = 'age';
      if (j.created) {
        age.dataset.created = String(j.created);
      }
      bottom.appendChild(age);
      if (j.status === 'running' || j.status === 'requested') {
        const cancel = el('button', 'lsnb-kitchen-cancel', 'Cancel');
        cancel.title = `cancel ${j.id}`;
        cancel.onclick = ev => {
          ev.stopPropagation();
          this.send({ type: 'cancel', job_id: j.id });
        };
        bottom.appendChild(cancel);
      }
      row.appendChild(bottom);
      for (const f of j.feeds) {
        row.appendChild(this.cell(`feed:${j.id}:${f.id}`, 'div', `lsnb-kitchen-feed lsnb-feed-${f.state}`, feedText(f)));
      }
      row.onclick = () => this.send({ type: 'open', kind: 'job', id: j.id });
      list.appendChild(row);
    }
    s.appendChild(list);
    if (snap.jobs.length < snap.job_total) {
      s.appendChild(el('div', 'lsnb-kitchen-note', `the newest ${snap.jobs.length} of ${snap.job_total} jobs`));
    }
  }

  private renderWorkers(snap: KitchenSnapshot): void {
    const s = this.section(`Workers (${snap.workers.length})`, 'workers-h');
    for (const w of snap.workers) {
      const busy = w.busy > 0 ? 'busy' : 'idle';
      s.appendChild(this.cell(`worker:${w.spec}`, 'div', `lsnb-kitchen-worker lsnb-${busy}`, workerText(w)));
    }
  }

  private renderStreams(snap: KitchenSnapshot): void {
    const s = this.section(`Streams (${snap.streams.length})`, 'streams-h');
    for (const st of snap.streams) {
      const text = `${st.name}: ${st.count} · ${fmtRate(st.rate)}`;
      const row = this.cell(`stream:${st.name}`, 'div', 'lsnb-kitchen-stream', text);
      row.dataset.stream = st.name;
      row.title = `${st.name}: click to open a live table`;
      row.onclick = () => this.send({ type: 'open', kind: 'stream', id: st.name });
      const line = el('div', 'lsnb-kitchen-line lsnb-kitchen-stream-line');
      line.appendChild(row);
      const plot = el('button', 'lsnb-kitchen-plot', 'Plot');
      plot.dataset.stream = st.name;
      plot.title = `${st.name}: open a live plot`;
      plot.onclick = () => this.send({ type: 'open', kind: 'plot', id: st.name });
      line.appendChild(plot);
      s.appendChild(line);
    }
  }

  private renderSpecs(snap: KitchenSnapshot): void {
    const s = this.section(`Specs (${snap.specs.length})`, 'specs-h');
    s.appendChild(el('div', 'lsnb-kitchen-specs', snap.specs.join(' · ')));
  }
}

function feedText(f: KitchenFeed): string {
  const of = f.total !== null ? `/${f.total}` : '';
  const eta = f.eta && f.state === 'feeding' ? ` · ETA ${f.eta.toFixed(1)}s` : '';
  return `${f.state} ${f.tag}: ${f.count}${of} · ${fmtRate(f.rate)}${eta}`;
}

function workerText(w: KitchenWorker): string {
  const busy = w.busy > 0 ? 'busy' : 'idle';
  return `${w.spec}: ${busy} ${w.busy}/${w.concurrency} · ${w.completed} done · ${w.failed} failed`;
}

/** Puts the Kitchen in the left side panel of JupyterLab 4 or Notebook 7. */
export const kitchenPlugin = {
  id: 'livestack-nb:kitchen',
  description: 'The Kitchen side panel: live specs, jobs, workers and streams of the notebook kernel.',
  autoStart: true,
  activate: (app: any): void => {
    const panel = new KitchenPanel(app);
    app.shell.add(panel, 'left', { rank: 900 });
  }
};
