import { LimitExceededError } from '../errors.js';

/** Bounds on what unpacking may make; an absent bound is no bound. */
export interface UnpackLimits {
  /** Bytes of one layer's uncompressed tar stream (what its diff_id covers). */
  readonly maxUnpackedBytesPerLayer?: number | undefined;
  /** The same, summed over an image's layers, those already in the store included (a bundle holds them all). */
  readonly maxUnpackedBytesPerImage?: number | undefined;
  readonly maxEntriesPerLayer?: number | undefined;
  /** Bytes of an entry's path or link target, as the tar holds it. */
  readonly maxPathBytes?: number | undefined;
}

/** The limits a layer store enforces while it unpacks: it alone reads the entries. */
export type EntryLimits = Pick<UnpackLimits, 'maxEntriesPerLayer' | 'maxPathBytes'>;

/** The config key (and, with dashes, the flag) each limit is set by. */
export const LIMIT_NAMES: Readonly<Record<keyof UnpackLimits, string>> = {
  maxUnpackedBytesPerLayer: 'max_unpacked_bytes_per_layer',
  maxUnpackedBytesPerImage: 'max_unpacked_bytes_per_image',
  maxEntriesPerLayer: 'max_entries_per_layer',
  maxPathBytes: 'max_path_bytes',
};

/** One attempt at one layer: its bytes count toward the image until the attempt is refunded. */
export interface LayerMeter {
  /** For DigestingStream's onBytes: throws LimitExceededError past a bound. */
  count(total: number, chunk: number): void;
  /** Takes back what a failed attempt counted, so a retry is not charged twice. */
  refund(): void;
}

/**
 * One image's unpacked bytes, summed across its layers while they stream in
 * concurrently: the first byte past a bound fails the pull, long before the
 * disk (or, in a guest, the memory) fills.
 */
export class UnpackBudget {
  private used = 0;

  constructor(private readonly limits: UnpackLimits) {}

  /** A layer found in the store (or made by another pull) counts in full. */
  addCommitted(bytes: number, what: string): void {
    this.used += bytes;
    this.checkImage(what);
  }

  meter(what: string): LayerMeter {
    let mine = 0;
    const perLayer = this.limits.maxUnpackedBytesPerLayer;
    return {
      count: (total, chunk) => {
        if (perLayer !== undefined && total > perLayer) {
          throw new LimitExceededError(LIMIT_NAMES.maxUnpackedBytesPerLayer, `${what} unpacks to more than ${perLayer} bytes`);
        }
        mine += chunk;
        this.used += chunk;
        this.checkImage(what);
      },
      refund: () => {
        this.used -= mine;
        mine = 0;
      },
    };
  }

  private checkImage(what: string): void {
    const max = this.limits.maxUnpackedBytesPerImage;
    if (max !== undefined && this.used > max) {
      throw new LimitExceededError(LIMIT_NAMES.maxUnpackedBytesPerImage, `the image unpacks to more than ${max} bytes (reached at ${what})`);
    }
  }
}
