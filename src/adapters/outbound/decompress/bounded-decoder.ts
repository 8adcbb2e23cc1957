import { Duplex } from 'node:stream';

/**
 * Output one step may add at most (about): with the readable buffer's high
 * water mark, what a decoder holds whatever the compression ratio. zstd turns
 * 16 KB of zeros into gigabytes, gzip 256 KB into 256 MB.
 */
export const STEP_OUTPUT = 1024 * 1024;

type Callback = (err?: Error | null) => void;

/**
 * A decoder that feels its consumer's backpressure: it decodes in bounded
 * steps and stops when push() says the readable side is full, resuming from
 * _read(). A written chunk's callback waits until the chunk is consumed and
 * no output is pending, so input waits upstream, compressed, rather than
 * here decompressed. (Transform cannot do this: _transform must decode its
 * whole chunk before the next _read.)
 */
export abstract class BoundedDecoder extends Duplex {
  /** Set by step(): output may be pending without further input (the next step, even on no input, yields it). */
  protected more = false;
  private input: Buffer | null = null;
  private offset = 0;
  private writeCb: Callback | null = null;
  /** Whether the consumer takes more: false once push() said the buffer is full, until _read(). */
  private wanted = true;
  /** _read() calls, so that a read asked for during a push is not lost to that push's false. */
  private reads = 0;
  private pumping = false;
  private readonly out: Buffer[] = [];

  constructor() {
    super({ readableHighWaterMark: 1024 * 1024 });
  }

  /**
   * Decodes from the start of `input`, appending to `out` at most about
   * STEP_OUTPUT bytes; returns the input bytes consumed, and sets `more`.
   * Throws on corrupt data. Must make progress: consume input or yield output.
   */
  protected abstract step(input: Buffer, out: Buffer[]): number;

  /** At the end of the input: throws unless the stream ended cleanly (not in the middle of a frame or member). */
  protected abstract finish(): void;

  /** Frees the codec's state; no step follows. */
  protected abstract release(): void;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: Callback): void {
    this.input = chunk;
    this.offset = 0;
    this.writeCb = cb;
    this.pump();
  }

  override _read(): void {
    this.reads++;
    this.wanted = true;
    this.pump();
  }

  override _final(cb: Callback): void {
    // Every write's callback has run, so all input is consumed and no output pending.
    try {
      this.finish();
    } catch (err) {
      cb(err as Error);
      return;
    }
    this.push(null);
    cb();
  }

  override _destroy(err: Error | null, cb: Callback): void {
    this.input = null;
    this.writeCb = null;
    this.out.length = 0;
    this.release();
    cb(err);
  }

  private pump(): void {
    // push() and a write callback can call back in (_read, _write): the running loop sees what they changed.
    if (this.pumping) return;
    this.pumping = true;
    const out = this.out;
    try {
      while (this.input !== null && this.wanted) {
        const input = this.input;
        if (this.offset === input.length && !this.more) {
          const cb = this.writeCb!;
          this.input = null;
          this.writeCb = null;
          cb(); // may write the next chunk, synchronously
          continue;
        }
        let consumed: number;
        try {
          consumed = this.step(this.offset === 0 ? input : input.subarray(this.offset), out);
          // (An empty step is fine after `more`, which only says that output may be pending.)
          if (consumed === 0 && out.length === 0 && !this.more && this.offset < input.length) throw new Error('decoder made no progress');
        } catch (err) {
          const cb = this.writeCb!;
          this.input = null;
          this.writeCb = null;
          cb(err as Error);
          return;
        }
        this.offset += consumed;
        for (let i = 0; i < out.length; i++) {
          const reads = this.reads;
          if (!this.push(out[i]) && this.reads === reads) this.wanted = false;
        }
        out.length = 0;
      }
    } finally {
      out.length = 0; // a consumer that threw from a push must not see those outputs again
      this.pumping = false;
    }
  }
}
