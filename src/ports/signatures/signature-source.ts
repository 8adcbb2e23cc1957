import type { Digest } from '../../domain/image/digest.js';
import type { Reference } from '../../domain/image/reference.js';

/**
 * Where simple-signing signatures live: a registries.d lookaside (file,
 * http, https) for the repository the image was read from. Returns the
 * signature blobs in order, `signature-1` upward, none when there are none.
 */
export interface SimpleSignatureSource {
  getSignatures(physical: Reference, manifestDigest: Digest, signal?: AbortSignal): Promise<Buffer[]>;
  /**
   * registries.d's `use-sigstore-attachments` for the repository read:
   * whether sigstore attachments (the `.sig` tag, bundle referrers) are read
   * at all. Undefined when no section says; absent method likewise.
   */
  sigstoreAttachments?(physical: Reference, signal?: AbortSignal): Promise<boolean | undefined>;
}
