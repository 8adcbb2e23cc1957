import type { DCtx } from 'zstd-napi/binding.js';
import { lazyRequire } from '../lazy.js';
import { BoundedDecoder, STEP_OUTPUT } from './bounded-decoder.js';

/** The low-level binding: zstd-napi has no exports map, so its subpath resolves. */
const binding = lazyRequire<typeof import('zstd-napi/binding.js')>('zstd-napi/binding.js');

/** Below glibc's mmap threshold, as isal-gunzip.ts's chunks; zstd copies out of its own window buffer anyway. */
const CHUNK = 64 * 1024;
const STEP_CHUNKS = STEP_OUTPUT / CHUNK;

/**
 * zstd's own default limit (a 128 MB window), set here so that no default
 * of a later zstd-napi raises it: a frame may ask the decoder for up to 2 GB.
 */
const WINDOW_LOG_MAX = 27;

/**
 * zstd decoded in process by zstd-napi's streaming context, in bounded steps
 * (zstd-napi's DecompressStream decodes a whole written chunk at once).
 * Frames follow one another; zstd skips skippable frames itself.
 */
export class ZstdDecoder extends BoundedDecoder {
  private dctx: DCtx | null;
  /** zstd's hint after the last call: 0 when a frame has just ended and been flushed. */
  private hint = 0;
  /** An output buffer left empty by the last call, for the next. */
  private spare: Buffer | null = null;

  constructor() {
    super();
    const zstd = binding();
    this.dctx = new zstd.DCtx();
    this.dctx.setParameter(zstd.DParameter.windowLogMax, WINDOW_LOG_MAX);
  }

  protected override step(input: Buffer, out: Buffer[]): number {
    const dctx = this.dctx!;
    let consumed = 0;
    for (let n = 0; n < STEP_CHUNKS; n++) {
      const dst = this.spare ?? Buffer.allocUnsafe(CHUNK);
      const [hint, produced, used] = dctx.decompressStream(dst, consumed === 0 ? input : input.subarray(consumed));
      this.hint = hint;
      consumed += used;
      if (produced > 0) {
        this.spare = null;
        out.push(produced === CHUNK ? dst : dst.subarray(0, produced));
      } else {
        this.spare = dst;
      }
      // A full buffer may leave output in zstd's window, unless the frame ended with it (hint 0);
      // a short one means zstd flushed all it had.
      this.more = produced === CHUNK && hint !== 0;
      if (!this.more && consumed === input.length) break;
    }
    return consumed;
  }

  protected override finish(): void {
    if (this.hint !== 0) throw new Error('Stream ended in middle of compressed data frame');
  }

  protected override release(): void {
    this.dctx = null; // zstd-napi frees the context when collected
    this.spare = null;
  }
}
