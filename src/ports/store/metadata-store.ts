import type { SnapshotRecord } from '../snapshot/snapshotter.js';

export interface LayerEntry {
  readonly digest: string;
  readonly diffId: string;
  readonly mediaType: string;
  readonly size: number;
  /** Wrap schemes of an encrypted layer (`jwe`, `provider.attestation-agent`, ...); never key material. */
  readonly encryption?: readonly string[] | undefined;
}

export interface ImageRecord {
  /** Every name the image was pulled as. */
  readonly names: string[];
  readonly manifestDigest: string;
  readonly indexDigest?: string | undefined;
  readonly configDigest: string;
  readonly mediaType: string;
  readonly platform: string;
  readonly layers: readonly LayerEntry[];
  /** Compressed bytes as the manifest states them. */
  readonly size: number;
  readonly pulledAt: string;
  /** The config's User, as written (`name`, `uid`, `uid:gid`). */
  readonly user?: string | undefined;
}

export interface LayerRecord {
  readonly diffId: string;
  readonly size: number;
  readonly whiteoutFormat: string;
  readonly committedAt: string;
}

export interface BundleRecord {
  readonly path: string;
  readonly image: string;
  readonly manifestDigest: string;
  readonly layers: readonly string[];
  readonly snapshot: SnapshotRecord;
  readonly createdDir: boolean;
  readonly createdAt: string;
}

/** Layers a running pull needs; gc keeps them until the lease ends or expires. */
export interface LeaseRecord {
  readonly layers: readonly string[];
  readonly expiresAt: string;
  /** The pulling process; a lease whose owner died is abandoned and reclaimed at once. */
  readonly owner?: number | undefined;
  /** The bundle the pull is making, so a pull killed midway can be undone by the next one. */
  readonly bundle?: PlannedBundle | undefined;
}

/** What a bundle pull will make: enough to unmount and delete it if its owner dies. */
export interface PlannedBundle {
  readonly path: string;
  readonly createdDir: boolean;
  readonly snapshot: SnapshotRecord;
}

/** The whole store state: small, read and written as one document. */
export interface StoreState {
  version: 1;
  /** Keyed by manifest digest. */
  images: Record<string, ImageRecord>;
  /** Keyed by diff_id. */
  layers: Record<string, LayerRecord>;
  /** Keyed by absolute bundle path. */
  bundles: Record<string, BundleRecord>;
  /** Keyed by lease id. */
  leases: Record<string, LeaseRecord>;
}

/**
 * Image and bundle metadata. `update` runs a mutation under the store lock and
 * persists atomically; a crash leaves either the old or the new state.
 */
export interface MetadataStore {
  read(): Promise<StoreState>;
  update<T>(mutate: (state: StoreState) => T | Promise<T>): Promise<T>;
}
