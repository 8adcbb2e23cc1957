import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ImageTsError, SigstoreCheckError, type SigstoreCheck } from '../src/domain/errors.js';
import { Digest } from '../src/domain/image/digest.js';
import type { SigstoreBundleBlob } from '../src/ports/signatures/sigstore-bundle.js';
import type { FulcioTrustMaterial, PkiTrustMaterial } from '../src/ports/signatures/sigstore-trust.js';
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
  /**
   * Keyless material: required, because the port requires verifyKeyless and
   * verifyBundle, and a suite that skipped them would pass an adapter whose
   * keyless half was never checked.
   */
  readonly keyless: KeylessSigstoreFixture;
  teardown(): Promise<void>;
}

/** A Fulcio-like CA and Rekor log of the fixture's own, and signatures under them. */
export interface KeylessSigstoreFixture {
  /** Trusts the keyless signer: its CA, OIDC issuer, email and the Rekor key. */
  readonly fulcio: FulcioTrustMaterial;
  /** Trusts the pki signer (certificate valid now, for `fulcio.subjectEmail`). */
  readonly pki: PkiTrustMaterial;
  /** A keyless `.sig` layer over `payload`, logged at a time inside the leaf's window, or outside it with `late`. */
  signKeyless(payload: Buffer, options?: { readonly late?: boolean }): Promise<SigstoreSignature>;
  /** A `.sig` layer over `payload` by the pki leaf (no log). */
  signPki(payload: Buffer): Promise<SigstoreSignature>;
  /**
   * A v0.3 DSSE bundle of cosign's statement for `digest`: keyless, or by the
   * fixture's key (`publicKey`, logged in `rekorPublicKey`'s log) with `keyed`;
   * `tamper` flips a signature byte or a hash of the inclusion proof.
   */
  bundle(digest: Digest, options?: { readonly keyed?: boolean; readonly tamper?: 'signature' | 'inclusion-proof' }): Promise<SigstoreBundleBlob>;
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

/** SIGNATURE_INVALID, naming this check. */
const failed = (check: SigstoreCheck) => (err: unknown): boolean => {
  invalid(err);
  assert.ok(err instanceof SigstoreCheckError, `not a SigstoreCheckError: ${String(err)}`);
  assert.equal(err.check, check, err.message);
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

    it('keyless: accepts a .sig layer chaining to the fulcio CA, logged while valid; refuses another email or issuer', async () => {
      const k = f.keyless;
      const sig = await k.signKeyless(payload());
      await f.verifier.verifyKeyless(sig, k.fulcio);
      await assert.rejects(f.verifier.verifyKeyless(sig, { ...k.fulcio, subjectEmail: 'someone-else@example.com' }), failed('identity'));
      await assert.rejects(f.verifier.verifyKeyless(sig, { ...k.fulcio, oidcIssuer: 'https://other-issuer.example.com' }), failed('identity'));
    });

    it('keyless: refuses a .sig layer logged outside the certificate window, or whose SET no trusted log made', async () => {
      const k = f.keyless;
      await assert.rejects(f.verifier.verifyKeyless(await k.signKeyless(payload(), { late: true }), k.fulcio), failed('validity-at-log-time'));
      await assert.rejects(f.verifier.verifyKeyless(await k.signKeyless(payload()), { ...k.fulcio, rekorPublicKeys: [f.otherRekorPublicKey] }), failed('set'));
    });

    it('bundles: returns the verified statement; refuses a flipped signature byte or a tampered inclusion proof', async () => {
      const k = f.keyless;
      const digest = Digest.of(randomBytes(16));
      const content = await f.verifier.verifyBundle(await k.bundle(digest), k.fulcio);
      assert.equal(content.kind, 'dsse');
      if (content.kind === 'dsse') assert.match(content.payload.toString('utf8'), new RegExp(digest.encoded));
      await assert.rejects(f.verifier.verifyBundle(await k.bundle(digest, { tamper: 'signature' }), k.fulcio), failed('signature'));
      await assert.rejects(f.verifier.verifyBundle(await k.bundle(digest, { tamper: 'inclusion-proof' }), k.fulcio), failed('inclusion-proof'));
    });

    it('bundles: a keyed bundle verifies under its key and not under fulcio; a keyless one not under keys', async () => {
      const k = f.keyless;
      const digest = Digest.of(randomBytes(16));
      const keyed = await k.bundle(digest, { keyed: true });
      await f.verifier.verifyBundle(keyed, { kind: 'keys', publicKeys: [f.publicKey], rekorPublicKeys: [f.rekorPublicKey] });
      await assert.rejects(f.verifier.verifyBundle(keyed, { kind: 'keys', publicKeys: [f.otherPublicKey], rekorPublicKeys: [f.rekorPublicKey] }), failed('signature'));
      await assert.rejects(f.verifier.verifyBundle(keyed, k.fulcio), failed('key-kind'));
      await assert.rejects(f.verifier.verifyBundle(await k.bundle(digest), { kind: 'keys', publicKeys: [f.publicKey], rekorPublicKeys: undefined }), failed('key-kind'));
    });

    it('pki: accepts a certificate chaining to the roots for the email, refuses another email', async () => {
      const k = f.keyless;
      const sig = await k.signPki(payload());
      await f.verifier.verifyKeyless(sig, k.pki);
      await assert.rejects(f.verifier.verifyKeyless(sig, { ...k.pki, subjectEmail: 'someone-else@example.com' }), failed('identity'));
    });
  });
}
