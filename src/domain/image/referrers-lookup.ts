import type { ImageSource } from '../../ports/image-source/image-source.js';
import { ImageTsError } from '../errors.js';
import type { Descriptor } from './descriptor.js';
import type { Digest } from './digest.js';
import { filterReferrers, parseReferrersIndex, referrersTag } from './referrers.js';

/**
 * The referrers tag schema: the index tagged `<alg>-<hex>` of the subject,
 * filtered here (no server filters a tag). No such tag ⇒ [].
 */
export async function referrersFromTag(
  source: Pick<ImageSource, 'getManifest' | 'description'>,
  subject: Digest,
  artifactType: string | undefined,
  signal?: AbortSignal,
): Promise<Descriptor[]> {
  const tag = referrersTag(subject);
  let fetched;
  try {
    fetched = await source.getManifest(tag, signal);
  } catch (err) {
    if (err instanceof ImageTsError && err.code === 'NOT_FOUND') return [];
    throw err;
  }
  return filterReferrers(parseReferrersIndex(fetched.bytes, fetched.mediaType, `referrers index ${tag} of ${source.description}`), artifactType);
}

/** The source's own referrers lookup, or the tag schema for a source that has none. */
export function listReferrers(source: ImageSource, subject: Digest, artifactType: string | undefined, signal?: AbortSignal): Promise<Descriptor[]> {
  if (source.listReferrers) return source.listReferrers(subject, artifactType, signal);
  return referrersFromTag(source, subject, artifactType, signal);
}
