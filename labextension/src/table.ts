/**
 * StreamTable: the newest rows of a stream as a plain DOM table.
 * Every value is set with textContent; long values are cut, the full text is
 * in the cell's tooltip. Images and audio come as their bytes (base64, with
 * the type the kernel read from their magic number): the view builds an
 * <img> or <audio> from a Blob of those bytes, never from an HTML string.
 * A table of a stepped run's stream (the kernel says "journeys") has
 * clickable rows: a click asks the kernel for that datapoint's journey,
 * which the run's flow graph draws ({type: 'journey', seq}).
 */
import { LiveModel, LiveView, el, fmtRate } from './base';
import { MediaCell, TableJourney, TableMessage, TableReset, TableRows } from './messages';

export type { MediaCell } from './messages';

const CUT = 80;
const MEDIA_TYPES = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'audio/wav',
  'audio/ogg',
  'audio/flac',
  'audio/mpeg'
]);

type Cell = string | MediaCell;

function isMedia(c: unknown): c is MediaCell {
  return typeof c === 'object' && c !== null && typeof (c as MediaCell).b64 === 'string';
}

export class StreamTableModel extends LiveModel<TableMessage> {
  columns: string[] = [];
  rows: Cell[][] = [];
  count = 0;
  rate = 0;
  folded = 0;
  ended = false;
  error = '';
  journeys = false;

  defaults(): any {
    return {
      ...super.defaults(),
      _model_name: 'StreamTableModel',
      _view_name: 'StreamTableView',
      title: '',
      max_rows: 20
    };
  }

  initialize(attributes: any, options: any): void {
    super.initialize(attributes, options);
    // A smaller max_rows shows at once; the kernel then sends the new window whole.
    this.on('change:max_rows', () => {
      this.rows = this.rows.slice(-Math.max(1, this.get('max_rows') as number));
      this.trigger('live:data', { type: 'resize' });
    });
  }

  private header(msg: TableMessage): void {
    if (msg.columns) {
      this.columns = msg.columns;
    }
    this.count = msg.count;
    this.rate = msg.rate;
    this.folded = msg.folded;
    this.ended = msg.ended;
    this.error = msg.error;
    this.journeys = msg.journeys;
  }

  applyReset(msg: TableReset): void {
    this.header(msg);
    this.rows = msg.rows.slice();
  }

  applyDelta(msg: TableRows): void {
    this.header(msg);
    const max = this.get('max_rows') as number;
    const rows = this.rows.concat(msg.rows);
    this.rows = rows.length > max ? rows.slice(rows.length - max) : rows;
  }
}

export class StreamTableView extends LiveView {
  private head!: HTMLDivElement;
  private thead!: HTMLTableSectionElement;
  private tbody!: HTMLTableSectionElement;
  private shownColumns = '';
  private media = new Map<MediaCell, { el: HTMLElement; url: string }>();
  private chosen = '';

  build(): void {
    this.el.classList.add('lsnb-table');
    this.head = el('div', 'lsnb-header');
    const wrap = el('div', 'lsnb-table-wrap');
    const table = el('table');
    this.thead = el('thead');
    this.tbody = el('tbody');
    table.append(this.thead, this.tbody);
    wrap.append(table);
    this.el.append(this.head, wrap);
  }

  draw(): void {
    const m = this.model as StreamTableModel;
    if (!m.live) {
      this.head.textContent = `${this.model.get('title')}: waiting for the kernel`;
      return;
    }
    const parts = [
      this.model.get('title') as string,
      `${m.count} events`,
      fmtRate(m.rate)
    ];
    if (m.folded > 1) {
      parts.push(`${m.folded} folded into the last update`);
    }
    if (m.ended) {
      parts.push(m.error ? `ended with error: ${m.error}` : 'ended');
    }
    this.head.textContent = parts.join(' · ');
    this.el.classList.toggle('lsnb-failed', !!m.error);
    this.el.classList.toggle('lsnb-journeys', m.journeys);

    const key = JSON.stringify(m.columns);
    if (key !== this.shownColumns) {
      this.shownColumns = key;
      const tr = el('tr');
      for (const c of m.columns) {
        tr.append(el('th', undefined, c));
      }
      this.thead.replaceChildren(tr);
    }
    // Newest first, so the latest values are visible without scrolling.
    const body: HTMLTableRowElement[] = [];
    const seen = new Set<MediaCell>();
    for (let i = m.rows.length - 1; i >= 0; i--) {
      const tr = el('tr');
      const row = m.rows[i];
      if (m.journeys) {
        const seq = String(row[0]);
        tr.dataset.seq = seq;
        tr.title = 'show the journey of this datapoint on the flow graph';
        tr.classList.toggle('lsnb-selected', seq === this.chosen);
        tr.addEventListener('click', () => {
          this.chosen = this.chosen === seq ? '' : seq;
          const request: TableJourney = { type: 'journey', seq: this.chosen || null };
          this.model.send(request, {});
          this.schedule();
        });
      }
      // rows made before a new column appeared have fewer cells
      for (let j = 0; j < Math.max(row.length, m.columns.length); j++) {
        const td = el('td');
        const c = j < row.length ? row[j] : '';
        if (isMedia(c)) {
          td.append(this.mediaOf(c, seen));
          td.title = c.text;
          tr.append(td);
          continue;
        }
        const s = String(c);
        if (s.length > CUT) {
          td.textContent = s.slice(0, CUT - 1) + '…';
          td.title = s;
          td.classList.add('lsnb-cut');
        } else {
          td.textContent = s;
        }
        tr.append(td);
      }
      body.push(tr);
    }
    this.tbody.replaceChildren(...body);
    // media of rows gone from the table: their elements and Blob URLs are freed
    for (const [c, made] of this.media) {
      if (!seen.has(c)) {
        URL.revokeObjectURL(made.url);
        this.media.delete(c);
      }
    }
  }

  /** The element of a media cell, made once from its bytes and kept while its row shows
   *  (an <audio> made again on every redraw would stop playing). */
  private mediaOf(c: MediaCell, seen: Set<MediaCell>): HTMLElement {
    seen.add(c);
    const made = this.media.get(c);
    if (made) {
      return made.el;
    }
    if (!MEDIA_TYPES.has(c.mime)) {
      return el('span', 'lsnb-media-text', c.text);
    }
    const raw = atob(c.b64);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      bytes[i] = raw.charCodeAt(i);
    }
    const url = URL.createObjectURL(new Blob([bytes], { type: c.mime }));
    let node: HTMLElement;
    if (c.media === 'image') {
      const img = el('img', 'lsnb-thumb');
      img.alt = c.text;
      img.src = url;
      node = img;
    } else {
      const audio = el('audio', 'lsnb-audio');
      audio.controls = true;
      audio.preload = 'metadata';
      audio.src = url;
      node = audio;
    }
    this.media.set(c, { el: node, url });
    return node;
  }

  remove(): any {
    for (const made of this.media.values()) {
      URL.revokeObjectURL(made.url);
    }
    this.media.clear();
    return super.remove();
  }
}
