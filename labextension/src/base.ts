/**
 * Shared model behaviour: live data arrives as custom messages, never as the
 * whole history in a trait. A model asks the kernel for a full "reset" once
 * (its own state in the kernel may be newer than anything saved), then
 * applies "delta" messages. A view is marked live only after a reset came
 * from a kernel; the CSS hides the static snapshot next to a live view only.
 */
import { DOMWidgetModel, DOMWidgetView } from '@jupyter-widgets/base';
import { Hello } from './messages';
import { MODULE_NAME, MODULE_VERSION } from './version';

/** The "reset" of a widget's message union `M`: its whole state. */
export type ResetOf<M extends { type: string }> = Extract<M, { type: 'reset' }>;
/** The other messages of `M`: changes since the last message. */
export type DeltaOf<M extends { type: string }> = Exclude<M, { type: 'reset' }>;

/** A widget model whose kernel sends the messages of the union `M` (see messages.ts). */
export abstract class LiveModel<M extends { type: string }> extends DOMWidgetModel {
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
    this.on('msg:custom', (msg: M) => this.onLiveMessage(msg));
    // Ask for the current state; a model restored without a kernel gets no answer.
    if (this.comm_live) {
      const hello: Hello = { type: 'hello' };
      this.send(hello, {});
    }
  }

  private onLiveMessage(msg: M): void {
    if (msg.type === 'reset') {
      this.live = true;
      this.applyReset(msg as ResetOf<M>);
    } else {
      this.applyDelta(msg as DeltaOf<M>);
    }
    this.trigger('live:data', msg);
  }

  abstract applyReset(msg: ResetOf<M>): void;
  abstract applyDelta(msg: DeltaOf<M>): void;
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
      const live = (this.model as LiveModel<{ type: string }>).live;
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
