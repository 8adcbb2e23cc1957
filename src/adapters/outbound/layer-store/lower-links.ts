import * as fs from 'node:fs';
import type { LowerLink, WhiteoutFormat } from '../../../ports/layer/layer-store.js';
import type { NativeSyscalls } from '../native/syscalls.js';
import { invalidTar } from './invalid-tar.js';
import { fsPath } from './raw-name.js';

const OPAQUE_XATTR = 'trusted.overlay.opaque';
const OPAQUE_MARKER = '.wh..wh..opq';

/**
 * Hard links whose target is not in their own layer: a layer links `b` to
 * `a`, and `a` came with a lower layer. Applied in order on one tree (umoci
 * unpack, containerd's apply), `b` becomes a second name for the lower `a`.
 * Each layer is unpacked on its own here, so the unpacker records such
 * links (CommittedLayer.lowerLinks) and snapshotters make them per rootfs,
 * where the layers below are known. A target that no lower layer has fails
 * there, as the link would in a sequential apply.
 *
 * The target is what the layers below show at that path. So this layer
 * must leave that path alone: no entry at it, no whiteout of it or of a
 * directory above it, no opaque directory above it and no non-directory on
 * the way. Otherwise which `a` the link names would depend on where in the
 * layer the link entry sits; such a layer is refused (INVALID_LAYER).
 */
export class LowerLinks {
  private readonly links = new Map<string, string>();

  constructor(
    private readonly root: string,
    private readonly format: WhiteoutFormat,
    private readonly native: () => NativeSyscalls,
  ) {}

  get size(): number {
    return this.links.size;
  }

  /** A link entry at `path` (relative to the root) whose target is not in the layer; a later one at the same path wins. */
  record(path: string, target: string): void {
    this.links.delete(path);
    this.links.set(path, target);
  }

  /** At the end of the layer: the links no later entry replaced, in entry order, their targets checked. */
  settle(): LowerLink[] {
    const out: LowerLink[] = [];
    for (const [path, target] of this.links) {
      if (!this.standing(path)) continue;
      if (this.touched(target)) {
        throw invalidTar(`hard link ${JSON.stringify(path)} to ${JSON.stringify(target)}: the target is in a lower layer, and this layer changes that path too`);
      }
      out.push([path, target]);
    }
    return out;
  }

  private lstat(rel: string): fs.Stats | undefined {
    try {
      return fs.lstatSync(fsPath(rel ? `${this.root}/${rel}` : this.root), { throwIfNoEntry: false });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  /** Nothing at the link's path, below directories that are still there: no later entry replaced it. */
  private standing(path: string): boolean {
    const segs = path.split('/');
    let rel = '';
    for (let i = 0; i < segs.length - 1; i++) {
      rel = rel ? `${rel}/${segs[i]}` : segs[i]!;
      const st = this.lstat(rel);
      if (!st?.isDirectory()) return false;
    }
    return this.lstat(path) === undefined;
  }

  /** Whether this layer has anything at the target, or hides it: see the class comment. */
  private touched(target: string): boolean {
    const segs = target.split('/');
    let rel = '';
    for (let i = 0; i < segs.length; i++) {
      if (this.opaque(rel)) return true;
      if (this.format === 'marker' && this.lstat(rel ? `${rel}/.wh.${segs[i]}` : `.wh.${segs[i]}`)) return true;
      rel = rel ? `${rel}/${segs[i]}` : segs[i]!;
      const st = this.lstat(rel);
      if (!st) return false;
      if (i === segs.length - 1 || !st.isDirectory()) return true;
    }
    return false;
  }

  private opaque(dir: string): boolean {
    if (this.format === 'marker') return this.lstat(dir ? `${dir}/${OPAQUE_MARKER}` : OPAQUE_MARKER) !== undefined;
    return this.native().lgetxattr(fsPath(dir ? `${this.root}/${dir}` : this.root), OPAQUE_XATTR)?.toString() === 'y';
  }
}
