import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ImageTsError } from '../src/domain/errors.js';
import { COSIGN_BUNDLE_ANNOTATION, COSIGN_SIGNATURE_ANNOTATION } from '../src/domain/policy/cosign-signatures.js';
import type { SigstoreSignature, SigstoreVerifier } from '../src/ports/signatures/signature-verifier.js';

export interface SigstoreVerifierFixture {
  readonly verifier: SigstoreVerifier;
  /** The PEM public key (cosign.pub) of the key `sign` signs with. */
  readonly publicKey: Buffer;
  /** The PEM public key of a key that signs nothing here. */
  readonly otherPublicKey: Buffer;
  /** The PEM public key of the Rekor log whose SETs `sign` attaches. */
  readonly rekorPublicKey: Buffer;
  /** The PEM public key of another Rekor log. */
  readonly otherRekorPublicKey: Buffer;
  /**
   * `payload` signed as `cosign sign --key` does, as the `.sig` layer
   * holds it: the base64 signature annotation and, with `rekor`, the Rekor
   * bundle of a hashedrekord entry for it.
   */
  sign(payload: Buffer, options?: { readonly rekor?: boolean }): Promise<SigstoreSignature>;
  teardown(): Promise<void>;
}

/** cosign's payload for an image. */
export function cosignPayload(dockerReference: string, manifestDigest: string): Buffer {
  return Buffer.from(JSON.stringify({
    critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': manifestDigest }, type: 'cosign container image signature' },
    optional: null,
  }));
}

const invalid = (err: unknown): boolean => {
  assert.ok(err instanceof ImageTsError, `not an ImageTsError: ${String(err)}`);
  assert.equal(err.code, 'SIGNATURE_INVALID', err.message);
  assert.doesNotMatch(err.message, /\n/);
  return true;
};

const payload = (): Buffer => cosignPayload('registry.example.com/team/app', `sha256:${randomBytes(32).toString('hex')}`);

/**
 * What the policy's sigstoreSigned check relies on from cosign's
 * cryptography: a signature over the exact payload by a trusted key, and,
 * once Rekor keys are configured, a bundle that vouches for exactly this
 * signature. Anything else is SIGNATURE_INVALID.
 */
export function sigstoreVerifierContract(name: string, make: () => Promise<SigstoreVerifierFixture>): void {
  describe(`SigstoreVerifier contract: ${name}`, () => {
    let f: SigstoreVerifierFixture;
    before(async () => {
      f = await make();
    });
    after(async () => {
      await f?.teardown();
    });

    it('accepts a signature over the payload by a trusted key', async () => {
      await f.verifier.verify(await f.sign(payload()), [f.publicKey]);
    });

    it('accepts a signature by any of several trusted keys', async () => {
      const sig = await f.sign(payload());
      await f.verifier.verify(sig, [f.otherPublicKey, f.publicKey]);
      await f.verifier.verify(sig, [f.publicKey, f.otherPublicKey]);
    });

    it('refuses a signature by a key that is not trusted with SIGNATURE_INVALID', async () => {
      const sig = await f.sign(payload());
      await assert.rejects(f.verifier.verify(sig, [f.otherPublicKey]), invalid);
      await assert.rejects(f.verifier.verify(sig, []), invalid);
    });

    it('refuses a payload changed after signing with SIGNATURE_INVALID', async () => {
      const sig = await f.sign(payload());
      const changed = Buffer.from(sig.payload.toString('utf8').replace('registry.example.com/team/app', 'registry.example.com/team/evil'));
      await assert.rejects(f.verifier.verify({ ...sig, payload: changed }, [f.publicKey]), invalid);
    });

    it('refuses a missing or malformed signature annotation, or another MIME type, with SIGNATURE_INVALID', async () => {
      const sig = await f.sign(payload());
      const { [COSIGN_SIGNATURE_ANNOTATION]: _, ...without } = sig.annotations;
      const cases: SigstoreSignature[] = [
        { ...sig, annotations: without },
        { ...sig, annotations: { ...sig.annotations, [COSIGN_SIGNATURE_ANNOTATION]: 'not base64!' } },
        { ...sig, annotations: { ...sig.annotations, [COSIGN_SIGNATURE_ANNOTATION]: randomBytes(64).toString('base64') } },
        { ...sig, mimeType: 'application/vnd.in-toto+json' },
      ];
      for (const c of cases) await assert.rejects(f.verifier.verify(c, [f.publicKey]), invalid);
    });

    it('with Rekor keys, accepts a bundle whose SET verifies and that names this signature, and refuses one that does not', async () => {
      const logged = await f.sign(payload(), { rekor: true });
      await f.verifier.verify(logged, [f.publicKey], [f.rekorPublicKey]);
      await f.verifier.verify(logged, [f.publicKey], [f.otherRekorPublicKey, f.rekorPublicKey]);
      // The SET of a log that is not trusted.
      await assert.rejects(f.verifier.verify(logged, [f.publicKey], [f.otherRekorPublicKey]), invalid);
      // A good bundle, but of another signature.
      const other = await f.sign(payload(), { rekor: true });
      const swapped = { ...other, annotations: { ...other.annotations, [COSIGN_BUNDLE_ANNOTATION]: logged.annotations[COSIGN_BUNDLE_ANNOTATION]! } };
      await assert.rejects(f.verifier.verify(swapped, [f.publicKey], [f.rekorPublicKey]), invalid);
    });

    it('with Rekor keys, refuses a signature that has no bundle', async () => {
      const unlogged = await f.sign(payload());
      assert.equal(unlogged.annotations[COSIGN_BUNDLE_ANNOTATION], undefined);
      await assert.rejects(f.verifier.verify(unlogged, [f.publicKey], [f.rekorPublicKey]), invalid);
    });
  });
}
