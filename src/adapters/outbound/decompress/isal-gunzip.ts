import { Transform, type TransformCallback } from 'node:stream';
import type { GunzipHandle, NativeSyscalls } from '../native/syscalls.js';

/**
 * Below glibc's mmap threshold, so output chunks come from reused heap memory
 * rather than fresh pages: a page fault per 4 KB is costly on these VMs.
 */
const CHUNK = 64 * 1024;

type Isal = Required<Pick<NativeSyscalls, 'gunzipOpen' | 'gunzipPush' | 'gunzipEnd'>>;

/** The addon's ISA-L decoder, when it was built with libisal. */
export function isalOf(native: NativeSyscalls | undefined): Isal | undefined {
  if (!native?.gunzipOpen || !native.gunzipPush || !native.gunzipEnd) return undefined;
  return { gunzipOpen: native.gunzipOpen, gunzipPush: native.gunzipPush, gunzipEnd: native.gunzipEnd };
}

/**
 * gzip decoded in process by ISA-L, synchronously on the calling thread: at
 * about 700 MB/s it fits in the time the main thread otherwise waits, and
 * saves the pipe to an igzip process (a kernel copy each way and a fresh
 * buffer per read) for every decompressed byte (bench/NOTES.md).
 */
export class IsalGunzip extends Transform {
  private readonly handle: GunzipHandle;

  constructor(private readonly isal: Isal) {
    super({ readableHighWaterMark: 1024 * 1024 });
    this.handle = isal.gunzipOpen();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let out: (Buffer | number)[];
    try {
      out = this.isal.gunzipPush(this.handle, chunk, CHUNK);
    } catch (err) {
      cb(err as Error);
      return;
    }
    for (let i = 0; i < out.length; i += 2) {
      const buf = out[i] as Buffer;
      const used = out[i + 1] as number;
      this.push(used === buf.length ? buf : buf.subarray(0, used));
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.isal.gunzipEnd(this.handle);
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb();
  }
}
