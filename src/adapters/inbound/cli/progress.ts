import type { WriteStream } from 'node:tty';
import type { ProgressEvent, ProgressListener } from '../../../ports/observability/progress.js';

/** One status line on a TTY: layers done, bytes and overall rate. Redrawn at most 10 times a second. */
export class ProgressRenderer {
  private readonly bytes = new Map<string, number>();
  private readonly sizes = new Map<string, number>();
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
        this.sizes.set(event.digest, event.size);
        break;
      case 'layer-state':
        this.sizes.set(event.digest, event.size);
        if (event.state === 'committed' || event.state === 'cached') this.done.add(event.digest);
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
    this.out.write(`\r\x1b[Klayers ${this.done.size}/${this.total}  ${(got / 1e6).toFixed(1)}/${(want / 1e6).toFixed(1)} MB  ${rate.toFixed(1)} MB/s`);
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.out.write('\r\x1b[K');
  }
}
