/**
 * StreamPlot: numeric fields of a stream on a uPlot canvas, over a rolling
 * window of points. Points arrive in deltas; the canvas is redrawn at most
 * once per animation frame.
 */
import uPlot from 'uplot';
import { LiveModel, LiveView, el, fmtRate } from './base';
import { PlotMessage, PlotPoints, PlotReset } from './messages';

// Okabe and Ito's colour-blind-safe palette (the static snapshot's too, see
// _svg.py); past eight series the colours come again, dashed, then dotted.
const COLOURS = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000'];
const DASHES: (number[] | undefined)[] = [undefined, [6, 3], [2, 2]];

export class StreamPlotModel extends LiveModel<PlotMessage> {
  xs: number[] = [];
  ys: (number | null)[][] = [];
  count = 0;
  rate = 0;
  ended = false;
  timeX = false;

  defaults(): any {
    return {
      ...super.defaults(),
      _model_name: 'StreamPlotModel',
      _view_name: 'StreamPlotView',
      title: '',
      x: 'timestamp',
      y: [],
      kind: 'line',
      window: 500,
      height: 240
    };
  }

  initialize(attributes: any, options: any): void {
    super.initialize(attributes, options);
    // A smaller window shows at once; the kernel then sends the new window whole.
    this.on('change:window', () => {
      const cut = Math.max(0, this.xs.length - Math.max(1, this.get('window') as number));
      this.xs = this.xs.slice(cut);
      this.ys = this.ys.map(s => s.slice(cut));
      this.trigger('live:data', { type: 'resize' });
    });
  }

  private header(msg: PlotMessage): void {
    this.count = msg.count;
    this.rate = msg.rate;
    this.ended = msg.ended;
    this.timeX = msg.time_x;
  }

  applyReset(msg: PlotReset): void {
    this.header(msg);
    this.xs = msg.x.slice();
    this.ys = msg.y.map(s => s.slice());
  }

  applyDelta(msg: PlotPoints): void {
    this.header(msg);
    const win = this.get('window') as number;
    const x = this.xs.concat(msg.x);
    const cut = Math.max(0, x.length - win);
    this.xs = x.slice(cut);
    const ys = msg.y;
    this.ys = ys.map((s, i) => (this.ys[i] || []).concat(s).slice(cut));
  }
}

export class StreamPlotView extends LiveView {
  private head!: HTMLDivElement;
  private box!: HTMLDivElement;
  private plot: uPlot | null = null;

  build(): void {
    this.el.classList.add('lsnb-plot');
    this.head = el('div', 'lsnb-header');
    this.box = el('div', 'lsnb-plot-box');
    this.el.append(this.head, this.box);
    // Fields found from the first value, or a new kind: draw a new plot.
    this.listenTo(this.model, 'change:y change:kind', () => {
      this.plot?.destroy();
      this.plot = null;
      this.box.replaceChildren();
      this.schedule();
    });
  }

  private make(): uPlot {
    const kind = this.model.get('kind') as string;
    const ys = this.model.get('y') as string[];
    const xname = this.model.get('x') as string;
    const series: uPlot.Series[] = [{ label: xname }];
    ys.forEach((name, i) => {
      const stroke = COLOURS[i % COLOURS.length];
      const s: uPlot.Series = { label: name, stroke, width: 1.5 };
      const dash = DASHES[Math.floor(i / COLOURS.length) % DASHES.length];
      if (dash) {
        s.dash = dash;
      }
      if (kind === 'scatter') {
        s.paths = () => null;
        s.points = { show: true, size: 5, stroke, fill: stroke };
      } else if (kind === 'bar') {
        s.paths = uPlot.paths.bars!({ size: [0.6, 40] });
        s.fill = stroke;
        s.points = { show: false };
      } else {
        s.points = { show: false };
      }
      series.push(s);
    });
    const width = Math.max(300, Math.min(900, this.el.clientWidth || 640));
    const opts: uPlot.Options = {
      width,
      height: this.model.get('height') as number,
      series,
      // epoch seconds (the emission time, or a time field) as dates and times
      scales: { x: { time: (this.model as StreamPlotModel).timeX || xname === 'timestamp' } },
      legend: { show: true },
      cursor: { show: true }
    };
    const m = this.model as StreamPlotModel;
    return new uPlot(opts, [m.xs, ...m.ys] as uPlot.AlignedData, this.box);
  }

  draw(): void {
    const m = this.model as StreamPlotModel;
    const title = this.model.get('title') as string;
    if (!m.live) {
      this.head.textContent = `${title}: waiting for the kernel`;
      return;
    }
    const parts = [title, `${m.count} events`, fmtRate(m.rate)];
    if (m.ended) {
      parts.push('ended');
    }
    this.head.textContent = parts.join(' · ');
    if (m.xs.length < 2) {
      return; // nothing to scale a plot to yet
    }
    if (!this.plot) {
      this.plot = this.make();
    } else {
      this.plot.setData([m.xs, ...m.ys] as uPlot.AlignedData);
    }
    // The x range follows the rolling window exactly (one batch shares one
    // timestamp: then half a unit either side, as the static snapshot does).
    const lo = m.xs[0];
    const hi = m.xs[m.xs.length - 1];
    const pad = hi > lo ? 0 : 0.5;
    this.plot.setScale('x', { min: lo - pad, max: hi + pad });
  }

  remove(): any {
    this.plot?.destroy();
    this.plot = null;
    return super.remove();
  }
}
