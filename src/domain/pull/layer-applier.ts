import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { DecryptFailedError, DigestMismatchError, ImageTsError, NetworkError, SizeMismatchError, asImageTsError } from '../errors.js';
import type { Descriptor } from '../image/descriptor.js';
import { Digest, DigestingStream } from '../image/digest.js';
import { LayerDecipher, ciphertextHmac } from '../encryption/layer-decipher.js';
import type { LayerEncryption } from '../encryption/layer-encryption.js';
import type { PrivateLayerOptions } from '../encryption/layer-options.js';
import type { LayerStateMachine } from '../layer/layer-state.js';
import type { EntryLimits, UnpackBudget } from '../layer/unpack-limits.js';
import type { ImageSource } from '../../ports/image-source/image-source.js';
import type { Decompressor } from '../../ports/layer/decompressor.js';
import type { CommittedLayer, LayerFormat, LayerStore } from '../../ports/layer/layer-store.js';
import type { Logger } from '../../ports/observability/logger.js';
import type { ProgressListener } from '../../ports/observability/progress.js';

/** attribute()'s verdict when the blob is intact but the failed pass read other bytes. */
const TRANSIT = Symbol('transit');

/** What decrypting one layer needs, found before any of its bytes are fetched. */
export interface LayerSecret {
  readonly encryption: LayerEncryption;
  readonly options: PrivateLayerOptions;
}

/** One layer to fetch, verify and unpack. */
export interface LayerJob {
  readonly source: ImageSource;
  readonly desc: Descriptor;
  readonly diffId: Digest;
  readonly secret: LayerSecret | undefined;
  readonly compression: 'gzip' | 'zstd' | 'none';
  readonly signal: AbortSignal;
  readonly machine: LayerStateMachine;
  readonly onProgress: ProgressListener | undefined;
  readonly budget: UnpackBudget;
  /** What the layer is committed as; undefined: the store's default. */
  readonly format?: LayerFormat | undefined;
}

export interface LayerApplierDeps {
  readonly layers: LayerStore;
  readonly decompressor: Decompressor;
  readonly logger: Logger;
}

/**
 * One layer from its blob into the store, as containerd's diff applier does
 * it: one declared pipeline, the same for plain and encrypted layers,
 *
 *   fetch → blob digest → [decrypt (AES-CTR, HMAC) → plain digest] → decompress → diff_id → unpack → commit
 *
 * and the layer is committed only after every digest (and the HMAC)
 * matched. Beside it: a retry when bytes changed in transit, and the
 * attribution that tells a bad blob from a bad transfer.
 */
export class LayerApplier {
  constructor(private readonly deps: LayerApplierDeps, private readonly limits: EntryLimits | undefined) {}

  /** The layer, from the store if it is there by now, else fetched and committed. */
  async apply(job: LayerJob): Promise<{ committed: CommittedLayer; fetched: boolean }> {
    const { desc, diffId, signal, machine, budget } = job;
    // Another process may have committed it while we waited for a slot or for its ingest.
    const existing = await this.deps.layers.get(diffId);
    if (existing) {
      budget.addCommitted(existing.unpackedBytes ?? existing.size, `layer ${desc.digest}`);
      machine.to(machine.state === 'shared' ? 'committed' : 'cached');
      return { committed: existing, fetched: false };
    }
    signal.throwIfAborted();
    machine.to('fetching');
    // One more attempt when the bytes that broke the codec turn out not to be the blob's (corrupted in transit).
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.once(job);
      if (!('transit' in outcome)) return { committed: outcome.committed, fetched: true };
      if (attempt >= 1) throw outcome.transit;
      this.deps.logger.log('info', 'layer.retry', { digest: desc.digest.toString(), reason: outcome.transit.message });
    }
  }

  private async once(job: LayerJob): Promise<{ committed: CommittedLayer } | { transit: ImageTsError }> {
    const { source, desc, diffId, secret, compression, signal, machine, onProgress } = job;
    const writer = await this.deps.layers.stage(diffId, { limits: this.limits, ...(job.format ? { format: job.format } : {}) });
    const meter = job.budget.meter(`layer ${desc.digest}`);
    let compressed: DigestingStream | undefined;
    try {
      const blob: Readable = await source.getBlob(desc, { signal });
      // An uncompressed plain layer's blob is its tar: one hash serves as both digests.
      const sameBytes = !secret && compression === 'none' && diffId.algorithm === desc.digest.algorithm;
      const progress = onProgress && ((bytes: number) => onProgress({ type: 'layer-bytes', digest: desc.digest.toString(), bytes, size: desc.size }));
      compressed = new DigestingStream(
        desc.digest.algorithm,
        { limit: desc.size, what: `layer ${desc.digest}` },
        sameBytes ? (total, chunk) => {
          progress?.(total);
          meter.count(total, chunk);
        } : progress,
      );
      const decipher = secret && new LayerDecipher(secret.options, secret.encryption.pub);
      const wanted = secret?.options.digest;
      const plainBlob = wanted && new DigestingStream(wanted.algorithm);
      const uncompressed = sameBytes ? compressed : new DigestingStream(diffId.algorithm, undefined, meter.count);
      const stages: NodeJS.ReadWriteStream[] = [compressed];
      if (decipher) stages.push(decipher);
      if (plainBlob) stages.push(plainBlob);
      if (compression !== 'none') stages.push(this.deps.decompressor.create(compression));
      if (!sameBytes) stages.push(uncompressed);
      await pipeline([blob, ...stages, writer.sink], { signal });
      machine.to('verifying');
      // The blob first: a short or altered download is the registry's fault, not the key's.
      this.checkBlob(compressed, desc);
      decipher?.verify(`layer ${desc.digest}`);
      if (!uncompressed.digest().equals(diffId)) {
        throw new DigestMismatchError(`layer ${desc.digest} diff_id`, diffId.toString(), uncompressed.digest().toString());
      }
      // skopeo may recompress before encrypting yet record the source digest
      // (spec 2.5): the diff_id above is the check that counts.
      if (wanted && plainBlob && !plainBlob.digest().equals(wanted)) {
        this.deps.logger.log('warn', 'privopts-digest-differs', { layer: desc.digest.toString(), expected: wanted.toString(), actual: plainBlob.digest().toString() });
      }
      const committed = await writer.commit();
      machine.to('committed');
      return { committed };
    } catch (err) {
      meter.refund();
      await writer.abort().catch((e: unknown) => {
        const a = asImageTsError(e);
        this.deps.logger.log('warn', 'cleanup-failed', { what: 'layer staging', code: a.code, message: a.message });
      });
      const read = compressed && { bytes: compressed.bytes, digest: compressed.digestSoFar() };
      const blamed = await this.attribute(err, source, desc, secret, read, signal);
      if (blamed === TRANSIT) {
        return { transit: new NetworkError(`layer ${desc.digest}: bytes changed in transit (the blob re-read intact)`) };
      }
      throw blamed;
    }
  }

  private checkBlob(compressed: DigestingStream, desc: Descriptor): void {
    if (compressed.bytes !== desc.size) throw new SizeMismatchError(`layer ${desc.digest}`, desc.size, compressed.bytes);
    if (!compressed.digest().equals(desc.digest)) {
      throw new DigestMismatchError(`layer blob`, desc.digest.toString(), compressed.digest().toString());
    }
  }

  /**
   * A byte flipped in transit makes the codec or the tar reader fail before
   * the digest can be checked. Blame the right party: re-read the blob, hashing
   * only (bounded by its size); if it does not match its digest, that is the
   * error. Costs a second read, on the failure path only.
   */
  private async attribute(
    err: unknown,
    source: ImageSource,
    desc: Descriptor,
    secret: LayerSecret | undefined,
    read: { readonly bytes: number; readonly digest: Digest } | undefined,
    signal: AbortSignal,
  ): Promise<unknown> {
    if (!(err instanceof ImageTsError) || (err.code !== 'INVALID_LAYER' && err.code !== 'UNSAFE_LAYER') || signal.aborted) return err;
    try {
      const hasher = new DigestingStream(desc.digest.algorithm, { limit: desc.size, what: `layer ${desc.digest}` });
      // The same prefix as the failed pass read: equal bytes mean the layer itself is bad.
      const prefix = read ? createHash(desc.digest.algorithm) : undefined;
      let prefixLeft = read?.bytes ?? 0;
      const mac = secret ? ciphertextHmac(secret.options) : undefined;
      await pipeline(await source.getBlob(desc, { signal }), hasher, async (chunks: AsyncIterable<Buffer>) => {
        for await (const chunk of chunks) {
          mac?.update(chunk);
          if (prefix && prefixLeft > 0) {
            prefix.update(chunk.subarray(0, prefixLeft));
            prefixLeft -= Math.min(prefixLeft, chunk.length);
          }
        }
      }, { signal });
      if (hasher.bytes !== desc.size) return new SizeMismatchError(`layer ${desc.digest}`, desc.size, hasher.bytes);
      if (!hasher.digest().equals(desc.digest)) {
        return new DigestMismatchError('layer blob', desc.digest.toString(), hasher.digest().toString());
      }
      // Garbage after decryption with an intact blob: the ciphertext or the key is not what the HMAC vouches for.
      if (mac && secret && !secret.encryption.pub.hmacMatches(mac.digest())) {
        return new DecryptFailedError(`layer ${desc.digest}: HMAC of the ciphertext does not match; the layer was tampered with or the key is wrong`);
      }
      if (read && prefix && prefix.digest('hex') !== read.digest.encoded) return TRANSIT;
      return err;
    } catch (recheck) {
      return recheck instanceof ImageTsError && recheck.code === 'DIGEST_MISMATCH' ? recheck : err;
    }
  }
}
