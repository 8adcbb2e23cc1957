import type { Writable } from 'node:stream';
import type { Digest } from '../../domain/image/digest.js';

/**
 * How a committed layer keeps whiteouts: `overlay` as kernel overlayfs wants
 * them (0:0 char devices, trusted.overlay.opaque), `marker` as the tar had
 * them (`.wh.*` files) where the process cannot make devices or xattrs.
 */
export type WhiteoutFormat = 'overlay' | 'marker';

export interface CommittedLayer {
  readonly diffId: Digest;
  readonly path: string;
  readonly whiteoutFormat: WhiteoutFormat;
  /** Bytes of unpacked file content. */
  readonly size: number;
  readonly entries: number;
}

/**
 * A layer being unpacked into staging. The tar stream goes into `sink`; the
 * caller verifies digests and then commits or aborts. Nobody sees a staged layer.
 */
export interface LayerWriter {
  readonly sink: Writable;
  commit(): Promise<CommittedLayer>;
  abort(): Promise<void>;
}

/** Unpacked layers, content-addressed by diff_id and shared by every image. */
export interface LayerStore {
  readonly whiteoutFormat: WhiteoutFormat;
  get(diffId: Digest): Promise<CommittedLayer | undefined>;
  stage(diffId: Digest): Promise<LayerWriter>;
  remove(diffId: Digest): Promise<void>;
  list(): Promise<Digest[]>;
  /** Removes staging left by a crash. Returns how many were removed. */
  cleanStaging(): Promise<number>;
}

export const LayerStoreToken = Symbol.for('image-ts.LayerStore');
