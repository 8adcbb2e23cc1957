import type { Writable } from 'node:stream';
import type { Digest } from '../../domain/image/digest.js';
import type { EntryLimits } from '../../domain/layer/unpack-limits.js';

/**
 * How a committed layer keeps whiteouts: `overlay` as kernel overlayfs wants
 * them (0:0 char devices, trusted.overlay.opaque), `marker` as the tar had
 * them (`.wh.*` files) where the process cannot make devices or xattrs.
 */
export type WhiteoutFormat = 'overlay' | 'marker';

/**
 * How a committed layer is stored: `directory`, a tree of files (path is
 * the tree); `erofs`, one read-only EROFS image file (path is the image),
 * which a snapshotter mounts. EROFS keeps overlay whiteouts.
 */
export type LayerFormat = 'directory' | 'erofs';

/** An `erofs` layer's image, as recorded when it was committed. */
export interface LayerImage {
  /** Bytes of the image file. */
  readonly bytes: number;
  /** sha256 of the image file, hex: checkable before a mount. */
  readonly sha256: string;
  readonly compression: 'lz4' | 'lz4hc';
  /** The image's dm-verity hash tree (a file beside it) and what verifying it takes. */
  readonly verity?: VerityRecord | undefined;
}

/** A dm-verity hash tree (format 1, superblock at offset 0 of its file) over a layer image. */
export interface VerityRecord {
  readonly hashPath: string;
  /** Bytes of the hash file. */
  readonly bytes: number;
  readonly rootHash: string;
  readonly salt: string;
  readonly hashAlgorithm: string;
  readonly dataBlockSize: number;
  readonly hashBlockSize: number;
  readonly dataBlocks: number;
  /** Where the tree starts in the hash file, after the superblock's block. */
  readonly hashOffset: number;
  readonly uuid: string;
}

export interface CommittedLayer {
  readonly diffId: Digest;
  /** The tree, or for the `erofs` format the image file. */
  readonly path: string;
  readonly whiteoutFormat: WhiteoutFormat;
  /** Absent: `directory` (layers stored before formats existed). */
  readonly format?: LayerFormat | undefined;
  /** Present exactly when format is `erofs`. */
  readonly image?: LayerImage | undefined;
  /** Bytes of unpacked file content. */
  readonly size: number;
  readonly entries: number;
  /** Bytes of the uncompressed layer stream; absent for layers stored before it was recorded. */
  readonly unpackedBytes?: number | undefined;
  /**
   * Directories the layer has only because entries below them needed a
   * parent: no entry declared them, so their mode, owner and times are
   * made up, and over a lower layer they must not replace what is there.
   * Snapshotters take them from the layers below instead.
   */
  readonly implicitDirs?: readonly string[] | undefined;
  /**
   * The implicit directories that hold only whiteouts and opaque markers.
   * Where the layers below have no directory at that path, such a directory
   * stands for nothing and must not appear in a rootfs.
   */
  readonly whiteoutOnlyDirs?: readonly string[] | undefined;
  /**
   * Hard links to files the layer does not have: their targets come with
   * lower layers. Applied in order on one tree, such a link is a second
   * name for the lower file; a layer unpacked on its own cannot make it, so
   * snapshotters make it per rootfs, in this order. The layer has nothing
   * at each link's path.
   */
  readonly lowerLinks?: readonly LowerLink[] | undefined;
}

/** A hard link at `path` to `target`, a file of the layers below (both relative to the layer root). */
export type LowerLink = readonly [path: string, target: string];

/**
 * A layer being unpacked into staging. The tar stream goes into `sink`; the
 * caller verifies digests and then commits or aborts. Nobody sees a staged layer.
 */
export interface LayerWriter {
  readonly sink: Writable;
  commit(): Promise<CommittedLayer>;
  abort(): Promise<void>;
}

/** The right to produce one layer in this store, held by one process at a time. */
export interface IngestLock {
  release(): void;
}

export interface StageOptions {
  readonly limits?: EntryLimits | undefined;
  /** The format to commit in; default `directory`. A store that cannot make it fails with UNSUPPORTED. */
  readonly format?: LayerFormat | undefined;
}

/** Bytes a committed layer holds where the store keeps it. */
export interface LayerFootprint {
  readonly format: LayerFormat;
  /** Allocated bytes (blocks), every file of the layer included. */
  readonly bytes: number;
}

/** Unpacked layers, content-addressed by diff_id and shared by every image. */
export interface LayerStore {
  readonly whiteoutFormat: WhiteoutFormat;
  get(diffId: Digest): Promise<CommittedLayer | undefined>;
  /** The sink fails with LIMIT_EXCEEDED at the first entry past `limits`. */
  stage(diffId: Digest, options?: StageOptions): Promise<LayerWriter>;
  /**
   * Claims the producing of a layer among every process that shares this
   * store, as containerd's content ingest does: undefined while another
   * holds it. A holder that dies (kill -9 included) loses it at once.
   */
  tryIngest(diffId: Digest): Promise<IngestLock | undefined>;
  /** Resolves once nobody holds the layer's ingest (its holder committed, failed or died); rejects when `signal` aborts. */
  waitIngest(diffId: Digest, signal?: AbortSignal): Promise<void>;
  remove(diffId: Digest): Promise<void>;
  list(): Promise<Digest[]>;
  /** What a layer holds on disk; undefined when it is not committed. Optional: `df` and `inspect` show "unknown" without it. */
  footprint?(diffId: Digest): Promise<LayerFootprint | undefined>;
  /** Removes staging left by a crash. Returns how many were removed. */
  cleanStaging(): Promise<number>;
}
