import type { ImageSource, Referrer } from '../../ports/image-source/image-source.js';
import { manifestIfPresent } from './manifest-if-present.js';
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
  const fetched = await manifestIfPresent(source, tag, signal);
  if (!fetched) return [];
  return asReferrers(filterReferrers(parseReferrersIndex(fetched.bytes, fetched.mediaType, `referrers index ${tag} of ${source.description}`), artifactType));
}
