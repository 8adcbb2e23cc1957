import { chmod, link, mkdir, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BundleExistsError, ImageTsError } from '../../src/domain/errors.js';
import type { Digest } from '../../src/domain/image/digest.js';
import { classifyEntry, linkTargetSegments } from '../../src/domain/layer/entry-path.js';
import type { RuntimeSpec } from '../../src/domain/runtime/runtime-spec.js';
import type { CommittedLayer } from '../../src/ports/layer/layer-store.js';
import type { BundleDirectory } from '../../src/ports/snapshot/bundle-directory.js';
import type { SnapshotRecord, Snapshotter } from '../../src/ports/snapshot/snapshotter.js';
import type { MemoryEntry } from './memory-layer-store.js';

/** What a layer holds, by diff_id: a MemoryLayerStore. */
export interface LayerEntries {
  entries(diffId: Digest): ReadonlyMap<string, MemoryEntry> | undefined;
}

/**
 * Records what it would mount. `failNext` makes the next prepare fail, to test rollback.
 *
 * Given the MemoryLayerStore its layers come from, it also writes the union
 * of their entries into the rootfs directory (and remove() deletes it), so
 * that the snapshotter contract holds it to the same union semantics as the
 * real snapshotters. Without one it touches no disk, for unit tests whose
 * bundle paths are made up.
 */
export class MemorySnapshotter implements Snapshotter {
  readonly name = 'copy' as const;
  readonly prepared = new Map<string, readonly CommittedLayer[]>();
  failNext = false;

  constructor(private readonly source?: LayerEntries) {}

  async available(): Promise<boolean> {
    return true;
  }

  async prepare(id: string, layers: readonly CommittedLayer[], rootfs: string): Promise<SnapshotRecord> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('mount refused');
    }
    if (this.source) {
      const union = new Map<string, MemoryEntry>();
      for (const layer of layers) {
        const entries = this.source.entries(layer.diffId);
        if (!entries) throw new ImageTsError('STORE', `layer ${layer.diffId} is not in the memory layer store`);
        applyLayer(union, entries);
      }
      try {
        await mkdir(rootfs, { recursive: true });
        await materialize(union, rootfs);
      } catch (err) {
        // Leave the rootfs dir (the bundle owns it) but none of what was written.
        for (const name of await readdir(rootfs).catch(() => [])) await rm(join(rootfs, name), { recursive: true, force: true });
        throw err;
      }
    }
    this.prepared.set(rootfs, layers);
    return { snapshotter: 'copy', rootfs, id };
  }

  async remove(record: SnapshotRecord): Promise<void> {
    this.prepared.delete(record.rootfs);
    if (this.source) await rm(record.rootfs, { recursive: true, force: true });
  }
}

const DIR = 'Directory';

/** Deletes `path` and everything below it. */
function deleteTree(union: Map<string, MemoryEntry>, path: string): void {
  union.delete(path);
  deleteBelow(union, path);
}

function deleteBelow(union: Map<string, MemoryEntry>, path: string): void {
  const prefix = path === '' ? '' : `${path}/`;
  for (const key of [...union.keys()]) if (key.startsWith(prefix) && key !== path) union.delete(key);
}

/**
 * One layer over the union of those below (OCI "Applying Changesets"): its
 * whiteouts and opaque markers delete from the lower layers only, whatever
 * their order in the tar; then its entries replace what is at their paths.
 * Markers create nothing, and nothing here follows a symlink: paths are keys.
 */
function applyLayer(union: Map<string, MemoryEntry>, entries: ReadonlyMap<string, MemoryEntry>): void {
  const adds: [string, MemoryEntry][] = [];
  for (const [path, entry] of entries) {
    const role = classifyEntry(path);
    const target = role.segments.join('/');
    if (role.kind === 'whiteout') deleteTree(union, target);
    else if (role.kind === 'opaque') deleteBelow(union, target);
    else adds.push([target, entry]);
  }
  for (const [path, entry] of adds) {
    const segments = path.split('/');
    // A parent no entry declared keeps a lower directory as it is; anything else there gives way.
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join('/');
      if (union.get(parent)?.type === DIR) continue;
      deleteTree(union, parent);
      union.set(parent, { type: DIR, mode: 0o755 });
    }
    const lower = union.get(path);
    // A directory over a directory merges; anything else replaces the whole lower tree.
    if (!(entry.type === DIR && lower?.type === DIR)) deleteTree(union, path);
    union.set(path, entry);
  }
}

/** Writes the union under `rootfs`: parents first, hard links once their targets exist, directory modes and times last. */
async function materialize(union: ReadonlyMap<string, MemoryEntry>, rootfs: string): Promise<void> {
  const paths = [...union.keys()].sort();
  const dirs: [string, MemoryEntry][] = [];
  const links: [string, MemoryEntry][] = [];
  for (const path of paths) {
    const entry = union.get(path)!;
    const at = join(rootfs, path);
    switch (entry.type) {
      case DIR:
        await mkdir(at);
        dirs.push([at, entry]);
        break;
      case 'File':
      case 'OldFile':
        await writeFile(at, entry.content ?? Buffer.alloc(0));
        await chmod(at, entry.mode & 0o7777);
        if (entry.mtime) await utimes(at, entry.mtime, entry.mtime);
        break;
      case 'SymbolicLink':
        await symlink(entry.linkpath ?? '', at);
        break;
      case 'Link':
        links.push([path, entry]);
        break;
      default:
        throw new ImageTsError('UNSUPPORTED', `the memory snapshotter does not make ${entry.type} entries (${path})`);
    }
  }
  for (const [path, entry] of links) {
    const target = linkTargetSegments(path, entry.linkpath ?? '').join('/');
    if (!union.has(target)) throw new ImageTsError('UNSAFE_LAYER', `hard link ${path} to ${target}, which is not in the rootfs`);
    await link(join(rootfs, target), join(rootfs, path));
  }
  // Deepest first: writing into a directory changes its times.
  for (const [at, entry] of dirs.reverse()) {
    await chmod(at, entry.mode & 0o7777);
    if (entry.mtime) await utimes(at, entry.mtime, entry.mtime);
  }
}

/** Bundles as a map of paths; rootfs files are whatever the test puts in `rootfsFiles`. */
export class MemoryBundleDirectory implements BundleDirectory {
  readonly bundles = new Map<string, { config?: RuntimeSpec }>();
  readonly rootfsFiles = new Map<string, string>();

  resolve(path: string): string {
    return path.startsWith('/') ? path : `/bundles/${path}`;
  }

  async create(bundle: string): Promise<{ rootfs: string; createdDir: boolean }> {
    if (this.bundles.has(bundle)) throw new BundleExistsError(bundle);
    this.bundles.set(bundle, {});
    return { rootfs: `${bundle}/rootfs`, createdDir: true };
  }

  async readRootfsFile(_rootfs: string, path: string): Promise<string | undefined> {
    return this.rootfsFiles.get(path);
  }

  async writeConfig(bundle: string, spec: RuntimeSpec): Promise<void> {
    this.bundles.set(bundle, { config: spec });
  }

  async remove(bundle: string): Promise<void> {
    this.bundles.delete(bundle);
  }
}
