import * as fs from 'node:fs';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { asImageTsError, UnsafeLayerError, UnsupportedError } from '../../../domain/errors.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from '../../../domain/layer/entry-path.js';
import type { CommittedLayer, LowerLink, WhiteoutFormat } from '../../../ports/layer/layer-store.js';
import type { SnapshotRecord, Snapshotter } from '../../../ports/snapshot/snapshotter.js';
import { removeTree } from '../layer-store/fs-layer-store.js';
import { fsPath, readdirNames } from '../layer-store/raw-name.js';
import { errnoCode, tryNativeSyscalls, type NativeSyscalls } from '../native/syscalls.js';
import { setFdTimes, setPathTimes } from '../native/times.js';
import { devMajor, devMinor } from './device-numbers.js';
import { copySparse, isSparse } from './sparse-copy.js';

const { S_IFMT, S_IFCHR, S_IFBLK, S_IFIFO, COPYFILE_EXCL, COPYFILE_FICLONE, O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;
/** Files at least this big are copied off the event loop. */
const ASYNC_COPY_BYTES = 1024 * 1024;
/** Entries handled synchronously between two turns of the event loop. */
const BATCH = 256;

interface DirMeta {
  mode: number;
  atime: number;
  mtime: number;
}

/**
 * Flattens layers bottom to top into a plain directory, applying whiteouts as
 * deletions: works anywhere, costs a full copy per bundle. Reads both whiteout
 * formats: overlay (0:0 char devices, trusted.overlay.opaque) and marker
 * (`.wh.NAME`, `.wh..wh..opq` files).
 *
 * Every destination directory is made (or checked) by this class before
 * anything is placed in it, and nothing here follows a symlink in the rootfs:
 * a layer's symlink can point anywhere on the host. Names that are not UTF-8
 * are read and made as bytes (raw-name.ts); sparse files keep their holes;
 * hard links to lower layers' files (CommittedLayer.lowerLinks) are made
 * once each layer is in place.
 */
export class CopySnapshotter implements Snapshotter {
  readonly name = 'copy' as const;

  constructor(private readonly native: NativeSyscalls | undefined = tryNativeSyscalls()) {}

  async available(): Promise<boolean> {
    return true;
  }

  async prepare(id: string, layers: readonly CommittedLayer[], rootfs: string): Promise<SnapshotRecord> {
    const image = layers.find((l) => l.format === 'erofs');
    // Copying out of an image would mean mounting it, which is what the erofs and overlay snapshotters are for.
    if (image) throw new UnsupportedError(`layer ${image.diffId} is stored as an EROFS image; use the erofs or overlay snapshotter`);
    const target = resolve(rootfs);
    try {
      await mkdir(target, { recursive: true });
      const flattener = new Flattener(target, process.getuid?.() === 0, this.native);
      // A layer listed twice needs applying only at its topmost place: that copy overrides all the lower one did.
      const topmost = layers.filter((l, i) => !layers.slice(i + 1).some((u) => u.path === l.path));
      for (const layer of topmost) await flattener.apply(layer);
      flattener.finish();
    } catch (err) {
      // Leave the rootfs dir (the bundle owns it) but none of what we copied.
      const names = await readdir(target).catch(() => [] as string[]);
      await Promise.all(names.map((n) => removeTree(join(target, n)))).catch(() => undefined);
      throw asImageTsError(err);
    }
    return { snapshotter: 'copy', rootfs: target, id };
  }

  async remove(record: SnapshotRecord): Promise<void> {
    try {
      await removeTree(record.rootfs);
    } catch (err) {
      throw asImageTsError(err);
    }
  }
}

class Flattener {
  /** Final mode and times of each directory, applied at the end: later layers change them, and a read-only mode would block them. */
  private readonly dirMeta = new Map<string, DirMeta>();
  private sinceYield = 0;

  constructor(
    private readonly root: string,
    private readonly privileged: boolean,
    private readonly native: NativeSyscalls | undefined,
  ) {}

  /** The layer being applied's implicit directories (CommittedLayer.implicitDirs), and those of them that hold only markers. */
  private implicit: ReadonlySet<string> = new Set();
  private whiteoutOnly: ReadonlySet<string> = new Set();

  async apply(layer: CommittedLayer): Promise<void> {
    this.implicit = new Set(layer.implicitDirs ?? []);
    this.whiteoutOnly = new Set(layer.whiteoutOnlyDirs ?? []);
    // Hard links are kept within a layer: inode → where its first copy went.
    await this.walk(layer.path, '', layer.whiteoutFormat, new Map<number, string | Buffer>());
    for (const link of layer.lowerLinks ?? []) this.lowerLink(link);
  }

  /**
   * A hard link to a file the layers below put in the rootfs. The target is
   * found without following a symlink on the way, so it is always inside.
   */
  private lowerLink([path, target]: LowerLink): void {
    const segs = target.split('/');
    let rel = '';
    for (let i = 0; i < segs.length; i++) {
      rel = rel ? `${rel}/${segs[i]}` : segs[i]!;
      const st = this.lstatDst(rel);
      const last = i === segs.length - 1;
      if (!st || (!last && !st.isDirectory())) throw new UnsafeLayerError(path, `hard link target ${target} is in no layer below`);
      if (last && st.isDirectory()) throw new UnsafeLayerError(path, `hard link to the directory ${target}`);
    }
    const parent = path.split('/').slice(0, -1);
    for (let i = 1; i <= parent.length; i++) {
      if (!this.lstatDst(parent.slice(0, i).join('/'))?.isDirectory()) throw new UnsafeLayerError(path, `${parent.slice(0, i).join('/')} is not a directory`);
    }
    this.removePath(path);
    fs.linkSync(fsPath(this.dst(target)), fsPath(this.dst(path)));
  }

  private lstatDst(rel: string): fs.Stats | undefined {
    try {
      return fs.lstatSync(fsPath(this.dst(rel)), { throwIfNoEntry: false });
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  private dst(rel: string): string {
    return rel ? join(this.root, rel) : this.root;
  }

  private async walk(srcDir: string, rel: string, format: WhiteoutFormat, links: Map<number, string | Buffer>): Promise<void> {
    const names = readdirNames(srcDir);
    const opaque = format === 'overlay' ? this.native?.lgetxattr(fsPath(srcDir), 'trusted.overlay.opaque')?.toString() === 'y' : names.includes(OPAQUE_MARKER);
    if (opaque) this.clearDir(rel);

    const rest: { name: string; st: fs.Stats }[] = [];
    // Whiteouts first: they delete lower-layer content only, never this layer's.
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      if (format === 'marker' && name.startsWith(WHITEOUT_PREFIX)) {
        const victim = name.slice(WHITEOUT_PREFIX.length);
        if (name !== OPAQUE_MARKER && victim !== '' && victim !== '.' && victim !== '..') {
          this.removePath(rel ? `${rel}/${victim}` : victim);
        }
        continue;
      }
      const st = fs.lstatSync(fsPath(join(srcDir, name)));
      if (format === 'overlay' && st.isCharacterDevice() && st.rdev === 0) {
        this.removePath(childRel);
        continue;
      }
      rest.push({ name, st });
    }

    for (const { name, st } of rest) {
      const childRel = rel ? `${rel}/${name}` : name;
      const src = join(srcDir, name);
      if (++this.sinceYield >= BATCH) {
        this.sinceYield = 0;
        await new Promise<void>((r) => setImmediate(r));
      }
      if (st.isDirectory() && this.implicit.has(childRel)) {
        // No entry declared it: a lower directory keeps its metadata; where there is none, markers alone delete nothing.
        if (fs.lstatSync(fsPath(this.dst(childRel)), { throwIfNoEntry: false })?.isDirectory()) {
          await this.walk(src, childRel, format, links);
          continue;
        }
        if (this.whiteoutOnly.has(childRel)) continue;
      }
      if (st.isDirectory()) {
        this.ensureDir(childRel);
        const dst = this.dst(childRel);
        if (this.privileged) fs.lchownSync(fsPath(dst), st.uid, st.gid);
        this.copyXattrs(src, dst);
        this.dirMeta.set(childRel, { mode: st.mode & 0o7777, atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000 });
        await this.walk(src, childRel, format, links);
      } else {
        await this.copyEntry(src, childRel, st, links);
      }
    }
  }

  /** Hides everything lower layers put in this directory. */
  private clearDir(rel: string): void {
    const dir = this.dst(rel);
    for (const name of readdirNames(dir)) fs.rmSync(fsPath(join(dir, name)), { recursive: true, force: true });
    this.forgetBelow(rel);
  }

  private forgetBelow(rel: string): void {
    const prefix = rel ? `${rel}/` : '';
    for (const k of this.dirMeta.keys()) if (k.startsWith(prefix) && k !== rel) this.dirMeta.delete(k);
  }

  /** Deletes whatever is at rel (a whiteout, or before a replacement). Never follows a symlink. */
  private removePath(rel: string): void {
    const abs = fsPath(this.dst(rel));
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) {
      fs.rmSync(abs, { recursive: true, force: true });
      this.dirMeta.delete(rel);
      this.forgetBelow(rel);
    } else {
      fs.unlinkSync(abs);
    }
  }

  /** A real directory at rel: an upper directory replaces a lower non-directory and merges with a lower one. */
  private ensureDir(rel: string): void {
    const abs = fsPath(this.dst(rel));
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (st?.isDirectory()) return;
    if (st) fs.unlinkSync(abs);
    fs.mkdirSync(abs, 0o700);
  }

  private async copyEntry(srcName: string, rel: string, st: fs.Stats, links: Map<number, string | Buffer>): Promise<void> {
    const dst = fsPath(this.dst(rel));
    const src = fsPath(srcName);
    this.removePath(rel);
    if (st.nlink > 1) {
      const first = links.get(st.ino);
      if (first !== undefined) {
        fs.linkSync(first, dst); // shares the inode, metadata included
        return;
      }
      links.set(st.ino, dst);
    }
    const type = st.mode & S_IFMT;
    if (st.isFile()) {
      // EXCL: never through a symlink; FICLONE: reflink where the filesystem can.
      const mode = COPYFILE_EXCL | COPYFILE_FICLONE;
      if (this.native?.lseek && isSparse(st)) await copySparse(src, dst, st.size, this.native);
      else if (st.size >= ASYNC_COPY_BYTES) await copyFile(src, dst, mode);
      else fs.copyFileSync(src, dst, mode);
    } else if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(src, { encoding: 'buffer' }), dst);
    } else if (type === S_IFCHR || type === S_IFBLK || type === S_IFIFO) {
      if (type !== S_IFIFO && !this.privileged) return; // cannot make devices; the layer store already warned
      if (!this.native) return;
      this.native.mknod(dst, type | (st.mode & 0o777), devMajor(st.rdev), devMinor(st.rdev));
    } else {
      return; // sockets and the like are not layer content
    }
    if (this.privileged) fs.lchownSync(dst, st.uid, st.gid);
    if (!st.isSymbolicLink()) fs.chmodSync(dst, st.mode & 0o7777); // after chown, which clears setuid
    this.copyXattrs(src, dst);
    setPathTimes(this.native, dst, st.atimeMs / 1000, st.mtimeMs / 1000);
  }

  /** All xattrs but trusted.overlay.* (overlay bookkeeping, meaningless in a flat tree). */
  private copyXattrs(srcName: string | Buffer, dstName: string | Buffer): void {
    const native = this.native;
    if (!native) return;
    const src = typeof srcName === 'string' ? fsPath(srcName) : srcName;
    const dst = typeof dstName === 'string' ? fsPath(dstName) : dstName;
    for (const key of native.llistxattr(src)) {
      if (key.startsWith('trusted.overlay.')) continue;
      const value = native.lgetxattr(src, key);
      if (value === null) continue;
      try {
        native.lsetxattr(dst, key, value);
      } catch (err) {
        const code = errnoCode(err);
        if (code !== 'ENOTSUP' && code !== 'EPERM') throw err;
      }
    }
  }

  /** Directory modes and times, deepest first. O_NOFOLLOW: a path is never resolved through a symlink. */
  finish(): void {
    const items = [...this.dirMeta].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [rel, m] of items) {
      const fd = fs.openSync(fsPath(this.dst(rel)), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      try {
        fs.fchmodSync(fd, m.mode);
        setFdTimes(this.native, fd, m.atime, m.mtime);
      } finally {
        fs.closeSync(fd);
      }
    }
  }
}
