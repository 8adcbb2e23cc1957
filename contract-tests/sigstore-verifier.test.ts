import { NodeSigstoreVerifier } from '../src/adapters/outbound/signatures/sigstore-verifier.js';
import { cosignSigningFixture } from '../test/harness/signing-fixtures.js';
import { sigstoreVerifierContract } from './sigstore-verifier.contract.js';

for (const kind of ['ecdsa-p256', 'rsa', 'ed25519'] as const) {
  sigstoreVerifierContract(`node:crypto (${kind} key, openssl signatures)`, () => cosignSigningFixture(new NodeSigstoreVerifier(), kind));
}
