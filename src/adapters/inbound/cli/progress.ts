import type { WriteStream } from 'node:tty';
import type { ProgressEvent, ProgressListener } from '../../../ports/observability/progress.js';

const SHOWN_LAYERS = 3;

const mb = (n: number): string => (n / 1e6).toFixed(1);

/**
 * One status line on a TTY: layers done, the bytes of the layers in flight,
 * and the overall rate. Redrawn at most 10 times a second.
 */
export class ProgressRenderer {
  private readonly bytes = new Map<string, number>();
  private readonly sizes = new Map<string, number>();
  private readonly active = new Set<string>();
  private readonly done = new Set<string>();
  private readonly started = Date.now();
  private total = 0;
  private lastDraw = 0;
  private finished = false;

  constructor(private readonly out: WriteStream) {}

  readonly listener: ProgressListener = (event: ProgressEvent): void => {
    switch (event.type) {
      case 'resolved':
        this.total = event.layers;
        break;
      case 'layer-bytes':
        this.bytes.set(event.digest, event.bytes);
        break;
      case 'layer-state':
        this.sizes.set(event.digest, event.size);
        if (event.state === 'fetching' || event.state === 'shared') this.active.add(event.digest);
        if (event.state === 'committed' || event.state === 'cached') {
          this.active.delete(event.digest);
          this.done.add(event.digest);
        }
        if (event.state === 'failed') this.active.delete(event.digest);
        break;
      default:
        break;
    }
    this.draw(event.type !== 'layer-bytes');
  };

  private draw(force: boolean): void {
    const now = Date.now();
    if (this.finished || (!force && now - this.lastDraw < 100)) return;
    this.lastDraw = now;
    let got = 0;
    for (const v of this.bytes.values()) got += v;
    let want = 0;
    for (const v of this.sizes.values()) want += v;
    const rate = got / Math.max((now - this.started) / 1000, 0.001) / 1e6;
    const layers = [...this.active].slice(0, SHOWN_LAYERS).map((d) =>
      `${d.slice(7, 19)} ${mb(this.bytes.get(d) ?? 0)}/${mb(this.sizes.get(d) ?? 0)}`);
    const more = this.active.size > SHOWN_LAYERS ? ` +${this.active.size - SHOWN_LAYERS}` : '';
    const line = `layers ${this.done.size}/${this.total}  ${mb(got)}/${mb(want)} MB  ${rate.toFixed(1)} MB/s${layers.length ? `  | ${layers.join(' | ')}${more}` : ''}`;
    const width = this.out.columns || 120;
    this.out.write(`\r\x1b[K${line.slice(0, width - 1)}`);
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.out.write('\r\x1b[K');
  }
}
