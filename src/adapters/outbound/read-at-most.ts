/**
 * A body read whole, but never past `max` bytes, counted as they arrive:
 * a Content-Length or a stat size is only a hint (a device such as
 * /dev/zero, a growing file, a server that lies). At the first byte past
 * `max` the source is destroyed and `tooLarge()` is thrown. Every capped
 * read of an HTTP body or a small file goes through here.
 */
export async function readAtMost(
  source: AsyncIterable<Uint8Array> & { destroy(): unknown },
  max: number,
  tooLarge: () => Error,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    if (total > max) {
      source.destroy();
      throw tooLarge();
    }
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
  }
  return Buffer.concat(chunks, total);
}
