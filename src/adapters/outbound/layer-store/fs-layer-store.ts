import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { chmod, lstat, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageTsError, UnsupportedError, asImageTsError } from '../../../domain/errors.js';
import { Digest } from '../../../domain/image/digest.js';
import type { CommittedLayer, IngestLock, LayerFormat, LayerImage, LayerStore, LayerFootprint, LayerWriter, LowerLink, StageOptions, WhiteoutFormat } from '../../../ports/layer/layer-store.js';
import type { Logger } from '../../../ports/observability/logger.js';
import { FlockOps, errnoCode, tryNativeSyscalls, type NativeSyscalls } from '../native/syscalls.js';
import type { Degradation } from './tar-unpacker.js';
import { WorkerTarUnpacker } from './worker-unpacker.js';
import { processAlive } from '../process-alive.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../silent-logger.js';
import { buildErofsLayer, type ErofsLayerOptions, type StoredImage } from '../erofs/erofs-layer.js';
import { canBuildErofs } from '../erofs/mkfs-erofs.js';
import { treeBytes } from './tree-bytes.js';

/** How often a process waiting for another's ingest looks again; the holder's layer is usually seconds away. */
const INGEST_POLL_MS = 100;

export interface FsLayerStoreOptions {
  /** Default: 'overlay' when root and the native helper can make whiteouts here, else 'marker'. */
  readonly whiteoutFormat?: WhiteoutFormat | undefined;
  readonly logger?: Logger | undefined;
  /**
   * Where tar entries become files: a worker thread (default), so the main
   * thread keeps the download and digests moving, or the main thread.
   */
  readonly unpackIn?: 'worker' | 'main' | undefined;
  /** The format of a stage that names none (default `directory`). */
  readonly defaultFormat?: LayerFormat | undefined;
  /** How `erofs` layers are built: lz4 and a dm-verity tree unless told otherwise. */
  readonly erofs?: Partial<ErofsLayerOptions> | undefined;
}

const IMAGE_FILE = 'layer.erofs';
const VERITY_FILE = 'layer.verity';

/** Contents of layer.json, the commit marker. */
interface LayerRecord {
  diffId: string;
  size: number;
  entries: number;
  whiteoutFormat: WhiteoutFormat;
  unpackedBytes?: number;
  implicitDirs?: string[];
  whiteoutOnlyDirs?: string[];
  lowerLinks?: LowerLink[];
  /** Absent: directory. */
  format?: LayerFormat;
  image?: StoredImage;
}

/**
 * rm -rf that also works without root: layers may hold read-only
 * directories (0555), which an unprivileged process cannot empty. On
 * EACCES/EPERM, directories get u+rwx (never through a symlink) and the
 * removal is retried once.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
  }
  const open = async (dir: string): Promise<void> => {
    await chmod(dir, 0o700).catch(() => undefined);
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await open(join(dir, e.name));
  };
  if ((await lstat(path).catch(() => undefined))?.isDirectory()) await open(path);
  await rm(path, { recursive: true, force: true });
}

/** The record's image with its files' paths in `dir`. */
function layerImage(dir: string, stored: StoredImage): LayerImage {
  const { verity, ...rest } = stored;
  return { ...rest, ...(verity ? { verity: { ...verity, hashPath: join(dir, VERITY_FILE) } } : {}) };
}

function committedLayer(diffId: Digest, dir: string, r: LayerRecord): CommittedLayer {
  const erofs = r.format === 'erofs' && r.image;
  return {
    diffId, path: join(dir, erofs ? IMAGE_FILE : 'diff'), whiteoutFormat: r.whiteoutFormat, size: r.size, entries: r.entries,
    ...(erofs ? { format: 'erofs' as const, image: layerImage(dir, r.image!) } : {}),
    ...(r.unpackedBytes !== undefined ? { unpackedBytes: r.unpackedBytes } : {}),
    ...(r.implicitDirs ? { implicitDirs: r.implicitDirs } : {}),
    ...(r.whiteoutOnlyDirs ? { whiteoutOnlyDirs: r.whiteoutOnlyDirs } : {}),
    ...(r.lowerLinks ? { lowerLinks: r.lowerLinks } : {}),
  };
}

/** Whether the open file is still the one at path (not unlinked or replaced by a releasing holder). */
function sameFile(fd: number, path: string): boolean {
  const at = fs.statSync(path, { throwIfNoEntry: false });
  return at !== undefined && at.ino === fs.fstatSync(fd).ino;
}

/** Unlink, then close: the path is free before the lock is. */
function ingestLock(fd: number, path: string): IngestLock {
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      try {
        fs.unlinkSync(path);
      } catch {
        // removed by cleanIngest of a process that took it after us; nothing else to undo
      }
      fs.closeSync(fd);
    },
  };
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function storedImage(v: unknown): v is StoredImage {
  const i = v as Partial<StoredImage> | null | undefined;
  return !!i && typeof i.bytes === 'number' && typeof i.sha256 === 'string' && /^[0-9a-f]{64}$/.test(i.sha256) &&
    (i.compression === 'lz4' || i.compression === 'lz4hc') &&
    (i.verity === undefined || (typeof i.verity.rootHash === 'string' && typeof i.verity.dataBlocks === 'number'));
}

function parseRecord(text: string, diffId: Digest): LayerRecord | undefined {
  try {
    const r = JSON.parse(text) as Partial<LayerRecord> | null;
    if (
      r && r.diffId === diffId.toString() &&
      typeof r.size === 'number' && typeof r.entries === 'number' &&
      (r.whiteoutFormat === 'overlay' || r.whiteoutFormat === 'marker')
    ) {
      const paths = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined);
      const links = (v: unknown): LowerLink[] | undefined =>
        Array.isArray(v) && v.every((x) => Array.isArray(x) && x.length === 2 && x.every((p) => typeof p === 'string')) ? (v as LowerLink[]) : undefined;
      if (r.format !== undefined && r.format !== 'directory' && !(r.format === 'erofs' && storedImage(r.image))) return undefined;
      return {
        ...(r.format === 'erofs' ? { format: r.format, image: r.image! } : {}),
        diffId: r.diffId, size: r.size, entries: r.entries, whiteoutFormat: r.whiteoutFormat,
        unpackedBytes: typeof r.unpackedBytes === 'number' ? r.unpackedBytes : undefined,
        implicitDirs: paths(r.implicitDirs), whiteoutOnlyDirs: paths(r.whiteoutOnlyDirs), lowerLinks: links(r.lowerLinks),
      };
    }
  } catch {
    // not committed
  }
  return undefined;
}

/**
 * Unpacked layers on disk:
 *
 *   <root>/layers/<alg>/<hex>/diff/        the tree (CommittedLayer.path)
 *   <root>/layers/<alg>/<hex>/layer.json   commit marker
 *   <root>/staging/<random>/               layers being unpacked, and layers being removed
 *
 * A layer becomes visible by one rename of its fully written staging dir
 * (layer.json included), and stops being visible by one rename back into
 * staging before it is deleted, so readers never see half a layer. Files are
 * not fsynced one by one (that would dominate unpack time); a crash at the
 * wrong moment can leave a committed layer with lost data, which is the
 * trade every container store makes here.
 */
/** `<pid>-<random>`: the pid tells cleanStaging whether the owner still runs. */
function stagingName(): string {
  return `${process.pid}-${randomBytes(12).toString('hex')}`;
}

export class FsLayerStore implements LayerStore {
  private readonly layersDir: string;
  private readonly stagingDir: string;
  private readonly ingestDir: string;
  private readonly logger: Logger;
  private format: WhiteoutFormat | undefined;
  private readonly warned = new Set<Degradation>();
  private readonly unpackIn: 'worker' | 'main';
  private readonly erofs: ErofsLayerOptions;
  private readonly defaultFormat: LayerFormat;

  constructor(
    private readonly root: string,
    options: FsLayerStoreOptions = {},
  ) {
    this.layersDir = join(root, 'layers');
    this.stagingDir = join(root, 'staging');
    this.ingestDir = join(root, 'ingest');
    this.logger = options.logger ?? silentLogger;
    this.format = options.whiteoutFormat;
    this.unpackIn = options.unpackIn ?? 'worker';
    this.defaultFormat = options.defaultFormat ?? 'directory';
    this.erofs = { compression: options.erofs?.compression ?? 'lz4', verity: options.erofs?.verity ?? true };
  }

  /** Probed once, on first use: can this process make overlay whiteouts in the store? */
  get whiteoutFormat(): WhiteoutFormat {
    this.format ??= this.probeOverlayFormat() ? 'overlay' : 'marker';
    return this.format;
  }

  private probeOverlayFormat(): boolean {
    const native = tryNativeSyscalls();
    if (!isRoot() || !native) return false;
    let probe: string | undefined;
    try {
      // In staging, under our pid: a probe cut short by kill -9 is cleaned like any staging.
      fs.mkdirSync(this.stagingDir, { recursive: true });
      probe = join(this.stagingDir, `${stagingName()}.probe`);
      fs.mkdirSync(probe);
      native.mknod(join(probe, 'wh'), fs.constants.S_IFCHR, 0, 0);
      native.lsetxattr(probe, 'trusted.overlay.opaque', Buffer.from('y'));
      return true;
    } catch (err) {
      this.logger.log('info', 'layer-store-marker-whiteouts', { reason: errnoCode(err) ?? String(err) });
      return false;
    } finally {
      if (probe) fs.rmSync(probe, { recursive: true, force: true });
    }
  }

  private layerDir(diffId: Digest): string {
    return join(this.layersDir, diffId.algorithm, diffId.encoded);
  }

  async get(diffId: Digest): Promise<CommittedLayer | undefined> {
    const dir = this.layerDir(diffId);
    let text: string;
    try {
      text = await readFile(join(dir, 'layer.json'), 'utf8');
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw asImageTsError(err);
    }
    const r = parseRecord(text, diffId);
    return r && committedLayer(diffId, dir, r);
  }

  async stage(diffId: Digest, options: StageOptions = {}): Promise<LayerWriter> {
    const format = this.whiteoutFormat;
    const layerFormat = options.format ?? this.defaultFormat;
    // Refused before any byte is fetched: an erofs layer keeps overlay whiteouts, which take root to make.
    if (layerFormat === 'erofs') {
      if (format !== 'overlay') throw new UnsupportedError('the erofs layer format needs root (overlay whiteouts in the image)');
      if (!canBuildErofs()) throw new UnsupportedError('the erofs layer format needs mkfs.erofs (erofs-utils), which is not installed');
    }
    const privileged = isRoot();
    const staging = join(this.stagingDir, stagingName());
    const diff = join(staging, 'diff');
    try {
      await mkdir(diff, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw asImageTsError(err);
    }
    const onDegraded = (what: Degradation, entry: string): void => this.degraded(what, entry);
    // The unpacker loads only where it runs: in the worker, or here when asked to unpack in-process (a warm pull never needs it).
    const sink = this.unpackIn === 'worker'
      ? new WorkerTarUnpacker({ root: diff, whiteoutFormat: format, privileged, limits: options.limits }, onDegraded)
      : new (await import('./tar-unpacker.js')).TarUnpacker({ root: diff, whiteoutFormat: format, privileged, onDegraded, limits: options.limits });
    let state: 'open' | 'committed' | 'aborted' = 'open';

    const commit = async (): Promise<CommittedLayer> => {
      if (state !== 'open') throw new ImageTsError('INTERNAL', `commit of a layer that was already ${state}`);
      if (sink.errored) throw asImageTsError(sink.errored);
      if (!sink.writableFinished) throw new ImageTsError('INTERNAL', 'commit before the layer stream ended');
      state = 'committed';
      const { entries, bytes, streamBytes, implicitDirs, whiteoutOnlyDirs, lowerLinks } = sink.stats;
      const record: LayerRecord = { diffId: diffId.toString(), size: bytes, entries, whiteoutFormat: format, unpackedBytes: streamBytes };
      if (implicitDirs?.length) record.implicitDirs = [...implicitDirs];
      if (whiteoutOnlyDirs?.length) record.whiteoutOnlyDirs = [...whiteoutOnlyDirs];
      if (lowerLinks?.length) record.lowerLinks = [...lowerLinks];
      const final = this.layerDir(diffId);
      try {
        if (layerFormat === 'erofs') {
          record.format = 'erofs';
          record.image = await buildErofsLayer(diff, join(staging, IMAGE_FILE), join(staging, VERITY_FILE), this.erofs);
          // The tree was only the builder's input: from here on the image is the layer.
          await removeTree(diff);
        }
        await writeFile(join(staging, 'layer.json'), JSON.stringify(record));
        await mkdir(join(this.layersDir, diffId.algorithm), { recursive: true });
        for (let attempt = 0; ; attempt++) {
          try {
            await rename(staging, final);
            break;
          } catch (err) {
            const code = errnoCode(err);
            if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt > 0) throw err;
          }
          // Someone committed it first: theirs wins. A leftover without layer.json is not committed; clear it.
          const existing = await this.get(diffId);
          if (existing) {
            await removeTree(staging);
            return existing;
          }
          await this.discard(final);
        }
      } catch (err) {
        await removeTree(staging).catch(() => undefined);
        throw asImageTsError(err);
      }
      return committedLayer(diffId, final, record);
    };

    const abort = async (): Promise<void> => {
      if (state === 'committed') return;
      state = 'aborted';
      if (!sink.destroyed) sink.destroy();
      try {
        await removeTree(staging);
      } catch (err) {
        throw asImageTsError(err);
      }
    };

    return { sink, commit, abort };
  }

  /**
   * `ingest/<alg>-<hex>.lock`, flock'ed by its holder: the kernel drops the
   * lock when the holder exits or is killed, so a waiter takes over at once
   * and no pid needs checking. The holder unlinks the file before it lets go;
   * a process that locked the old, unlinked file sees that its path now names
   * another file (or none) and tries again. Without the addon there is no
   * flock, and processes do not share work (each still commits safely).
   */
  async tryIngest(diffId: Digest): Promise<IngestLock | undefined> {
    const native = tryNativeSyscalls();
    if (typeof native?.flock !== 'function') return { release: () => undefined };
    const path = join(this.ingestDir, `${diffId.algorithm}-${diffId.encoded}.lock`);
    try {
      fs.mkdirSync(this.ingestDir, { recursive: true, mode: 0o700 });
      for (;;) {
        const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
        let held = false;
        try {
          held = native.flock(fd, FlockOps.LOCK_EX | FlockOps.LOCK_NB);
          if (held && sameFile(fd, path)) {
            fs.writeSync(fd, `${process.pid}\n`, 0);
            return ingestLock(fd, path);
          }
        } catch (err) {
          fs.closeSync(fd);
          throw err;
        }
        fs.closeSync(fd);
        if (!held) return undefined;
      }
    } catch (err) {
      throw asImageTsError(err);
    }
  }

  async waitIngest(diffId: Digest, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const lock = await this.tryIngest(diffId);
      if (lock) {
        lock.release();
        return;
      }
      // The signal's own reason, as throwIfAborted gives it (a pull's deadline is a NETWORK error).
      await sleep(INGEST_POLL_MS, undefined, { signal }).catch((err: unknown) => {
        signal?.throwIfAborted();
        throw err;
      });
    }
  }

  /** Lock files that no one holds: left by processes that died holding them. */
  private cleanIngest(native: NativeSyscalls): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.ingestDir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(this.ingestDir, name);
      let fd: number;
      try {
        fd = fs.openSync(path, fs.constants.O_RDWR);
      } catch {
        continue;
      }
      if (native.flock(fd, FlockOps.LOCK_EX | FlockOps.LOCK_NB) && sameFile(fd, path)) ingestLock(fd, path).release();
      else fs.closeSync(fd);
    }
  }

  private degraded(what: Degradation, entry: string): void {
    if (this.warned.has(what)) return;
    this.warned.add(what);
    const why: Record<Degradation, string> = {
      ownership: 'not running as root: file owners in layers are not kept',
      device: 'not running as root: device nodes in layers are skipped',
      xattr: 'extended attributes that this filesystem or process cannot set are skipped',
    };
    this.logger.log('warn', 'layer-unpack-degraded', { what, example: entry, message: why[what] });
  }

  /** Takes a directory out of sight with one rename, then deletes it. */
  private async discard(dir: string): Promise<void> {
    const trash = join(this.stagingDir, `${stagingName()}.rm`);
    try {
      await mkdir(this.stagingDir, { recursive: true });
      await rename(dir, trash);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw asImageTsError(err);
    }
    await removeTree(trash).catch((err: unknown) => {
      throw asImageTsError(err);
    });
  }

  async remove(diffId: Digest): Promise<void> {
    await this.discard(this.layerDir(diffId));
  }

  async footprint(diffId: Digest): Promise<LayerFootprint | undefined> {
    const layer = await this.get(diffId);
    if (!layer) return undefined;
    try {
      return { format: layer.format ?? 'directory', bytes: await treeBytes(this.layerDir(diffId)) };
    } catch (err) {
      throw asImageTsError(err);
    }
  }

  async list(): Promise<Digest[]> {
    const out: Digest[] = [];
    for (const algorithm of ['sha256', 'sha512'] as const) {
      let names: string[];
      try {
        names = await readdir(join(this.layersDir, algorithm));
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue;
        throw asImageTsError(err);
      }
      for (const name of names.sort()) {
        if (!Digest.isValid(`${algorithm}:${name}`)) continue;
        const d = Digest.parse(`${algorithm}:${name}`);
        if (await this.get(d)) out.push(d);
      }
    }
    return out;
  }

  /**
   * Deletes staging left by processes that died (kill -9, power loss). Each
   * entry is named after its owner's pid, so a pull running in another
   * process keeps its staging and this is safe to call at every start.
   */
  async cleanStaging(): Promise<number> {
    const native = tryNativeSyscalls();
    if (typeof native?.flock === 'function') this.cleanIngest(native);
    let names: string[];
    try {
      names = await readdir(this.stagingDir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return 0;
      throw asImageTsError(err);
    }
    const stale = names.filter((n) => {
      const owner = Number(n.split('-')[0]);
      return !Number.isInteger(owner) || (owner !== process.pid && !processAlive(owner));
    });
    try {
      await Promise.all(stale.map((n) => removeTree(join(this.stagingDir, n))));
    } catch (err) {
      throw asImageTsError(err);
    }
    return stale.length;
  }
}
