import { BundleExistsError } from '../../src/domain/errors.js';
import type { RuntimeSpec } from '../../src/domain/runtime/runtime-spec.js';
import type { CommittedLayer } from '../../src/ports/layer/layer-store.js';
import type { BundleFs } from '../../src/ports/snapshot/bundle-fs.js';
import type { SnapshotRecord, Snapshotter } from '../../src/ports/snapshot/snapshotter.js';

/** Records what it would mount. `failNext` makes the next prepare fail, to test rollback. */
export class MemorySnapshotter implements Snapshotter {
  readonly name = 'copy' as const;
  readonly prepared = new Map<string, readonly CommittedLayer[]>();
  failNext = false;

  async available(): Promise<boolean> {
    return true;
  }

  async prepare(id: string, layers: readonly CommittedLayer[], rootfs: string): Promise<SnapshotRecord> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('mount refused');
    }
    this.prepared.set(rootfs, layers);
    return { snapshotter: 'copy', rootfs, id };
  }

  async remove(record: SnapshotRecord): Promise<void> {
    this.prepared.delete(record.rootfs);
  }
}

/** Bundles as a map of paths; rootfs files are whatever the test puts in `rootfsFiles`. */
export class MemoryBundleFs implements BundleFs {
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
