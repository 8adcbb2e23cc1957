import { createHash } from 'node:crypto';
import type { Bundle } from '@sigstore/bundle';
import { SigstoreCheckError } from '../../../../domain/errors.js';
import {
  COSIGN_BUNDLE_ANNOTATION,
  COSIGN_CERTIFICATE_ANNOTATION,
  COSIGN_CHAIN_ANNOTATION,
  COSIGN_SIGNATURE_ANNOTATION,
  COSIGN_SIGNATURE_MEDIA_TYPE,
} from '../../../../domain/policy/cosign-signatures.js';
import type { SigstoreSignature } from '../../../../ports/signatures/signature-verifier.js';
import { decodeStdBase64 } from '../cosign-public-key.js';
import { pemCertificates } from './pem-certificates.js';
import { sigstoreBundle } from './sigstore-modules.js';

const V01 = 'application/vnd.dev.sigstore.bundle+json;version=0.1';
const bad = (m: string): SigstoreCheckError => new SigstoreCheckError('format', m);
type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A keyless `.sig` layer as the sigstore bundle it amounts to, so that
 * sigstore-js verifies both layouts alike: a v0.1 bundle with the message
 * signature over the payload, the certificate (then the chain), and the
 * Rekor entry of the `dev.sigstore.cosign/bundle` annotation with its SET as
 * the inclusion promise. No bundle annotation ⇒ no log entry.
 */
export async function legacyKeylessBundle(signature: SigstoreSignature): Promise<Bundle> {
  if (signature.mimeType !== COSIGN_SIGNATURE_MEDIA_TYPE) throw bad(`signature has MIME type ${signature.mimeType}, not ${COSIGN_SIGNATURE_MEDIA_TYPE}`);
  const a = signature.annotations;
  const sigText = a[COSIGN_SIGNATURE_ANNOTATION];
  if (sigText === undefined) throw bad(`missing ${COSIGN_SIGNATURE_ANNOTATION} annotation`);
  const sig = decodeStdBase64(sigText);
  if (!sig || sig.length === 0) throw bad(`${COSIGN_SIGNATURE_ANNOTATION} annotation is not base64`);
  const certPem = a[COSIGN_CERTIFICATE_ANNOTATION];
  if (certPem === undefined) {
    throw new SigstoreCheckError('key-kind', `the signature has no ${COSIGN_CERTIFICATE_ANNOTATION} annotation: it is keyed, but the policy wants a certificate`);
  }
  const leaf = pemCertificates(certPem, `the ${COSIGN_CERTIFICATE_ANNOTATION} annotation`);
  if (leaf.length !== 1) throw bad(`the ${COSIGN_CERTIFICATE_ANNOTATION} annotation holds ${leaf.length} certificates, not one`);
  const chainPem = a[COSIGN_CHAIN_ANNOTATION];
  const chain = chainPem !== undefined && chainPem.trim() !== '' ? pemCertificates(chainPem, `the ${COSIGN_CHAIN_ANNOTATION} annotation`) : [];
  const rekor = a[COSIGN_BUNDLE_ANNOTATION];

  const serialized = {
    mediaType: V01,
    verificationMaterial: {
      x509CertificateChain: { certificates: [...leaf, ...chain].map((der) => ({ rawBytes: der.toString('base64') })) },
      tlogEntries: rekor === undefined ? [] : [tlogEntry(rekor)],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(signature.payload).digest('base64') },
      signature: sig.toString('base64'),
    },
  };
  const { bundleFromJSON } = await sigstoreBundle();
  try {
    return bundleFromJSON(serialized);
  } catch {
    throw bad('the keyless signature annotations do not make a valid sigstore bundle');
  }
}

/** `{"SignedEntryTimestamp","Payload":{"body","integratedTime","logIndex","logID"}}` as a bundle tlog entry. */
function tlogEntry(text: string): Json {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad(`${COSIGN_BUNDLE_ANNOTATION} annotation is not JSON`);
  }
  const p = isRecord(doc) ? doc['Payload'] : undefined;
  const set = isRecord(doc) && typeof doc['SignedEntryTimestamp'] === 'string' ? decodeStdBase64(doc['SignedEntryTimestamp']) : undefined;
  if (!isRecord(p) || !set || set.length === 0) throw bad(`${COSIGN_BUNDLE_ANNOTATION} annotation lacks SignedEntryTimestamp or Payload`);
  const { body, integratedTime, logIndex, logID } = p;
  const bodyBytes = typeof body === 'string' ? decodeStdBase64(body) : undefined;
  if (!bodyBytes) throw bad('Rekor bundle: Payload.body is not base64');
  if (typeof integratedTime !== 'number' || !Number.isSafeInteger(integratedTime)) throw bad('Rekor bundle: Payload.integratedTime is not an integer');
  if (typeof logIndex !== 'number' || !Number.isSafeInteger(logIndex)) throw bad('Rekor bundle: Payload.logIndex is not an integer');
  if (typeof logID !== 'string' || !/^(?:[0-9a-f]{2})+$/.test(logID)) throw bad('Rekor bundle: Payload.logID is not hex');
  let entry: unknown;
  try {
    entry = JSON.parse(bodyBytes.toString('utf8'));
  } catch {
    throw new SigstoreCheckError('log-body', 'the Rekor entry body is not JSON');
  }
  const kind = isRecord(entry) ? entry['kind'] : undefined;
  const version = isRecord(entry) ? entry['apiVersion'] : undefined;
  if (typeof kind !== 'string' || typeof version !== 'string') throw new SigstoreCheckError('log-body', 'the Rekor entry body has no kind and apiVersion');
  return {
    logIndex: String(logIndex),
    logId: { keyId: Buffer.from(logID, 'hex').toString('base64') },
    kindVersion: { kind, version },
    integratedTime: String(integratedTime),
    inclusionPromise: { signedEntryTimestamp: set.toString('base64') },
    canonicalizedBody: bodyBytes.toString('base64'),
  };
}
