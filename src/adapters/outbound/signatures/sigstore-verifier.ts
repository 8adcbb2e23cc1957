import { constants, createHash, verify } from 'node:crypto';
import { SignatureInvalidError, SigstoreCheckError } from '../../../domain/errors.js';
import { canonicalJson } from '../../../domain/encryption/jcs.js';
import {
  COSIGN_BUNDLE_ANNOTATION,
  COSIGN_CERTIFICATE_ANNOTATION,
  COSIGN_SIGNATURE_ANNOTATION,
  COSIGN_SIGNATURE_MEDIA_TYPE,
} from '../../../domain/policy/cosign-signatures.js';
import type { SigstoreBundleBlob, VerifiedBundleContent } from '../../../ports/signatures/sigstore-bundle.js';
import type { FulcioTrustMaterial, PkiTrustMaterial, SigstoreTrust } from '../../../ports/signatures/sigstore-trust.js';
import type { SigstoreSignature, SigstoreVerifier } from '../../../ports/signatures/signature-verifier.js';
import { decodeStdBase64, firstPemBlock, parseCosignPublicKey, type CosignPublicKey, type PemBlock } from './cosign-public-key.js';
import { verifyBundleBlob, verifyLegacyKeyless } from './sigstore/bundle-blob.js';

export { decodeStdBase64, parseCosignPublicKey, type CosignPublicKey } from './cosign-public-key.js';

const invalid = (m: string): SignatureInvalidError => new SignatureInvalidError(m);

/**
 * Cosign's keyed verification with node:crypto. The signature annotation is
 * checked against every trusted key (ECDSA/RSA PKCS#1 v1.5 over SHA-256,
 * pure Ed25519); with Rekor keys, the bundle's SET and hashedrekord body must
 * also vouch for exactly this payload, signature and key. Keyless `.sig`
 * layers and sigstore bundles are verified by sigstore-js (./sigstore/).
 */
export class NodeSigstoreVerifier implements SigstoreVerifier {
  /** `now`: the clock a pki chain is checked at (it has no log time); fulcio and keyed checks use log times only. */
  constructor(private readonly now: () => Date = () => new Date()) {}

  async verify(signature: SigstoreSignature, publicKeys: readonly Buffer[], rekorPublicKeys?: readonly Buffer[]): Promise<void> {
    if (publicKeys.length === 0) throw invalid('no public keys to verify the cosign signature with');
    const keys = publicKeys.map((pem, i) => parseCosignPublicKey(pem, `public key ${i + 1}`));
    const rekorKeys = (rekorPublicKeys ?? []).map((pem, i) => {
      const k = parseCosignPublicKey(pem, `Rekor public key ${i + 1}`);
      if (k.kind !== 'ecdsa') throw invalid(`Rekor public key ${i + 1} is ${k.kind}, but Rekor keys must be ECDSA`);
      return k;
    });
    if (signature.mimeType !== COSIGN_SIGNATURE_MEDIA_TYPE) {
      throw invalid(`signature has MIME type ${signature.mimeType}, not ${COSIGN_SIGNATURE_MEDIA_TYPE}`);
    }
    const base64Signature = signature.annotations[COSIGN_SIGNATURE_ANNOTATION];
    if (base64Signature === undefined) throw invalid(`missing ${COSIGN_SIGNATURE_ANNOTATION} annotation`);
    const sig = decodeStdBase64(base64Signature);
    if (sig === undefined || sig.length === 0) throw invalid(`${COSIGN_SIGNATURE_ANNOTATION} annotation is not base64`);

    const signer = keys.find((k) => verifyWithKey(k, signature.payload, sig));
    if (!signer) {
      if (signature.annotations[COSIGN_CERTIFICATE_ANNOTATION] !== undefined) {
        throw new SigstoreCheckError('key-kind', `the signature is keyless (it carries a certificate) and matches none of the ${keys.length} trusted public key(s) the policy wants`);
      }
      throw new SigstoreCheckError('signature', `cryptographic signature verification failed: the signature matches none of the ${keys.length} trusted public key(s)`);
    }
    if (rekorKeys.length === 0) return;
    const bundle = signature.annotations[COSIGN_BUNDLE_ANNOTATION];
    if (bundle === undefined) throw invalid(`missing ${COSIGN_BUNDLE_ANNOTATION} annotation, required when Rekor public keys are configured`);
    verifyRekorBundle(bundle, rekorKeys, signer, sig, signature.payload);
  }

  /** Keyless `.sig` layers and bundles go through sigstore-js (./sigstore/); see there for what is hand-written. */
  verifyKeyless(signature: SigstoreSignature, trust: FulcioTrustMaterial | PkiTrustMaterial): Promise<void> {
    return verifyLegacyKeyless(signature, trust, this.now());
  }

  verifyBundle(bundle: SigstoreBundleBlob, trust: SigstoreTrust): Promise<VerifiedBundleContent> {
    return verifyBundleBlob(bundle, trust, this.now());
  }
}

function verifyWithKey(k: CosignPublicKey, data: Buffer, sig: Buffer): boolean {
  try {
    switch (k.kind) {
      case 'ecdsa':
        return verify('sha256', data, { key: k.key, dsaEncoding: 'der' }, sig);
      case 'rsa':
        return verify('sha256', data, { key: k.key, padding: constants.RSA_PKCS1_PADDING }, sig);
      case 'ed25519':
        return verify(null, data, k.key, sig);
    }
  } catch {
    return false;
  }
}

type JsonRecord = Record<string, unknown>;

const isRecord = (v: unknown): v is JsonRecord => typeof v === 'object' && v !== null && !Array.isArray(v);

function exactKeys(o: JsonRecord, keys: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw invalid(`Rekor bundle: unknown key ${JSON.stringify(k)} in ${what}`);
  for (const k of keys) if (!(k in o)) throw invalid(`Rekor bundle: ${what} lacks ${JSON.stringify(k)}`);
}

/**
 * The checks of containers/image's VerifyRekorSET for a keyed signature: the
 * SET is an ECDSA signature by a Rekor key over SHA-256 of the RFC 8785 form
 * of `Payload`, and the logged hashedrekord entry names this payload's
 * SHA-256, this signature and the key that verified it.
 */
function verifyRekorBundle(bundleText: string, rekorKeys: readonly CosignPublicKey[], signer: CosignPublicKey, sig: Buffer, payload: Buffer): void {
  let bundle: unknown;
  try {
    bundle = JSON.parse(bundleText);
  } catch {
    throw invalid('Rekor bundle is not valid JSON');
  }
  if (!isRecord(bundle)) throw invalid('Rekor bundle is not a JSON object');
  exactKeys(bundle, ['SignedEntryTimestamp', 'Payload'], 'the bundle');
  const setText = bundle['SignedEntryTimestamp'];
  const set = typeof setText === 'string' ? decodeStdBase64(setText) : undefined;
  if (!set || set.length === 0) throw invalid('Rekor bundle: SignedEntryTimestamp is not base64');
  const p = bundle['Payload'];
  if (!isRecord(p)) throw invalid('Rekor bundle: Payload is not an object');
  exactKeys(p, ['body', 'integratedTime', 'logIndex', 'logID'], 'Payload');
  const { body: bodyText, integratedTime, logIndex, logID } = p;
  const body = typeof bodyText === 'string' ? decodeStdBase64(bodyText) : undefined;
  if (!body) throw invalid('Rekor bundle: Payload.body is not base64');
  if (typeof integratedTime !== 'number' || !Number.isSafeInteger(integratedTime)) throw invalid('Rekor bundle: Payload.integratedTime is not an integer');
  if (typeof logIndex !== 'number' || !Number.isSafeInteger(logIndex)) throw invalid('Rekor bundle: Payload.logIndex is not an integer');
  if (typeof logID !== 'string') throw invalid('Rekor bundle: Payload.logID is not a string');

  const canonical = canonicalJson({ body: body.toString('base64'), integratedTime, logIndex, logID });
  const setOk = rekorKeys.some((k) => {
    try {
      return verify('sha256', Buffer.from(canonical, 'utf8'), { key: k.key, dsaEncoding: 'der' }, set);
    } catch {
      return false;
    }
  });
  if (!setOk) throw invalid(`Rekor bundle: SignedEntryTimestamp matches none of the ${rekorKeys.length} Rekor public key(s)`);

  let entry: unknown;
  try {
    entry = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid('Rekor entry body is not valid JSON');
  }
  if (!isRecord(entry)) throw invalid('Rekor entry body is not a JSON object');
  if (entry['kind'] !== 'hashedrekord') throw invalid(`Rekor entry kind is ${JSON.stringify(entry['kind'])}, not "hashedrekord"`);
  if (entry['apiVersion'] !== '0.0.1') throw invalid(`Rekor hashedrekord apiVersion is ${JSON.stringify(entry['apiVersion'])}, not "0.0.1"`);
  const spec = entry['spec'];
  if (!isRecord(spec)) throw invalid('Rekor hashedrekord has no spec');

  const signature = spec['signature'];
  if (!isRecord(signature)) throw invalid('Rekor hashedrekord has no signature');
  const content = typeof signature['content'] === 'string' ? decodeStdBase64(signature['content']) : undefined;
  if (!content) throw invalid('Rekor hashedrekord signature has no base64 content');
  const publicKey = signature['publicKey'];
  const keyPemBytes = isRecord(publicKey) && typeof publicKey['content'] === 'string' ? decodeStdBase64(publicKey['content']) : undefined;
  if (!keyPemBytes) throw invalid('Rekor hashedrekord has no base64 publicKey content');
  const keyBlock = singlePemBlock(keyPemBytes.toString('latin1'));
  if (!keyBlock) throw invalid('Rekor hashedrekord publicKey is not a single PEM block');
  if (!keyBlock.der.equals(signer.spkiDer)) throw invalid('Rekor hashedrekord publicKey is not the key that verified the signature');
  if (!content.equals(sig)) throw invalid('Rekor hashedrekord signature is not the signature being verified');

  const data = spec['data'];
  const hash = isRecord(data) ? data['hash'] : undefined;
  if (!isRecord(hash)) throw invalid('Rekor hashedrekord has no data.hash');
  if (hash['algorithm'] !== 'sha256') throw invalid(`Rekor hashedrekord hash algorithm is ${JSON.stringify(hash['algorithm'])}, not "sha256"`);
  const expected = createHash('sha256').update(payload).digest('hex');
  if (hash['value'] !== expected) throw invalid('Rekor hashedrekord hash is not the SHA-256 of the payload');
}

/** A PEM block with nothing but whitespace after it, as VerifyRekorSET demands. */
function singlePemBlock(text: string): PemBlock | undefined {
  const block = firstPemBlock(text);
  return block && text.slice(block.end).trim() === '' ? block : undefined;
}
