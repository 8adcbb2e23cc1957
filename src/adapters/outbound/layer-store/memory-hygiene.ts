import { runInNewContext } from 'node:vm';

type Gc = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

/**
 * The chunks of a layer stream live outside V8's heap, and V8 frees them only
 * when their small JS wrappers are collected, which it postpones until tens
 * of megabytes of chunks have piled up. A scavenge every 4 MB keeps
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
const EVERY = 4 * 1024 * 1024;

/** Counts bytes and runs a young-generation GC every 4 MB. */
export class ChunkGc {
  private since = 0;

  seen(bytes: number): void {
    if (!gc) return;
    this.since += bytes;
    if (this.since >= EVERY) {
      this.since = 0;
      gc({ type: 'minor' });
    }
  }
}
