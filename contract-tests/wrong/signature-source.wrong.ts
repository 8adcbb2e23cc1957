/**
 * Wrong on purpose: a signature source that answers a store it cannot
 * reach with "no signatures", so an outage reads as an unsigned image.
 */
import type { Digest } from '../../src/domain/image/digest.js';
import { ImageTsError } from '../../src/domain/errors.js';
import type { Reference } from '../../src/domain/image/reference.js';
import { MemorySignatureSource } from '../../test/mocks/memory-signature-source.js';
import { signatureSourceContract } from '../signature-source.contract.js';

class QuietWhenDown extends MemorySignatureSource {
  override async getSignatures(physical: Reference, manifestDigest: Digest, signal?: AbortSignal): Promise<Buffer[]> {
    try {
      return await super.getSignatures(physical, manifestDigest, signal);
    } catch (err) {
      if (err instanceof ImageTsError && err.code === 'NETWORK') return [];
      throw err;
    }
  }
}

signatureSourceContract('wrong: a source that reads an unreachable store as empty', async () => {
  const source = new QuietWhenDown();
  const deadSource = new QuietWhenDown();
  deadSource.down = true;
  return { source, deadSource, store: async (ref, d, blobs) => source.put(ref, d, blobs), teardown: async () => undefined };
});
