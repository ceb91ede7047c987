/**
 * StreamTable: the newest rows of a stream as a plain DOM table.
 * Every value is set with textContent; long values are cut, the full text is
 * in the cell's tooltip.
 */
import { LiveMessage, LiveModel, LiveView, el, fmtRate } from './base';

const CUT = 80;

export class StreamTableModel extends LiveModel {
  columns: string[] = [];
  rows: string[][] = [];
  count = 0;
  rate = 0;
  folded = 0;
  ended = false;
  error = '';

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

  private header(msg: LiveMessage): void {
    if (msg.columns) {
      this.columns = msg.columns;
    }
    this.count = msg.count ?? this.count;
    this.rate = msg.rate ?? this.rate;
    this.folded = msg.folded ?? this.folded;
    this.ended = msg.ended ?? this.ended;
    this.error = msg.error ?? this.error;
  }

  applyReset(msg: LiveMessage): void {
    this.header(msg);
    this.rows = (msg.rows as string[][]).slice();
  }

  applyDelta(msg: LiveMessage): void {
    this.header(msg);
    const max = this.get('max_rows') as number;
    const rows = this.rows.concat(msg.rows as string[][]);
    this.rows = rows.length > max ? rows.slice(rows.length - max) : rows;
  }
}

export class StreamTableView extends LiveView {
  private head!: HTMLDivElement;
  private thead!: HTMLTableSectionElement;
  private tbody!: HTMLTableSectionElement;
  private shownColumns = '';

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
    for (let i = m.rows.length - 1; i >= 0; i--) {
      const tr = el('tr');
      const row = m.rows[i];
      // rows made before a new column appeared have fewer cells
      for (let j = 0; j < Math.max(row.length, m.columns.length); j++) {
        const td = el('td');
        const s = j < row.length ? String(row[j]) : '';
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
  }
}
