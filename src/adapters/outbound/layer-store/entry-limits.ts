import { LimitExceededError } from '../../../domain/errors.js';
import { LIMIT_NAMES, type EntryLimits } from '../../../domain/layer/unpack-limits.js';
import { encodeName, isRawName } from './raw-name.js';

/**
 * Before anything of an entry is made: a limit stops the layer at the
 * first entry past it. Paths are measured in the bytes the tar holds.
 */
export function checkEntryLimits(limits: EntryLimits | undefined, entries: number, name: string, linkpath: string | undefined): void {
  if (!limits) return;
  const maxEntries = limits.maxEntriesPerLayer;
  if (maxEntries !== undefined && entries > maxEntries) {
    throw new LimitExceededError(LIMIT_NAMES.maxEntriesPerLayer, `the layer has more than ${maxEntries} entries`);
  }
  const maxPath = limits.maxPathBytes;
  if (maxPath === undefined) return;
  for (const [what, p] of [['path', name], ['link target', linkpath]] as const) {
    const n = p === undefined ? 0 : isRawName(p) ? encodeName(p).length : Buffer.byteLength(p);
    if (n > maxPath) {
      throw new LimitExceededError(LIMIT_NAMES.maxPathBytes, `an entry's ${what} has ${n} bytes, over ${maxPath} (${JSON.stringify(p!.slice(0, 60))}...)`);
    }
  }
}
