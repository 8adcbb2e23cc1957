import { readFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ImageTsError, UnsupportedError, asImageTsError } from '../../../domain/errors.js';
import type { CommittedLayer, LayerFormat } from '../../../ports/layer/layer-store.js';
import type { SnapshotRecord, Snapshotter, SnapshotterName } from '../../../ports/snapshot/snapshotter.js';
import { mountFailed, unmount } from '../native/mounts.js';
import { nativeSyscalls, tryNativeSyscalls } from '../native/syscalls.js';
import { OverlayFixups } from './overlay-fixups.js';
import { ErofsMounts, type ErofsCheck } from '../erofs/erofs-mounts.js';
import { mountsBelow } from './mounts-below.js';

export interface OverlaySnapshotterOptions {
  /** What is checked of an erofs layer image before it is mounted (default: none). */
  readonly erofsCheck?: ErofsCheck | undefined;
}

/**
 * mount(2) takes its options in one page, NUL included. Longer lowerdir lists
 * (roughly 50+ layers at typical path lengths) would need the new mount API
 * (fsconfig with one `lowerdir+` per layer, Linux 6.8+) or a chdir to a
 * common parent with relative paths; neither is done, the pull fails with
 * UNSUPPORTED and the copy snapshotter remains available.
 */
const MAX_MOUNT_DATA = 4095;
/** Characters overlayfs' option parser would split on or unescape. */
const UNSAFE_IN_OPTIONS = /[,:\\]/;

/**
 * A rootfs as a kernel overlay mount: the committed layers are shared
 * read-only lower dirs, each bundle gets its own upper and work dirs under
 * <work_dir>/overlay/<id>/. Needs root and layers unpacked with overlay
 * whiteouts (0:0 char devices, trusted.overlay.opaque). A layer stored as an
 * EROFS image is mounted read-only under <id>/layers/ first (ErofsMounts),
 * and its mount is the lower dir.
 */
export class OverlaySnapshotter implements Snapshotter {
  readonly name: SnapshotterName = 'overlay';
  readonly layerFormat: LayerFormat = 'directory';
  protected readonly base: string;
  private readonly erofs: ErofsMounts;

  constructor(root: string, options: OverlaySnapshotterOptions = {}) {
    this.base = join(resolve(root), 'overlay');
    this.erofs = new ErofsMounts(options.erofsCheck ?? 'none');
  }

  async available(): Promise<boolean> {
    if (process.getuid?.() !== 0 || !tryNativeSyscalls()) return false;
    try {
      return /\toverlay$/m.test(await readFile('/proc/filesystems', 'utf8'));
    } catch {
      return false;
    }
  }

  async prepare(id: string, layers: readonly CommittedLayer[], rootfs: string): Promise<SnapshotRecord> {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw new ImageTsError('INVALID_ARGUMENT', `bad snapshot id ${JSON.stringify(id)}`);
    const marker = layers.find((l) => l.whiteoutFormat !== 'overlay');
    if (marker) {
      throw new UnsupportedError(
        `layer ${marker.diffId} was unpacked with ${marker.whiteoutFormat} whiteouts, which overlayfs cannot use; ` +
          'use the copy snapshotter, or remove the layer and pull again as root',
      );
    }
    const native = nativeSyscalls();
    const dir = join(this.base, id);
    const upperDir = join(dir, 'upper');
    const workDir = join(dir, 'work');
    const target = resolve(rootfs);
    // overlayfs refuses a repeated lower dir, and only the topmost copy of a repeated layer matters.
    const topmost = layers
      .map((l) => ({ ...l, path: resolve(l.path) }))
      .filter((l, i, all) => !all.slice(i + 1).some((u) => u.path === l.path));
    const undo = async (): Promise<void> => {
      await this.release(dir).catch(() => undefined);
    };
    let data: string;
    try {
      const trees = await this.erofs.mountAll(topmost, join(dir, 'layers'), id);
      // Top layer first: overlayfs searches lowerdir left to right.
      const lowers = new OverlayFixups(native).build(trees, dir).reverse();
      if (lowers.length === 0) lowers.push(join(dir, 'empty')); // overlayfs needs at least one lower dir
      for (const p of [...lowers, upperDir, workDir]) {
        if (UNSAFE_IN_OPTIONS.test(p)) throw new UnsupportedError(`overlay paths cannot contain ',', ':' or '\\': ${p}`);
      }
      data = `lowerdir=${lowers.join(':')},upperdir=${upperDir},workdir=${workDir}`;
      if (data.length > MAX_MOUNT_DATA) {
        throw new UnsupportedError(
          `overlay mount options for ${layers.length} layers are ${data.length} bytes, over the kernel's ${MAX_MOUNT_DATA}; use the copy snapshotter`,
        );
      }
      await mkdir(upperDir, { recursive: true, mode: 0o755 });
      await mkdir(workDir, { recursive: true, mode: 0o700 });
      if (lowers[0] === join(dir, 'empty')) await mkdir(lowers[0], { recursive: true });
    } catch (err) {
      await undo();
      throw asImageTsError(err);
    }
    const record: SnapshotRecord = { snapshotter: this.name, rootfs: target, upperDir, workDir, id };
    try {
      native.mount('overlay', target, 'overlay', 0, data);
    } catch (err) {
      await undo();
      throw mountFailed(`mount overlay on ${target}`, err);
    }
    return record;
  }

  async remove(record: SnapshotRecord): Promise<void> {
    unmount(nativeSyscalls(), record.rootfs);
    // Only ever delete our own per-bundle dir, whatever the record says.
    const dir = record.upperDir ? dirname(record.upperDir) : join(this.base, record.id);
    if (dirname(dir) !== this.base) throw new ImageTsError('INVALID_ARGUMENT', `snapshot dir ${dir} is not under ${this.base}`);
    await this.release(dir);
  }

  /**
   * The per-bundle dir and what is mounted in it (layer images, and their
   * loop or verity devices): after a kill -9 the mounts are all there is to
   * go by, so they are read from the kernel, not from a record.
   */
  private async release(dir: string): Promise<void> {
    for (const point of mountsBelow(dir)) unmount(nativeSyscalls(), point);
    await this.erofs.closeDevices(dirname(dir) === this.base ? dir.slice(this.base.length + 1) : undefined);
    try {
      await rm(dir, { recursive: true, force: true });
    } catch (err) {
      throw asImageTsError(err);
    }
  }
}
