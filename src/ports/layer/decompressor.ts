import type { Duplex } from 'node:stream';
import type { Compression } from '../../domain/image/media-types.js';

/** Streaming decompression. gzip must read every member, zstd every frame. */
export interface Decompressor {
  readonly name: string;
  supports(compression: Compression): boolean;
  create(compression: Compression): Duplex;
}
