/**
 * Wrong on purpose: a cosign verifier that checks the signature but never
 * the Rekor bundle, so configuring a transparency log changes nothing.
 */
import { NodeSigstoreVerifier } from '../../src/adapters/outbound/signatures/sigstore-verifier.js';
import type { SigstoreBundleBlob, VerifiedBundleContent } from '../../src/ports/signatures/sigstore-bundle.js';
import type { FulcioTrustMaterial, PkiTrustMaterial, SigstoreTrust } from '../../src/ports/signatures/sigstore-trust.js';
import type { SigstoreSignature, SigstoreVerifier } from '../../src/ports/signatures/signature-verifier.js';
import { cosignSigningFixture } from '../../test/harness/signing-fixtures.js';
import { sigstoreVerifierContract } from '../sigstore-verifier.contract.js';

class NoTransparencyLog implements SigstoreVerifier {
  private readonly inner = new NodeSigstoreVerifier();

  verify(signature: SigstoreSignature, publicKeys: readonly Buffer[]): Promise<void> {
    return this.inner.verify(signature, publicKeys);
  }

  verifyKeyless(signature: SigstoreSignature, trust: FulcioTrustMaterial | PkiTrustMaterial): Promise<void> {
    return this.inner.verifyKeyless(signature, trust);
  }

  verifyBundle(bundle: SigstoreBundleBlob, trust: SigstoreTrust): Promise<VerifiedBundleContent> {
    return this.inner.verifyBundle(bundle, trust);
  }
}

sigstoreVerifierContract('wrong: a verifier that ignores its Rekor keys', () => cosignSigningFixture(new NoTransparencyLog(), 'ecdsa-p256'));
