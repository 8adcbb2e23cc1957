import { Transform, type Duplex, type TransformCallback } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { Decompressor as ZstdDecompressor } from 'zstd-napi';
import { ImageTsError } from '../../src/domain/errors.js';
import type { Compression } from '../../src/domain/image/media-types.js';
import type { Decompressor } from '../../src/ports/layer/decompressor.js';

/** Buffers the whole input and decodes it at the end: simple, slow, and fine for unit tests. */
export class MemoryDecompressor implements Decompressor {
  readonly name = 'memory';

  supports(compression: Compression): boolean {
    return compression === 'gzip' || compression === 'zstd' || compression === 'none';
  }

  create(compression: Compression): Duplex {
    const chunks: Buffer[] = [];
    return new Transform({
      transform(chunk: Buffer, _e, cb: TransformCallback): void {
        chunks.push(chunk);
        cb();
      },
      flush(cb: TransformCallback): void {
        const all = Buffer.concat(chunks);
        try {
          // A context per layer: zstd-napi's shared one stays stuck after a truncated frame.
          cb(null, compression === 'gzip' ? gunzipSync(all) : compression === 'zstd' ? new ZstdDecompressor().decompress(all) : all);
        } catch (err) {
          cb(new ImageTsError('INVALID_LAYER', `corrupt ${compression} layer data: ${(err as Error).message}`));
        }
      },
    });
  }
}
