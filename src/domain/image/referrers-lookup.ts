import type { ImageSource, Referrer } from '../../ports/image-source/image-source.js';
import { ImageTsError } from '../errors.js';
import type { Digest } from './digest.js';
import { asReferrers, filterReferrers, parseReferrersIndex, referrersTag } from './referrers.js';

/**
 * The referrers tag schema: the index tagged `<alg>-<hex>` of the subject,
 * filtered here (no server filters a tag). No such tag ⇒ [].
 */
export async function referrersFromTag(
  source: Pick<ImageSource, 'getManifest' | 'description'>,
  subject: Digest,
  artifactType: string | undefined,
  signal?: AbortSignal,
): Promise<Referrer[]> {
  const tag = referrersTag(subject);
  let fetched;
  try {
    fetched = await source.getManifest(tag, signal);
  } catch (err) {
    if (err instanceof ImageTsError && err.code === 'NOT_FOUND') return [];
    throw err;
  }
  return asReferrers(filterReferrers(parseReferrersIndex(fetched.bytes, fetched.mediaType, `referrers index ${tag} of ${source.description}`), artifactType));
}
