import { ConfigFileError } from '../../domain/errors.js';
import { LIMIT_NAMES, type UnpackLimits } from '../../domain/layer/unpack-limits.js';

/** Limits as the config file or flags set them: 0 turns a limit off. */
export type ConfiguredLimits = { -readonly [K in keyof UnpackLimits]?: number };

export const LIMIT_KEYS = Object.keys(LIMIT_NAMES) as (keyof UnpackLimits)[];

/** PATH_MAX: a longer path cannot be opened in one call, so no real image has one. */
const MAX_PATH_BYTES = 4096;

/**
 * What each kind of deployment gets when the config sets nothing.
 *
 * On a host the store is on disk, which NO_SPACE already guards, as
 * containerd and skopeo leave it: bytes are unbounded, and only the entry
 * count and path length are held to what no real image exceeds.
 *
 * In a guest (cdh-guest, kbs-direct, offline) the store is the guest's
 * memory, so a layer that unpacks to more kills the guest instead of failing
 * the pull: an image, and so any layer, may take half of the guest's memory,
 * which leaves the rest to the workload and the guest's own services.
 */
export function defaultLimits(guest: boolean, totalMemory: number): UnpackLimits {
  if (!guest) return { maxEntriesPerLayer: 10_000_000, maxPathBytes: MAX_PATH_BYTES };
  const half = Math.floor(totalMemory / 2);
  return { maxUnpackedBytesPerLayer: half, maxUnpackedBytesPerImage: half, maxEntriesPerLayer: 1_000_000, maxPathBytes: MAX_PATH_BYTES };
}

/** Configured values over the defaults; 0 means no limit. */
export function resolveLimits(configured: ConfiguredLimits, defaults: UnpackLimits): UnpackLimits {
  const out: { -readonly [K in keyof UnpackLimits]?: number } = {};
  for (const key of LIMIT_KEYS) {
    const v = configured[key] ?? defaults[key];
    if (v !== undefined && v !== 0) out[key] = v;
  }
  return out;
}

const UNITS: Readonly<Record<string, number>> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/**
 * A limit's value: a non-negative integer, or for byte limits a size such as
 * `512M`, `10G` or `10GiB` (binary units). Throws `fail(message)`'s error.
 */
export function parseLimit(key: keyof UnpackLimits, value: unknown, fail: (message: string) => Error = (m) => new ConfigFileError(m)): number {
  const name = LIMIT_NAMES[key];
  const bytes = key === 'maxUnpackedBytesPerLayer' || key === 'maxUnpackedBytesPerImage';
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const m = /^(\d+)\s*(?:([KMGT])(?:i?B)?)?$/i.exec(value.trim());
    const unit = UNITS[(m?.[2] ?? '').toUpperCase()];
    if (m && unit !== undefined && (bytes || unit === 1)) {
      const n = Number(m[1]) * unit;
      if (Number.isSafeInteger(n)) return n;
    }
  }
  throw fail(`${name} must be ${bytes ? 'a number of bytes (e.g. 1073741824, 512M, 10G)' : 'a whole number'}, 0 for no limit`);
}
