import type { Bundle } from '@sigstore/bundle';
import { SigstoreCheckError } from '../../../../domain/errors.js';
import { SIGSTORE_BUNDLE_MEDIA_TYPES } from '../../../../domain/policy/sigstore-bundles.js';
import type { SigstoreBundleBlob, VerifiedBundleContent } from '../../../../ports/signatures/sigstore-bundle.js';
import type { FulcioTrustMaterial, PkiTrustMaterial, SigstoreTrust } from '../../../../ports/signatures/sigstore-trust.js';
import type { SigstoreSignature } from '../../../../ports/signatures/signature-verifier.js';
import { verifyParsedBundle } from './bundle-verification.js';
import { legacyKeylessBundle } from './legacy-bundle.js';
import { sigstoreBundle } from './sigstore-modules.js';

const bad = (m: string): SigstoreCheckError => new SigstoreCheckError('format', m);

/** Parses the bundle bytes (the media type they were served as must be the one they declare), then verifies them. */
export async function verifyBundleBlob(blob: SigstoreBundleBlob, trust: SigstoreTrust, now: Date): Promise<VerifiedBundleContent> {
  const bundle = await parseBundle(blob);
  await verifyParsedBundle(bundle, trust, blob.artifact, now);
  const c = bundle.content;
  if (c.$case === 'dsseEnvelope') return { kind: 'dsse', payloadType: c.dsseEnvelope.payloadType, payload: Buffer.from(c.dsseEnvelope.payload) };
  const digest = c.messageSignature.messageDigest;
  if (!digest) throw bad('the message signature has no digest');
  return { kind: 'message', algorithm: digest.algorithm === 1 ? 'sha256' : `hash-algorithm-${digest.algorithm}`, digest: Buffer.from(digest.digest) };
}

async function parseBundle(blob: SigstoreBundleBlob): Promise<Bundle> {
  let doc: unknown;
  try {
    doc = JSON.parse(blob.bytes.toString('utf8'));
  } catch {
    throw bad('the sigstore bundle is not JSON');
  }
  const declared = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>)['mediaType'] : undefined;
  if (typeof declared !== 'string' || !SIGSTORE_BUNDLE_MEDIA_TYPES.includes(declared)) {
    throw bad(`the bundle's mediaType ${JSON.stringify(declared)} is not a sigstore bundle version this build knows`);
  }
  if (blob.mediaType !== declared) throw bad(`the bundle was attached as ${blob.mediaType} but declares ${declared}`);
  const { bundleFromJSON } = await sigstoreBundle();
  try {
    return bundleFromJSON(doc);
  } catch {
    throw bad(`the sigstore bundle is not a valid ${declared}`);
  }
}

/** A keyless `.sig` layer: converted to a v0.1 bundle over the payload, then verified like any bundle. */
export async function verifyLegacyKeyless(signature: SigstoreSignature, trust: FulcioTrustMaterial | PkiTrustMaterial, now: Date): Promise<void> {
  const bundle = await legacyKeylessBundle(signature);
  await verifyParsedBundle(bundle, trust, signature.payload, now);
}
