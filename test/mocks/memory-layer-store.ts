import { Writable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { ImageTsError, LimitExceededError, asImageTsError } from '../../src/domain/errors.js';
import { Digest } from '../../src/domain/image/digest.js';
import { numeric } from '../../src/adapters/outbound/layer-store/tar-header.js';
import { entrySegments } from '../../src/domain/layer/entry-path.js';
import { LIMIT_NAMES, type EntryLimits } from '../../src/domain/layer/unpack-limits.js';
import type { CommittedLayer, IngestLock, LayerStore, LayerWriter, StageOptions, WhiteoutFormat } from '../../src/ports/layer/layer-store.js';

export interface MemoryEntry {
  readonly type: string;
  readonly mode: number;
  readonly linkpath?: string | undefined;
  readonly content?: Buffer | undefined;
  /** As the tar had it; a snapshotter that writes a rootfs keeps it. */
  readonly mtime?: Date | undefined;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function isUtf8(bytes: Buffer): boolean {
  try {
    UTF8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** A header field's bytes up to its first NUL. */
function field(block: Buffer, off: number, len: number): Buffer {
  const f = block.subarray(off, off + len);
  const nul = f.indexOf(0);
  return nul < 0 ? f : f.subarray(0, nul);
}

/**
 * Reads the tar's framing beside node-tar to find what this model cannot
 * hold, and refuse it with UNSUPPORTED rather than make something else:
 * node-tar decodes names as UTF-8 (losing bytes that are not) and drops
 * GNU sparse maps (keeping the packed data as the file).
 */
class Unmodelled {
  private header = Buffer.alloc(0);
  private skip = 0;
  private body: { remaining: number; chunks: Buffer[]; type: string } | undefined;

  /** The first unmodelled feature in `chunk`, if any. */
  scan(chunk: Buffer): string | undefined {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - pos);
        if (this.body) {
          const take = Math.min(n, this.body.remaining);
          this.body.chunks.push(chunk.subarray(pos, pos + take));
          this.body.remaining -= take;
          if (this.body.remaining === 0) {
            const found = this.meta(this.body.type, Buffer.concat(this.body.chunks));
            this.body = undefined;
            if (found) return found;
          }
        }
        this.skip -= n;
        pos += n;
        continue;
      }
      const need = 512 - this.header.length;
      this.header = Buffer.concat([this.header, chunk.subarray(pos, pos + need)]);
      pos += Math.min(need, chunk.length - pos);
      if (this.header.length < 512) break;
      const block = this.header;
      this.header = Buffer.alloc(0);
      if (block.every((b) => b === 0)) continue;
      const type = String.fromCharCode(block[156]!);
      const size = numeric(block, 124, 12) ?? 0;
      this.skip = Math.ceil(size / 512) * 512;
      if (type === 'S') return 'GNU sparse files';
      if (type === 'x' || type === 'L' || type === 'K') {
        if (size > 0) this.body = { remaining: size, chunks: [], type };
        continue;
      }
      const names = [Buffer.concat([field(block, 345, 155), field(block, 0, 100)]), field(block, 157, 100)];
      if (!names.every(isUtf8)) return 'names that are not UTF-8';
    }
    return undefined;
  }

  private meta(type: string, body: Buffer): string | undefined {
    if (type !== 'x') return isUtf8(body) ? undefined : 'names that are not UTF-8';
    const text = body.toString('latin1');
    if (text.includes(' GNU.sparse.')) return 'GNU sparse files';
    if (text.includes(' hdrcharset=BINARY')) return 'names that are not UTF-8';
    return undefined;
  }
}

interface MemoryLayer {
  readonly committed: CommittedLayer;
  readonly entries: ReadonlyMap<string, MemoryEntry>;
}

/** Collects a tar's entries by normalized path (later entries win). */
class TarCollector extends Writable {
  readonly entries = new Map<string, MemoryEntry>();
  count = 0;
  bytes = 0;
  streamBytes = 0;

  constructor(private readonly limits: EntryLimits = {}) {
    super();
  }

  private readonly parser = new Parser({
    onReadEntry: (entry: ReadEntry) => this.onEntry(entry),
  });

  private onEntry(entry: ReadEntry): void {
    this.count++;
    const { maxEntriesPerLayer: maxEntries, maxPathBytes: maxPath } = this.limits;
    if (maxEntries !== undefined && this.count > maxEntries) {
      this.destroy(new LimitExceededError(LIMIT_NAMES.maxEntriesPerLayer, `more than ${maxEntries} entries`));
      return;
    }
    if (maxPath !== undefined && [entry.path, entry.linkpath ?? ''].some((p) => Buffer.byteLength(p) > maxPath)) {
      this.destroy(new LimitExceededError(LIMIT_NAMES.maxPathBytes, `a path of more than ${maxPath} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    entry.on('data', (c: Buffer) => chunks.push(c));
    entry.on('end', () => {
      const content = Buffer.concat(chunks);
      this.bytes += entry.type === 'File' ? content.length : 0;
      let key: string;
      try {
        key = entrySegments(entry.path).join('/');
      } catch (err) {
        this.destroy(asImageTsError(err));
        return;
      }
      this.entries.set(key, {
        type: entry.type,
        mode: entry.mode ?? 0,
        linkpath: entry.linkpath,
        content: entry.type === 'File' ? content : undefined,
        mtime: entry.mtime,
      });
    });
  }

  private readonly unmodelled = new Unmodelled();

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.streamBytes += chunk.length;
    const feature = this.unmodelled.scan(chunk);
    if (feature) {
      cb(new ImageTsError('UNSUPPORTED', `the memory layer store does not model ${feature}`));
      return;
    }
    if (this.parser.write(chunk)) cb();
    else this.parser.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.parser.end(() => cb());
  }
}

/** Layers in memory; `path` is a fake `memory://` location. Counts stage() calls. */
export class MemoryLayerStore implements LayerStore {
  readonly whiteoutFormat: WhiteoutFormat = 'marker';
  readonly layers = new Map<string, MemoryLayer>();
  private readonly staging = new Set<object>();
  stageCalls = 0;

  async get(diffId: Digest): Promise<CommittedLayer | undefined> {
    return this.layers.get(diffId.toString())?.committed;
  }

  /** The unpacked entries of a committed layer, for assertions. */
  entries(diffId: Digest): ReadonlyMap<string, MemoryEntry> | undefined {
    return this.layers.get(diffId.toString())?.entries;
  }

  async stage(diffId: Digest, options: StageOptions = {}): Promise<LayerWriter> {
    this.stageCalls++;
    const sink = new TarCollector(options.limits);
    const token = {};
    this.staging.add(token);
    let state: 'open' | 'committed' | 'aborted' = 'open';
    return {
      sink,
      commit: async () => {
        if (state !== 'open') throw new ImageTsError('INTERNAL', `commit of a layer that was already ${state}`);
        if (!this.staging.has(token)) throw new ImageTsError('STORE', 'staging was cleaned');
        if (!sink.writableFinished) throw new ImageTsError('INTERNAL', 'commit before the layer stream ended');
        state = 'committed';
        this.staging.delete(token);
        const existing = this.layers.get(diffId.toString());
        if (existing) return existing.committed;
        const committed: CommittedLayer = {
          diffId,
          path: `memory://${diffId.encoded}`,
          whiteoutFormat: this.whiteoutFormat,
          size: sink.bytes,
          entries: sink.count,
          unpackedBytes: sink.streamBytes,
        };
        this.layers.set(diffId.toString(), { committed, entries: sink.entries });
        return committed;
      },
      abort: async () => {
        if (state === 'committed') return;
        state = 'aborted';
        this.staging.delete(token);
        if (!sink.destroyed) sink.destroy();
      },
    };
  }

  async remove(diffId: Digest): Promise<void> {
    this.layers.delete(diffId.toString());
  }

  async list(): Promise<Digest[]> {
    return [...this.layers.keys()].sort().map((d) => Digest.parse(d));
  }

  /** Ingests held, and who waits for each to end: one store object stands for the processes sharing a store. */
  private readonly ingests = new Map<string, (() => void)[]>();

  async tryIngest(diffId: Digest): Promise<IngestLock | undefined> {
    const key = diffId.toString();
    if (this.ingests.has(key)) return undefined;
    this.ingests.set(key, []);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const waiters = this.ingests.get(key) ?? [];
        this.ingests.delete(key);
        for (const w of waiters) w();
      },
    };
  }

  async waitIngest(diffId: Digest, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const waiters = this.ingests.get(diffId.toString());
    if (!waiters) return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal?.reason);
      waiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Staging here lives and dies with this process: nothing is ever stale. */
  async cleanStaging(): Promise<number> {
    return 0;
  }
}
