import type { CommittedLayer, LayerFormat } from '../layer/layer-store.js';

export type SnapshotterName = 'overlay' | 'copy' | 'erofs';

/** What a snapshotter made for one bundle, enough to undo it. */
export interface SnapshotRecord {
  readonly snapshotter: SnapshotterName;
  readonly rootfs: string;
  /** Per-bundle writable dirs (overlay upper/work), if any. */
  readonly upperDir?: string | undefined;
  readonly workDir?: string | undefined;
  readonly id: string;
}

/** Turns committed layers (bottom first) into a rootfs directory. */
export interface Snapshotter {
  readonly name: SnapshotterName;
  /** The format new layers are committed in for this snapshotter's bundles; absent: `directory`. */
  readonly layerFormat?: LayerFormat | undefined;
  /** Whether this snapshotter can work here (privileges, kernel support). */
  available(): Promise<boolean>;
  prepare(id: string, layers: readonly CommittedLayer[], rootfs: string): Promise<SnapshotRecord>;
  /** Undoes prepare: unmount and delete per-bundle dirs. Safe to call twice. */
  remove(record: SnapshotRecord): Promise<void>;
}
