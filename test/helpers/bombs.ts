import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import { tar } from './tar-writer.js';

const BLOCK = 512;
const CHUNK = 16 * 1024 * 1024;

export interface Bomb {
  /** The compressed layer: a few hundred KB. */
  readonly blob: Buffer;
  /** sha256 of the uncompressed tar. */
  readonly diffId: string;
  /** Bytes of the uncompressed tar. */
  readonly tarBytes: number;
}

/**
 * A layer holding one file of `size` zero bytes (a multiple of 16 MiB), the
 * way a padded disk image or model file compresses: frames (zstd) or members
 * (gzip) of 16 MiB of zeros one after another, so that a layer of gigabytes
 * is made from one compressed chunk and never held whole.
 */
export function zeroBomb(size: number, compression: 'gzip' | 'zstd', name = 'zeros.img'): Bomb {
  if (size % CHUNK !== 0) throw new Error('size must be a multiple of 16 MiB');
  const compress = compression === 'gzip' ? (b: Buffer) => gzipSync(b, { level: 9 }) : (b: Buffer) => zstdCompress(b);
  // The tar writer's header for an empty file, with the real size patched in.
  const header = Buffer.from(tar([{ name, content: '' }], { noEndBlocks: true }));
  header.write(size.toString(8).padStart(11, '0') + '\0', 124, 12, 'ascii');
  header.write('        ', 148, 8, 'ascii');
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  const zeros = Buffer.alloc(CHUNK);
  const end = Buffer.alloc(2 * BLOCK); // size is block-aligned: no padding, just the end-of-archive blocks
  const chunkBlob = compress(zeros);
  const hash = createHash('sha256').update(header);
  const parts = [compress(header)];
  for (let done = 0; done < size; done += CHUNK) {
    hash.update(zeros);
    parts.push(chunkBlob);
  }
  hash.update(end);
  parts.push(compress(end));
  return { blob: Buffer.concat(parts), diffId: `sha256:${hash.digest('hex')}`, tarBytes: header.length + size + end.length };
}
