/**
 * Shared model behaviour: live data arrives as custom messages, never as the
 * whole history in a trait. A model asks the kernel for a full "reset" once
 * (its own state in the kernel may be newer than anything saved), then
 * applies "delta" messages. A view is marked live only after a reset came
 * from a kernel; the CSS hides the static snapshot next to a live view only.
 */
import { DOMWidgetModel, DOMWidgetView } from '@jupyter-widgets/base';
import { MODULE_NAME, MODULE_VERSION } from './version';

export interface LiveMessage {
  type: string;
  [key: string]: any;
}

export abstract class LiveModel extends DOMWidgetModel {
  live = false;

  defaults(): any {
    return {
      ...super.defaults(),
      _model_module: MODULE_NAME,
      _model_module_version: MODULE_VERSION,
      _view_module: MODULE_NAME,
      _view_module_version: MODULE_VERSION
    };
  }

  initialize(attributes: any, options: any): void {
    super.initialize(attributes, options);
    this.on('msg:custom', (msg: LiveMessage) => this.onLiveMessage(msg));
    // Ask for the current state; a model restored without a kernel gets no answer.
    if (this.comm_live) {
      this.send({ type: 'hello' }, {});
    }
  }

  private onLiveMessage(msg: LiveMessage): void {
    if (msg.type === 'reset') {
      this.live = true;
      this.applyReset(msg);
    } else {
      this.applyDelta(msg);
    }
    this.trigger('live:data', msg);
  }

  abstract applyReset(msg: LiveMessage): void;
  abstract applyDelta(msg: LiveMessage): void;
}

export abstract class LiveView extends DOMWidgetView {
  private frame = 0;

  render(): void {
    this.el.classList.add('lsnb-widget', 'lsnb-pending');
    this.build();
    this.listenTo(this.model, 'live:data', () => this.schedule());
    this.schedule();
  }

  /** Draw at most once per animation frame, however many messages came. */
  schedule(): void {
    if (this.frame) {
      return;
    }
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const live = (this.model as LiveModel).live;
      this.el.classList.toggle('lsnb-live', live);
      this.el.classList.toggle('lsnb-pending', !live);
      this.draw();
    });
  }

  remove(): any {
    if (this.frame) {
      cancelAnimationFrame(this.frame);
    }
    return super.remove();
  }

  abstract build(): void;
  abstract draw(): void;
}

/** An element with text content only: values are never parsed as HTML. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) {
    e.className = cls;
  }
  if (text !== undefined) {
    e.textContent = text;
  }
  return e;
}

export function fmtRate(rate: number): string {
  if (!rate) {
    return '0/s';
  }
  if (rate >= 1000) {
    return `${(rate / 1000).toFixed(rate >= 10000 ? 0 : 1)}k/s`;
  }
  return `${rate.toFixed(rate >= 10 ? 0 : 1)}/s`;
}
