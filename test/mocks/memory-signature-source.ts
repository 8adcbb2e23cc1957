import { NetworkError, SignatureInvalidError } from '../../src/domain/errors.js';
import type { Digest } from '../../src/domain/image/digest.js';
import type { Reference } from '../../src/domain/image/reference.js';
import type { SimpleSignatureSource } from '../../src/ports/signatures/signature-source.js';

const SIMPLE_SIGNING_PREFIX = Buffer.from('\0simple-signing\n', 'latin1');
const SIGSTORE_JSON_PREFIX = Buffer.from('\0sigstore-json\n', 'latin1');

/**
 * A lookaside in memory, by repository path and manifest digest (the tag
 * and the registry host play no part, as in registries.d). It keeps
 * c/image's bounds and blob forms; `down` makes it an unreachable store.
 */
export class MemorySignatureSource implements SimpleSignatureSource {
  private readonly stored = new Map<string, readonly Buffer[]>();
  readonly requests: string[] = [];
  down = false;

  constructor(private readonly limits: { readonly signatures: number; readonly bytes: number } = { signatures: 128, bytes: 4 << 20 }) {}

  /** Stores blobs as signature-1..N, replacing what was there. */
  put(physical: Reference, manifestDigest: Digest, blobs: readonly Buffer[]): void {
    this.stored.set(key(physical, manifestDigest), blobs.map((b) => Buffer.from(b)));
  }

  async getSignatures(physical: Reference, manifestDigest: Digest, signal?: AbortSignal): Promise<Buffer[]> {
    signal?.throwIfAborted();
    const k = key(physical, manifestDigest);
    this.requests.push(k);
    if (this.down) throw new NetworkError(`in-memory signature store is down (${k})`);
    const blobs = this.stored.get(k) ?? [];
    if (blobs.length > this.limits.signatures) throw new SignatureInvalidError(`${k}: more than ${this.limits.signatures} signatures`);
    const out: Buffer[] = [];
    for (const blob of blobs) {
      if (blob.length > this.limits.bytes) throw new SignatureInvalidError(`${k}: signature larger than ${this.limits.bytes} bytes`);
      if (startsWith(blob, SIGSTORE_JSON_PREFIX)) continue; // a cosign signature, not a simple one
      out.push(Buffer.from(startsWith(blob, SIMPLE_SIGNING_PREFIX) ? blob.subarray(SIMPLE_SIGNING_PREFIX.length) : blob));
    }
    return out;
  }
}

const key = (ref: Reference, digest: Digest): string => `${ref.path}@${digest.algorithm}=${digest.encoded}`;
const startsWith = (b: Buffer, prefix: Buffer): boolean => b.subarray(0, prefix.length).equals(prefix);
