import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ImageTsError } from '../src/domain/errors.js';
import type { SimpleSigningVerifier } from '../src/ports/signatures/signature-verifier.js';

export interface SimpleSigningVerifierFixture {
  readonly verifier: SimpleSigningVerifier;
  /** The public keyring (binary or armored) of the key `sign` signs with. */
  readonly keyring: Buffer;
  /** That key's primary fingerprint, uppercase hex. */
  readonly fingerprint: string;
  /** The public keyring of a key that signs nothing here. */
  readonly otherKeyring: Buffer;
  /**
   * `payload` as a binary signed message by the key, as `gpg --sign` and
   * skopeo write one, with uncompressed literal data (`-z 0`) so that the
   * contract can alter the payload in place.
   */
  sign(payload: Buffer): Promise<Buffer>;
  teardown(): Promise<void>;
}

/** A simple-signing payload, as containers/image writes it. */
export function simpleSigningPayload(dockerReference: string, manifestDigest: string): Buffer {
  return Buffer.from(JSON.stringify({
    critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': manifestDigest }, type: 'atomic container signature' },
    optional: { creator: 'image-ts contract' },
  }));
}

const invalid = (err: unknown): boolean => {
  assert.ok(err instanceof ImageTsError, `not an ImageTsError: ${String(err)}`);
  assert.equal(err.code, 'SIGNATURE_INVALID', err.message);
  assert.doesNotMatch(err.message, /\n/);
  return true;
};

const payload = (): Buffer => simpleSigningPayload('registry.example.com/team/app:v1', `sha256:${randomBytes(32).toString('hex')}`);

/**
 * What the policy's signedBy check relies on from simple signing's OpenPGP
 * layer: a good signature by a trusted key yields the exact payload and who
 * signed it; anything else is SIGNATURE_INVALID.
 */
export function simpleSigningVerifierContract(name: string, make: () => Promise<SimpleSigningVerifierFixture>): void {
  describe(`SimpleSigningVerifier contract: ${name}`, () => {
    let f: SimpleSigningVerifierFixture;
    before(async () => {
      f = await make();
    });
    after(async () => {
      await f?.teardown();
    });

    it('accepts a signature by a trusted key and returns the exact payload and the signer\'s fingerprint', async () => {
      const p = payload();
      const got = await f.verifier.verify(await f.sign(p), [f.keyring]);
      assert.deepEqual(got.payload, p);
      assert.equal(got.keyIdentity, f.fingerprint);
      assert.match(got.keyIdentity, /^[0-9A-F]+$/);
    });

    it('finds the signer among several trusted keyrings', async () => {
      const p = payload();
      const sig = await f.sign(p);
      for (const rings of [[f.otherKeyring, f.keyring], [f.keyring, f.otherKeyring]]) {
        const got = await f.verifier.verify(sig, rings);
        assert.deepEqual(got.payload, p);
        assert.equal(got.keyIdentity, f.fingerprint);
      }
    });

    it('refuses a signature by a key that is not trusted with SIGNATURE_INVALID', async () => {
      const sig = await f.sign(payload());
      await assert.rejects(f.verifier.verify(sig, [f.otherKeyring]), invalid);
      await assert.rejects(f.verifier.verify(sig, []), invalid);
    });

    it('refuses a signature whose payload was altered with SIGNATURE_INVALID', async () => {
      const p = payload();
      const sig = await f.sign(p);
      const at = sig.indexOf(p);
      assert.ok(at >= 0, 'the fixture signs without compression');
      const tampered = Buffer.from(sig);
      // "atomic" -> "atomia": same length, another claim.
      const word = at + p.indexOf('atomic container signature') + 5;
      tampered[word] = 0x61;
      await assert.rejects(f.verifier.verify(tampered, [f.keyring]), invalid);
    });

    it('refuses what is not a signed message with SIGNATURE_INVALID', async () => {
      // Last: a compressed-data packet whose contents are not deflate.
      for (const notSigned of [Buffer.alloc(0), Buffer.from('not a signature'), payload(), Buffer.concat([Buffer.from([0xa3, 0x01]), Buffer.alloc(100, 0x5a)])]) {
        await assert.rejects(f.verifier.verify(notSigned, [f.keyring]), invalid);
      }
    });

    it('verifies several signatures at once against the same keyring', async () => {
      const payloads = Array.from({ length: 4 }, payload);
      const sigs = await Promise.all(payloads.map((p) => f.sign(p)));
      const got = await Promise.all(sigs.map((s) => f.verifier.verify(s, [f.keyring])));
      got.forEach((g, i) => assert.deepEqual(g.payload, payloads[i]));
    });
  });
}
