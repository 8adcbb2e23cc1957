import type { ImageSource } from '../../ports/image-source/image-source.js';
import { DigestMismatchError, InvalidManifestError, SizeMismatchError } from '../errors.js';
import type { Descriptor } from './descriptor.js';
import { Digest } from './digest.js';

/**
 * A small blob (an image config, a cosign payload) read whole, and checked
 * against its descriptor: at most `max` bytes, exactly `size` of them, and
 * the digest. Reading stops at the first byte past the descriptor's size.
 */
export async function readVerifiedBlob(
  source: Pick<ImageSource, 'getBlob'>,
  desc: Descriptor,
  o: { readonly what: string; readonly max: number; readonly signal?: AbortSignal | undefined },
): Promise<Buffer> {
  if (desc.size > o.max) throw new InvalidManifestError(`${o.what} is ${desc.size} bytes, more than the ${o.max} accepted`);
  const stream = await source.getBlob(desc, { signal: o.signal });
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      const b = chunk as Buffer;
      total += b.length;
      if (total > desc.size) throw new SizeMismatchError(o.what, desc.size, total);
      chunks.push(b);
    }
  } finally {
    stream.destroy();
  }
  if (total !== desc.size) throw new SizeMismatchError(o.what, desc.size, total);
  const bytes = Buffer.concat(chunks, total);
  const actual = Digest.of(bytes, desc.digest.algorithm);
  if (!actual.equals(desc.digest)) throw new DigestMismatchError(o.what, desc.digest.toString(), actual.toString());
  return bytes;
}
