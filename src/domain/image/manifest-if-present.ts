import type { FetchedManifest, ImageSource } from '../../ports/image-source/image-source.js';
import { ImageTsError } from '../errors.js';

/**
 * A manifest that may rightly be absent (an attachment tag: `.sig`, the
 * referrers tag schema): undefined for NOT_FOUND, every other failure thrown.
 */
export async function manifestIfPresent(source: Pick<ImageSource, 'getManifest'>, ref: string, signal?: AbortSignal): Promise<FetchedManifest | undefined> {
  try {
    return await source.getManifest(ref, signal);
  } catch (err) {
    if (err instanceof ImageTsError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
}
