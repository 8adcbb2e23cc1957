/**
 * The keyless half of the SigstoreVerifier contract fixture: a CA, a leaf
 * and a log of its own, with the fixture's openssl keys reused for the keyed
 * bundle and the Rekor log, so one fixture serves both halves.
 */
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import type { KeylessSigstoreFixture } from '../../contract-tests/sigstore-verifier.contract.js';
import type { CosignKey } from './cosign.js';
import {
  SIGNED_AT, SIMPLESIGNING_MEDIA_TYPE, certificateAuthority, cosignStatement, dsseBundle, leafCertificate, legacyKeylessAnnotations, signBytes, type RekorLog,
} from '../helpers/sigstore-material.js';

const EMAIL = 'contract-signer@example.com';
const ISSUER = 'https://oidc.contract.example.com';

/** The fixture's Rekor key (PEM) as a log the material helpers can sign with. */
function logOf(rekor: CosignKey): RekorLog {
  const publicKey = createPublicKey(rekor.publicPem);
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return { key: { privateKey: createPrivateKey(rekor.privatePem), publicKey }, publicPem: rekor.publicPem, logId: createHash('sha256').update(spki).digest(), origin: 'rekor.contract.example - 1', name: 'rekor.contract.example' };
}

const flip = (b64: string, at: number): string => {
  const b = Buffer.from(b64, 'base64');
  b[at % b.length] = b[at % b.length]! ^ 0x01;
  return b.toString('base64');
};

export function keylessFixture(o: { readonly key: CosignKey; readonly rekor: CosignKey }): KeylessSigstoreFixture {
  const ca = certificateAuthority('contract');
  const log = logOf(o.rekor);
  const leaf = leafCertificate(ca, { email: EMAIL, oidcIssuer: ISSUER });
  const pkiLeaf = leafCertificate(ca, { email: EMAIL, notBefore: Math.floor(Date.now() / 1000) - 60, lifetimeSeconds: 3600 });
  const keyed = { privateKey: createPrivateKey(o.key.privatePem), publicKey: createPublicKey(o.key.publicPem), publicPem: o.key.publicPem };
  return {
    fulcio: { kind: 'fulcio', caCertificates: Buffer.from(ca.chainPem), oidcIssuer: ISSUER, subjectEmail: EMAIL, rekorPublicKeys: [Buffer.from(log.publicPem)] },
    pki: { kind: 'pki', caRoots: Buffer.from(ca.rootPem), caIntermediates: Buffer.from(ca.intermediatePem), subjectEmail: EMAIL, subjectHostname: undefined },
    signKeyless: async (payload, options = {}) => ({
      mimeType: SIMPLESIGNING_MEDIA_TYPE,
      payload,
      annotations: legacyKeylessAnnotations(payload, leaf, ca, { log, integratedTime: options.late ? SIGNED_AT + 3600 : SIGNED_AT }),
    }),
    signPki: async (payload) => ({
      mimeType: SIMPLESIGNING_MEDIA_TYPE,
      payload,
      annotations: {
        'dev.cosignproject.cosign/signature': signBytes(pkiLeaf.key.privateKey, payload).toString('base64'),
        'dev.sigstore.cosign/certificate': pkiLeaf.pem,
        'dev.sigstore.cosign/chain': ca.chainPem,
      },
    }),
    bundle: async (digest, options = {}) => {
      const made = dsseBundle(cosignStatement(digest.toString()), { signer: options.keyed ? { key: keyed } : { certificate: leaf }, log });
      const json = JSON.parse(made.bytes.toString('utf8')) as {
        dsseEnvelope: { signatures: { sig: string }[] };
        verificationMaterial: { tlogEntries: { inclusionProof: { hashes: string[] } }[] };
      };
      if (options.tamper === 'signature') json.dsseEnvelope.signatures[0]!.sig = flip(json.dsseEnvelope.signatures[0]!.sig, 9);
      if (options.tamper === 'inclusion-proof') {
        const hashes = json.verificationMaterial.tlogEntries[0]!.inclusionProof.hashes;
        hashes[0] = flip(hashes[0]!, 2);
      }
      return { mediaType: made.mediaType, bytes: Buffer.from(JSON.stringify(json)), subject: digest };
    },
  };
}
