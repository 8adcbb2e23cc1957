import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ImageTsError } from '../src/domain/errors.js';
import { Digest } from '../src/domain/image/digest.js';
import { Reference } from '../src/domain/image/reference.js';
import type { SimpleSignatureSource } from '../src/ports/signatures/signature-source.js';

export interface SignatureSourceFixture {
  readonly source: SimpleSignatureSource;
  /**
   * Stores `blobs` as `signature-1` … `signature-N` of the image, as a
   * signer (skopeo, c/image) writes them where `source` reads, replacing
   * what was there.
   */
  store(physical: Reference, manifestDigest: Digest, blobs: readonly Buffer[]): Promise<void>;
  /** The same adapter, reading a store that cannot be reached or read (a refused connection, an unreadable path). */
  readonly deadSource: SimpleSignatureSource;
  teardown(): Promise<void>;
}

/** c/image's bounds, which image-ts keeps: signatures per image, bytes per signature. */
export const MAX_SIMPLE_SIGNATURES = 128;
export const MAX_SIMPLE_SIGNATURE_BYTES = 4 << 20;

const SIMPLE_SIGNING_PREFIX = Buffer.from('\0simple-signing\n', 'latin1');
const SIGSTORE_JSON_PREFIX = Buffer.from('\0sigstore-json\n', 'latin1');

/** Bytes shaped like binary OpenPGP (a packet tag first), distinct per call. */
const openpgpLike = (first: number, size = 300): Buffer => Buffer.concat([Buffer.from([first]), randomBytes(size - 1)]);

const code = (...codes: string[]) => (err: unknown): boolean => {
  assert.ok(err instanceof ImageTsError, `not an ImageTsError: ${String(err)}`);
  assert.ok(codes.includes(err.code), `${err.code}: ${err.message}`);
  assert.doesNotMatch(err.message, /\n/);
  return true;
};

/**
 * What the policy's signedBy check relies on from where simple signatures
 * live: the signatures stored for a repository and manifest digest, in
 * order, as OpenPGP bytes; none when none are stored; a store it cannot read
 * is an error, never "unsigned"; and every read is bounded.
 */
export function signatureSourceContract(name: string, make: () => Promise<SignatureSourceFixture>): void {
  describe(`SimpleSignatureSource contract: ${name}`, () => {
    let f: SignatureSourceFixture;
    before(async () => {
      f = await make();
    });
    after(async () => {
      await f?.teardown();
    });
    // A fresh digest per test keeps the tests apart on one store.
    const digest = (): Digest => Digest.of(randomBytes(16));

    it('serves the signatures stored for a manifest digest, signature-1 first, byte for byte, whatever the tag', async () => {
      const d = digest();
      const blobs = [openpgpLike(0xa3), openpgpLike(0x90), openpgpLike(0xc4, 64 * 1024)];
      await f.store(Reference.parse('registry.example.com/team/app:v1'), d, blobs);
      assert.deepEqual(await f.source.getSignatures(Reference.parse('registry.example.com/team/app:v1'), d), blobs);
      assert.deepEqual(await f.source.getSignatures(Reference.parse(`registry.example.com/team/app@${d}`), d), blobs);
      assert.deepEqual(await f.source.getSignatures(Reference.parse('registry.example.com/team/app:other'), d), blobs);
    });

    it('has none for a digest or a repository with nothing stored', async () => {
      const d = digest();
      await f.store(Reference.parse('registry.example.com/team/app:v1'), d, [openpgpLike(0xa3)]);
      assert.deepEqual(await f.source.getSignatures(Reference.parse('registry.example.com/team/app:v1'), digest()), []);
      assert.deepEqual(await f.source.getSignatures(Reference.parse('registry.example.com/team/other:v1'), d), []);
    });

    it('hands over simple signatures without the \\0simple-signing prefix, and passes over sigstore-json blobs', async () => {
      const d = digest();
      const raw = openpgpLike(0xa3);
      const prefixed = openpgpLike(0x90);
      await f.store(Reference.parse('registry.example.com/team/app:v1'), d, [
        raw,
        Buffer.concat([SIGSTORE_JSON_PREFIX, Buffer.from('{"mimeType":"application/vnd.dev.cosign.simplesigning.v1+json"}')]),
        Buffer.concat([SIMPLE_SIGNING_PREFIX, prefixed]),
      ]);
      assert.deepEqual(await f.source.getSignatures(Reference.parse('registry.example.com/team/app:v1'), d), [raw, prefixed]);
    });

    it('reports a store it cannot reach or read as NETWORK or IO, never as "no signatures"', async () => {
      await assert.rejects(f.deadSource.getSignatures(Reference.parse('registry.example.com/team/app:v1'), digest()), code('NETWORK', 'IO'));
    });

    it(`refuses a signature over ${MAX_SIMPLE_SIGNATURE_BYTES} bytes with SIGNATURE_INVALID, and takes one of exactly that size`, async () => {
      const d = digest();
      const ref = Reference.parse('registry.example.com/team/big:v1');
      await f.store(ref, d, [openpgpLike(0xa3, MAX_SIMPLE_SIGNATURE_BYTES + 1)]);
      await assert.rejects(f.source.getSignatures(ref, d), code('SIGNATURE_INVALID'));
      const exact = openpgpLike(0xa3, MAX_SIMPLE_SIGNATURE_BYTES);
      await f.store(ref, d, [exact]);
      assert.deepEqual(await f.source.getSignatures(ref, d), [exact]);
    });

    it(`refuses more than ${MAX_SIMPLE_SIGNATURES} signatures with SIGNATURE_INVALID, and takes ${MAX_SIMPLE_SIGNATURES}`, async () => {
      const d = digest();
      const ref = Reference.parse('registry.example.com/team/many:v1');
      const blobs = Array.from({ length: MAX_SIMPLE_SIGNATURES }, () => openpgpLike(0x90, 40));
      await f.store(ref, d, blobs);
      assert.deepEqual(await f.source.getSignatures(ref, d), blobs);
      await f.store(ref, d, [...blobs, openpgpLike(0x90, 40)]);
      await assert.rejects(f.source.getSignatures(ref, d), code('SIGNATURE_INVALID'));
    });

    it('stops when the signal is aborted', async () => {
      const d = digest();
      const ref = Reference.parse('registry.example.com/team/app:v1');
      await f.store(ref, d, [openpgpLike(0xa3)]);
      await assert.rejects(f.source.getSignatures(ref, d, AbortSignal.abort(new Error('the caller gave up'))));
    });
  });
}
