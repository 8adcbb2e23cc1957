import type { Readable } from 'node:stream';
import { ImageTsError } from '../errors.js';

/** Reads a small document (manifest, config) into memory, refusing anything over `max` bytes. */
export async function readBounded(stream: Readable, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const b = chunk as Buffer;
    total += b.length;
    if (total > max) {
      stream.destroy();
      throw new ImageTsError('INVALID_MANIFEST', `${what} is larger than ${max} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, total);
}
