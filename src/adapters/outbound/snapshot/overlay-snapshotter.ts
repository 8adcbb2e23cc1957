import { readFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ImageTsError, UnsupportedError, asImageTsError } from '../../../domain/errors.js';
import type { CommittedLayer } from '../../../ports/layer/layer-store.js';
import type { SnapshotRecord, Snapshotter } from '../../../ports/snapshot/snapshotter.js';
import { mountFailed, unmount } from '../native/mounts.js';
import { nativeSyscalls, tryNativeSyscalls } from '../native/syscalls.js';
import { OverlayFixups } from './overlay-fixups.js';

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
 * whiteouts (0:0 char devices, trusted.overlay.opaque).
 */
export class OverlaySnapshotter implements Snapshotter {
  readonly name = 'overlay' as const;
  private readonly base: string;

  constructor(root: string) {
    this.base = join(resolve(root), 'overlay');
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
    const undo = (): Promise<void> => rm(dir, { recursive: true, force: true }).catch(() => undefined);
    let data: string;
    try {
      // Top layer first: overlayfs searches lowerdir left to right.
      const lowers = new OverlayFixups(native).build(topmost, dir).reverse();
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
    const record: SnapshotRecord = { snapshotter: 'overlay', rootfs: target, upperDir, workDir, id };
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
    try {
      await rm(dir, { recursive: true, force: true });
    } catch (err) {
      throw asImageTsError(err);
    }
  }
}
