import { runInNewContext } from 'node:vm';

type Gc = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

/**
 * The chunks of a layer stream live outside V8's heap, and V8 frees them only
 * when their small JS wrappers are collected, which it postpones until tens
 * of megabytes of chunks have piled up. A scavenge every 4 MB (and an incremental full GC every 64 MB) keeps
 * peak RSS near the pipeline's real buffers (bench/NOTES.md). It needs
 * --expose-gc, which the CLI sets at start; without it this is a no-op.
 */
function findGc(): Gc | undefined {
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') return own as Gc;
  try {
    // A context made after --expose-gc was set carries gc even if this one does not.
    const fromNew = runInNewContext('typeof gc === "function" ? gc : undefined') as unknown;
    return typeof fromNew === 'function' ? (fromNew as Gc) : undefined;
  } catch {
    return undefined;
  }
}

const gc = findGc();
const MINOR_EVERY = 4 * 1024 * 1024;
/** Chunks still in flight during a scavenge get promoted; an incremental full GC frees them later. */
const MAJOR_EVERY = 64 * 1024 * 1024;

/** Counts bytes: a young-generation GC every 4 MB, an incremental full GC every 64 MB. */
export class ChunkGc {
  private sinceMinor = 0;
  private sinceMajor = 0;

  seen(bytes: number): void {
    if (!gc) return;
    this.sinceMinor += bytes;
    this.sinceMajor += bytes;
    if (this.sinceMajor >= MAJOR_EVERY) {
      this.sinceMajor = 0;
      this.sinceMinor = 0;
      gc({ type: 'major', execution: 'async' });
    } else if (this.sinceMinor >= MINOR_EVERY) {
      this.sinceMinor = 0;
      gc({ type: 'minor' });
    }
  }
}
