import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { ImageTsError, SizeMismatchError } from '../errors.js';

const ALGORITHM_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$/;
const HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };

export class InvalidDigestError extends ImageTsError {
  constructor(input: string, why: string) {
    super('INVALID_MANIFEST', `invalid digest ${JSON.stringify(input)}: ${why}`);
  }
}

/** An OCI content digest, `algorithm:encoded`. Only sha256 and sha512 can be verified. */
export class Digest {
  private constructor(
    readonly algorithm: 'sha256' | 'sha512',
    readonly encoded: string,
  ) {}

  static parse(input: string): Digest {
    const colon = input.indexOf(':');
    if (colon <= 0) throw new InvalidDigestError(input, 'expected algorithm:hex');
    const algorithm = input.slice(0, colon);
    const encoded = input.slice(colon + 1);
    if (!ALGORITHM_RE.test(algorithm)) throw new InvalidDigestError(input, 'bad algorithm');
    if (algorithm !== 'sha256' && algorithm !== 'sha512') {
      throw new InvalidDigestError(input, `unsupported algorithm ${algorithm}`);
    }
    if (encoded.length !== HEX_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(encoded)) {
      throw new InvalidDigestError(input, `${algorithm} needs ${HEX_LENGTH[algorithm]} lowercase hex characters`);
    }
    return new Digest(algorithm, encoded);
  }

  static isValid(input: string): boolean {
    try {
      Digest.parse(input);
      return true;
    } catch {
      return false;
    }
  }

  static of(data: Uint8Array | string, algorithm: 'sha256' | 'sha512' = 'sha256'): Digest {
    return new Digest(algorithm, createHash(algorithm).update(data).digest('hex'));
  }

  equals(other: Digest): boolean {
    return this.algorithm === other.algorithm && this.encoded === other.encoded;
  }

  toString(): string {
    return `${this.algorithm}:${this.encoded}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/**
 * A pass-through stream that hashes and counts what flows through it, so one
 * pass over a layer can verify both the compressed and uncompressed digests.
 */
export class DigestingStream extends Transform {
  private readonly hash: Hash;
  private count = 0;
  private result: Digest | undefined;

  /**
   * With `maxBytes`, a stream that runs longer fails at once instead of at its
   * end. `onBytes` sees the running count and the chunk's size, for progress
   * reports and limits: what it throws fails the stream.
   */
  constructor(
    readonly algorithm: 'sha256' | 'sha512' = 'sha256',
    private readonly maxBytes?: { limit: number; what: string },
    private readonly onBytes?: (total: number, chunk: number) => void,
  ) {
    super();
    this.hash = createHash(algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    if (this.maxBytes && this.count > this.maxBytes.limit) {
      cb(new SizeMismatchError(this.maxBytes.what, this.maxBytes.limit, this.count));
      return;
    }
    if (this.onBytes) {
      try {
        this.onBytes(this.count, chunk.length);
      } catch (err) {
        cb(err as Error);
        return;
      }
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.result = Digest.parse(`${this.algorithm}:${this.hash.digest('hex')}`);
    cb();
  }

  get bytes(): number {
    return this.count;
  }

  /** The digest of the bytes that went through so far, e.g. when the stream failed midway. */
  digestSoFar(): Digest {
    return this.result ?? Digest.parse(`${this.algorithm}:${this.hash.copy().digest('hex')}`);
  }

  /** Available once the stream has ended. */
  digest(): Digest {
    if (!this.result) throw new ImageTsError('INTERNAL', 'digest read before the stream ended');
    return this.result;
  }
}
