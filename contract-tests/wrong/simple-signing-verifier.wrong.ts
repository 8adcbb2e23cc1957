/**
 * Wrong on purpose: a verifier that trusts the signer's key ID and hands
 * out the payload even when the signature does not match it ("bad
 * signature"), as if finding the key were enough.
 */
import * as openpgp from 'openpgp';
import { OpenPgpSimpleSigningVerifier } from '../../src/adapters/outbound/signatures/openpgp-verifier.js';
import { ImageTsError } from '../../src/domain/errors.js';
import type { SimpleSigningVerifier, VerifiedSimpleSignature } from '../../src/ports/signatures/signature-verifier.js';
import { gpgSigningFixture } from '../../test/harness/signing-fixtures.js';
import { simpleSigningVerifierContract } from '../simple-signing-verifier.contract.js';

class KeyIdIsEnough implements SimpleSigningVerifier {
  private readonly inner = new OpenPgpSimpleSigningVerifier();

  async verify(signature: Buffer, keyrings: readonly Buffer[]): Promise<VerifiedSimpleSignature> {
    try {
      return await this.inner.verify(signature, keyrings);
    } catch (err) {
      if (!(err instanceof ImageTsError) || !/bad signature/.test(err.message)) throw err;
      const message = await openpgp.readMessage({ binaryMessage: new Uint8Array(signature) });
      const keys = (await Promise.all(keyrings.map((ring) => openpgp.readKeys({ binaryKeys: new Uint8Array(ring) })))).flat();
      const data = message.getLiteralData();
      return { payload: Buffer.from(data instanceof Uint8Array ? data : Buffer.from(String(data))), keyIdentity: keys[0]?.getFingerprint().toUpperCase() ?? '' };
    }
  }
}

simpleSigningVerifierContract('wrong: a verifier satisfied by a known key ID', () => gpgSigningFixture(new KeyIdIsEnough(), 'ed25519', false));
