import * as fs from 'node:fs';
import { join } from 'node:path';
import { UnsafeLayerError } from '../../../domain/errors.js';
import type { CommittedLayer, LowerLink } from '../../../ports/layer/layer-store.js';
import { fsPath } from '../layer-store/raw-name.js';
import type { NativeSyscalls } from '../native/syscalls.js';
import { setFdTimes, setPathTimes } from '../native/times.js';
import { devMajor, devMinor } from './device-numbers.js';

const OPAQUE_XATTR = 'trusted.overlay.opaque';
const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;

/** What the layers below show at a path. */
type View = { readonly kind: 'dir' | 'other'; readonly path: string } | { readonly kind: 'absent' };

interface DirTimes {
  readonly atime: number;
  readonly mtime: number;
}

/**
 * Directories placed just above a layer in one bundle's overlay stack, so
 * that the mount shows what applying the layers in order shows (umoci
 * unpack, the copy snapshotter).
 *
 * Layers are unpacked once, each on its own, and shared by every image: a
 * layer cannot know what lies below it. Where it needed a directory that no
 * entry declared (an implicit directory, see CommittedLayer), overlayfs
 * would take that made-up directory as the truth:
 * - over a lower directory, its mode, owner and times would replace the
 *   lower ones; the fixup repeats the lower directory's metadata above it;
 * - where the layers below have a file, a symlink or nothing, and the
 *   directory holds only whiteouts (they delete nothing there), it would
 *   turn that path into an empty directory; the fixup puts the lower entry
 *   back (a copy) or hides the path (a whiteout).
 * An implicit directory with real content over a non-directory stays a
 * directory, as overlayfs and the copy snapshotter both make it.
 *
 * Hard links to lower layers' files (CommittedLayer.lowerLinks) are made
 * here too: the fixup gets a copy of the lower file, as overlayfs' copy-up
 * would, and the link to that copy, so both names share one inode.
 * Directories the fixup needs on the way repeat what the union shows there.
 *
 * Builders declare every directory they write into, and link only within
 * a layer, so most images need none: then nothing is made and the stack is
 * the layers alone.
 */
export class OverlayFixups {
  constructor(private readonly native: NativeSyscalls) {}

  /**
   * The lower dirs, bottom first, with fixup dirs made under `dir` where a
   * layer needs one. `layers` holds each layer once, at its topmost place.
   */
  build(layers: readonly CommittedLayer[], dir: string): string[] {
    const stack: string[] = [];
    layers.forEach((layer, i) => {
      stack.push(layer.path);
      const implicit = layer.implicitDirs ?? [];
      const links = layer.lowerLinks ?? [];
      if ((implicit.length === 0 && links.length === 0) || (stack.length === 1 && links.length === 0)) return;
      const fix = join(dir, 'fix', String(i));
      if (this.fill(layer, fix, stack.slice(0, -1).reverse())) stack.push(fix);
    });
    return stack;
  }

  /** Makes one layer's fixup dir; false when the layer needs none. */
  private fill(layer: CommittedLayer, fix: string, belowTopFirst: readonly string[]): boolean {
    const holders = new Set(layer.whiteoutOnlyDirs ?? []);
    const made = new Set<string>();
    const times = new Map<string, DirTimes>();
    const hidden: string[] = [];
    const byDepth = [...(layer.implicitDirs ?? [])].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1));
    for (const rel of byDepth) {
      if (hidden.some((h) => rel.startsWith(`${h}/`))) continue;
      const view = lookup(belowTopFirst, rel.split('/'), this.native);
      if (view.kind === 'dir') {
        this.parents(layer, fix, rel, made, times);
        fs.mkdirSync(fsPath(join(fix, rel)));
        made.add(rel);
        times.set(rel, this.copyDirMeta(view.path, join(fix, rel)));
      } else if (holders.has(rel)) {
        this.parents(layer, fix, rel, made, times);
        if (view.kind === 'absent') this.native.mknod(fsPath(join(fix, rel)), fs.constants.S_IFCHR, 0, 0);
        else reproduce(view.path, join(fix, rel), this.native);
        hidden.push(rel);
      }
    }
    const union = [layer.path, ...belowTopFirst];
    for (const link of layer.lowerLinks ?? []) this.lowerLink(link, fix, union, made, times);
    if (!fs.existsSync(fix)) return false;
    // Deepest first: making an entry inside a directory changes its times.
    for (const [rel, t] of [...times].sort((a, b) => b[0].split('/').length - a[0].split('/').length)) {
      const fd = fs.openSync(fsPath(join(fix, rel)), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      try {
        setFdTimes(this.native, fd, t.atime, t.mtime);
      } finally {
        fs.closeSync(fd);
      }
    }
    return true;
  }

  /**
   * A hard link to a lower layer's file: the file copied into the fixup
   * (once, whatever links to it), and the link beside it. A target the
   * fixup already holds, an earlier link's path among them, is used as it is.
   */
  private lowerLink([path, target]: LowerLink, fix: string, union: readonly string[], made: Set<string>, times: Map<string, DirTimes>): void {
    const fixTarget = join(fix, target);
    if (!fs.lstatSync(fsPath(fixTarget), { throwIfNoEntry: false })) {
      const view = lookup(union, target.split('/'), this.native);
      if (view.kind === 'absent') throw new UnsafeLayerError(path, `hard link target ${target} is in no layer below`);
      if (view.kind === 'dir') throw new UnsafeLayerError(path, `hard link to the directory ${target}`);
      this.unionParents(fix, target, union, made, times);
      reproduce(view.path, fixTarget, this.native);
    }
    this.unionParents(fix, path, union, made, times);
    fs.linkSync(fsPath(fixTarget), fsPath(join(fix, path)));
  }

  /** The fixup's parents of rel not made yet, each repeating the directory the union shows there. */
  private unionParents(fix: string, rel: string, union: readonly string[], made: Set<string>, times: Map<string, DirTimes>): void {
    fs.mkdirSync(fix, { recursive: true, mode: 0o755 });
    const segs = rel.split('/');
    for (let i = 1; i < segs.length; i++) {
      const p = segs.slice(0, i).join('/');
      if (made.has(p)) continue;
      const view = lookup(union, segs.slice(0, i), this.native);
      if (view.kind !== 'dir') throw new UnsafeLayerError(rel, `${p} is not a directory`);
      fs.mkdirSync(fsPath(join(fix, p)));
      made.add(p);
      times.set(p, this.copyDirMeta(view.path, join(fix, p)));
    }
  }

  /** The fixup's parents of rel, each a copy of the layer's own directory there (the topmost one). */
  private parents(layer: CommittedLayer, fix: string, rel: string, made: Set<string>, times: Map<string, DirTimes>): void {
    fs.mkdirSync(fix, { recursive: true, mode: 0o755 });
    const segs = rel.split('/');
    for (let i = 1; i < segs.length; i++) {
      const p = segs.slice(0, i).join('/');
      if (made.has(p)) continue;
      fs.mkdirSync(fsPath(join(fix, p)));
      made.add(p);
      times.set(p, this.copyDirMeta(join(layer.path, p), join(fix, p)));
    }
  }

  /** Owner, mode and xattrs now (overlay bookkeeping excluded); the times, returned, go on last. */
  private copyDirMeta(srcName: string, dstName: string): DirTimes {
    const src = fsPath(srcName);
    const dst = fsPath(dstName);
    const st = fs.lstatSync(src);
    fs.lchownSync(dst, st.uid, st.gid);
    fs.chmodSync(dst, st.mode & 0o7777); // after chown, which clears setgid
    copyXattrs(this.native, src, dst);
    return { atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000 };
  }
}

/**
 * What overlayfs would show at segs over these dirs (top first): the first
 * dir with something there decides, unless an entry above hides it (a
 * whiteout, a non-directory on the way, an opaque directory on the way).
 */
function lookup(dirsTopFirst: readonly string[], segs: readonly string[], native: NativeSyscalls): View {
  for (const root of dirsTopFirst) {
    let path = root;
    let opaqueOnTheWay = false;
    for (let k = 0; k < segs.length; k++) {
      path = join(path, segs[k]!);
      const st = fs.lstatSync(fsPath(path), { throwIfNoEntry: false });
      if (!st) break;
      if (st.isCharacterDevice() && st.rdev === 0) return { kind: 'absent' };
      if (k === segs.length - 1) return { kind: st.isDirectory() ? 'dir' : 'other', path };
      if (!st.isDirectory()) return { kind: 'absent' };
      if (native.lgetxattr(fsPath(path), OPAQUE_XATTR)?.toString() === 'y') opaqueOnTheWay = true;
    }
    if (opaqueOnTheWay) return { kind: 'absent' };
  }
  return { kind: 'absent' };
}

/**
 * The lower entry again, as a copy (a reflink where the filesystem can): a
 * hard link would show a link count the image does not have. Rare enough
 * (a layer's only markers under a lower layer's file) that its cost does not matter.
 */
function reproduce(srcName: string, dstName: string, native: NativeSyscalls): void {
  const src = fsPath(srcName);
  const dst = fsPath(dstName);
  const st = fs.lstatSync(src);
  if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src, { encoding: 'buffer' }), dst);
  else if (st.isFile()) fs.copyFileSync(src, dst, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
  else native.mknod(dst, st.mode & (fs.constants.S_IFMT | 0o777), devMajor(st.rdev), devMinor(st.rdev));
  fs.lchownSync(dst, st.uid, st.gid);
  if (!st.isSymbolicLink()) fs.chmodSync(dst, st.mode & 0o7777);
  copyXattrs(native, src, dst);
  setPathTimes(native, dst, st.atimeMs / 1000, st.mtimeMs / 1000);
}

/** Every xattr but overlayfs' own bookkeeping. */
function copyXattrs(native: NativeSyscalls, src: string | Buffer, dst: string | Buffer): void {
  for (const key of native.llistxattr(src)) {
    if (key.startsWith('trusted.overlay.')) continue;
    const value = native.lgetxattr(src, key);
    if (value !== null) native.lsetxattr(dst, key, value);
  }
}
