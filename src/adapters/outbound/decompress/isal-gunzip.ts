import type { GunzipHandle, NativeSyscalls } from '../native/syscalls.js';
import { BoundedDecoder, STEP_OUTPUT } from './bounded-decoder.js';

/**
 * Below glibc's mmap threshold, so output chunks come from reused heap memory
 * rather than fresh pages: a page fault per 4 KB is costly on these VMs.
 */
const CHUNK = 64 * 1024;
const STEP_CHUNKS = STEP_OUTPUT / CHUNK;

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
export class IsalGunzip extends BoundedDecoder {
  private handle: GunzipHandle | null;

  constructor(private readonly isal: Isal) {
    super();
    this.handle = isal.gunzipOpen();
  }

  protected override step(input: Buffer, out: Buffer[]): number {
    const r = this.isal.gunzipPush(this.handle!, input, CHUNK, STEP_CHUNKS);
    for (let i = 2; i < r.length; i += 2) {
      const buf = r[i] as Buffer;
      const used = r[i + 1] as number;
      out.push(used === buf.length ? buf : buf.subarray(0, used));
    }
    this.more = r[1];
    return r[0];
  }

  protected override finish(): void {
    this.isal.gunzipEnd(this.handle!);
  }

  protected override release(): void {
    this.handle = null; // the addon frees it when collected
  }
}
