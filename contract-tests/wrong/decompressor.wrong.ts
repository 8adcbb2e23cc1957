/**
 * Wrong on purpose: a gzip decoder made "lenient" with Z_SYNC_FLUSH, which
 * hands over a truncated layer as if it were whole instead of failing.
 */
import { Transform, type Duplex, type TransformCallback } from 'node:stream';
import { constants, gunzipSync } from 'node:zlib';
import { ImageTsError } from '../../src/domain/errors.js';
import type { Compression } from '../../src/domain/image/media-types.js';
import type { Decompressor } from '../../src/ports/layer/decompressor.js';
import { MemoryDecompressor } from '../../test/mocks/memory-decompressor.js';
import { decompressorContract } from '../decompressor.contract.js';

class LenientGzip implements Decompressor {
  readonly name = 'lenient-gzip';
  private readonly others = new MemoryDecompressor();

  supports(compression: Compression): boolean {
    return this.others.supports(compression);
  }

  create(compression: Compression): Duplex {
    if (compression !== 'gzip') return this.others.create(compression);
    const chunks: Buffer[] = [];
    return new Transform({
      transform(chunk: Buffer, _e, cb: TransformCallback): void {
        chunks.push(chunk);
        cb();
      },
      flush(cb: TransformCallback): void {
        try {
          cb(null, gunzipSync(Buffer.concat(chunks), { finishFlush: constants.Z_SYNC_FLUSH }));
        } catch (err) {
          cb(new ImageTsError('INVALID_LAYER', `corrupt gzip layer data: ${(err as Error).message}`));
        }
      },
    });
  }
}

// Whole layers in memory, as the mock it is built on.
decompressorContract('wrong: a gzip decoder that accepts truncated input', () => new LenientGzip(), { boundedOutput: false });
