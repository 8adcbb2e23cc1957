import { PassThrough, type Duplex, type TransformOptions } from 'node:stream';
import type { ZlibOptions } from 'node:zlib';
import { ImageTsError } from '../../../domain/errors.js';
import type { Compression } from '../../../domain/image/media-types.js';
import type { Decompressor } from '../../../ports/layer/decompressor.js';
import { tryNativeSyscalls } from '../native/syscalls.js';
import { IsalGunzip, isalOf } from './isal-gunzip.js';
import { ZstdDecoder } from './zstd-decoder.js';
import { lazyRequire } from '../lazy.js';

const zlib = lazyRequire<typeof import('node:zlib')>('node:zlib');

/**
 * Re-codes a codec's own failures as INVALID_LAYER (corrupt data is the
 * layer's fault, not ours). Errors that other streams of the pipeline pushed
 * in, and aborts, pass unchanged. Done on the codec itself so that no extra
 * stream hop sits in the hot path.
 */
function recodeErrors<T extends Duplex>(stream: T, kind: string): T {
  const emit = stream.emit.bind(stream) as (event: string | symbol, ...args: unknown[]) => boolean;
  stream.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    const err = args[0];
    if (event === 'error' && err instanceof Error && !(err instanceof ImageTsError) && err.name !== 'AbortError') {
      return emit('error', new ImageTsError('INVALID_LAYER', `corrupt ${kind} layer data: ${err.message}`, { cause: err }));
    }
    return emit(event, ...args);
  }) as T['emit'];
  return stream;
}

const READ_AHEAD = 8 * 1024 * 1024;

/**
 * In-process codecs: gzip through ISA-L when the addon was built with
 * libisal, else node's zlib (every member); zstd through zstd-napi (every frame).
 */
export class NativeDecompressor implements Decompressor {
  readonly name = 'native';
  private isal: ReturnType<typeof isalOf> | null | undefined;

  /** `isal: false` keeps gzip on node's zlib. */
  constructor(private readonly options: { readonly isal?: boolean } = {}) {}

  /** Whether gzip is decoded by ISA-L here; loads the addon on first ask. */
  hasIsal(): boolean {
    if (this.isal === undefined) this.isal = this.options.isal === false ? null : (isalOf(tryNativeSyscalls()) ?? null);
    return this.isal !== null;
  }

  supports(compression: Compression): boolean {
    return compression === 'gzip' || compression === 'zstd' || compression === 'none';
  }

  create(compression: Compression): Duplex {
    switch (compression) {
      case 'gzip':
        if (this.hasIsal()) return recodeErrors(new IsalGunzip(this.isal!), 'gzip');
        // zlib works on the threadpool; a deep output buffer lets it run ahead of
        // the unpacker on the main thread instead of taking turns with it.
        // zlib hands its options to Transform, so stream options apply though ZlibOptions does not list them.
        const options: ZlibOptions & TransformOptions = { chunkSize: 128 * 1024, readableHighWaterMark: READ_AHEAD };
        return recodeErrors(zlib().createGunzip(options), 'gzip');
      case 'zstd':
        return recodeErrors(new ZstdDecoder(), 'zstd');
      case 'none':
        return new PassThrough();
    }
  }
}
