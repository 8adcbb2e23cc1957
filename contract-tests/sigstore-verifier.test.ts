import { NodeSigstoreVerifier } from '../src/adapters/outbound/signatures/sigstore-verifier.js';
import { COSIGN_SIGNATURE_MEDIA_TYPE } from '../src/domain/policy/cosign-signatures.js';
import { BUNDLE_ANNOTATION, SIGNATURE_ANNOTATION, generateKey, rekorBundle, signPayload, type CosignKeyKind } from '../test/harness/cosign.js';
import { sigstoreVerifierContract } from './sigstore-verifier.contract.js';

// Keys from the openssl CLI and signatures by `openssl dgst -sign` / `pkeyutl`, as the spec's recipe makes them.
for (const kind of ['ecdsa-p256', 'rsa', 'ed25519'] as const satisfies readonly CosignKeyKind[]) {
  sigstoreVerifierContract(`node:crypto (${kind} key, openssl signatures)`, async () => {
    const [key, other, rekor, otherRekor] = await Promise.all([generateKey(kind), generateKey(kind), generateKey('ecdsa-p256'), generateKey('ecdsa-p256')]);
    return {
      verifier: new NodeSigstoreVerifier(),
      publicKey: Buffer.from(key.publicPem),
      otherPublicKey: Buffer.from(other.publicPem),
      rekorPublicKey: Buffer.from(rekor.publicPem),
      otherRekorPublicKey: Buffer.from(otherRekor.publicPem),
      sign: async (payload, options = {}) => {
        const signature = await signPayload(key, payload);
        const annotations: Record<string, string> = { [SIGNATURE_ANNOTATION]: signature.toString('base64') };
        if (options.rekor) annotations[BUNDLE_ANNOTATION] = rekorBundle({ rekorKey: rekor, payload, signature, publicKeyPem: key.publicPem });
        return { mimeType: COSIGN_SIGNATURE_MEDIA_TYPE, payload, annotations };
      },
      teardown: async () => undefined,
    };
  });
}
