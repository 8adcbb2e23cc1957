import { createPublicKey, type KeyObject } from 'node:crypto';
import { SignatureInvalidError } from '../../../domain/errors.js';

const invalid = (m: string): SignatureInvalidError => new SignatureInvalidError(m);

/** A trusted key as cosign uses it: the key itself and its PKIX DER, which Rekor entries name. */
export interface CosignPublicKey {
  readonly key: KeyObject;
  readonly spkiDer: Buffer;
  readonly kind: 'ecdsa' | 'rsa' | 'ed25519';
}

const EC_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/**
 * The first PEM block of `pem`, which must be a PKIX `PUBLIC KEY` (ECDSA
 * P-256/P-384/P-521, RSA, Ed25519) or a PKCS#1 `RSA PUBLIC KEY`.
 */
export function parseCosignPublicKey(pem: Buffer | string, what = 'public key'): CosignPublicKey {
  const block = firstPemBlock(typeof pem === 'string' ? pem : pem.toString('latin1'));
  if (!block) throw invalid(`${what} is not PEM`);
  if (block.type !== 'PUBLIC KEY' && block.type !== 'RSA PUBLIC KEY') {
    throw invalid(`${what}: PEM block is ${block.type}, not PUBLIC KEY or RSA PUBLIC KEY`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: block.der, format: 'der', type: block.type === 'PUBLIC KEY' ? 'spki' : 'pkcs1' });
  } catch {
    throw invalid(`${what}: ${block.type} does not parse`);
  }
  const type = key.asymmetricKeyType;
  let kind: CosignPublicKey['kind'];
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (!curve || !EC_CURVES.has(curve)) throw invalid(`${what}: unsupported ECDSA curve ${curve ?? 'unknown'}`);
    kind = 'ecdsa';
  } else if (type === 'rsa') {
    kind = 'rsa';
  } else if (type === 'ed25519') {
    kind = 'ed25519';
  } else {
    throw invalid(`${what}: unsupported key type ${type ?? 'unknown'}`);
  }
  return { key, kind, spkiDer: key.export({ type: 'spki', format: 'der' }) };
}

export interface PemBlock {
  readonly type: string;
  readonly der: Buffer;
  /** Offset just past the END line. */
  readonly end: number;
}

/** Like Go's pem.Decode: the first well-formed block; headers are skipped, the body must be base64. */
export function firstPemBlock(text: string): PemBlock | undefined {
  const re = /(?:^|\n)-----BEGIN ([^\r\n]*?)-----[ \t]*\r?\n([\s\S]*?)\n-----END \1-----[ \t]*(?:\r?\n|$)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const [, type, rawBody] = m;
    if (type === undefined || rawBody === undefined) continue;
    let body = rawBody;
    const headerEnd = /\r?\n\r?\n/.exec(body);
    if (headerEnd && body.slice(0, headerEnd.index).includes(':')) body = body.slice(headerEnd.index + headerEnd[0].length);
    const der = decodeStdBase64(body.replace(/[ \t\r\n]/g, ''));
    if (der !== undefined && der.length > 0) return { type, der, end: m.index + m[0].length };
    re.lastIndex = m.index + 1;
  }
  return undefined;
}

/** Standard padded base64 as Go's decoder takes it: `\r` and `\n` are ignored, anything else non-base64 fails. */
export function decodeStdBase64(text: string): Buffer | undefined {
  const s = text.replace(/[\r\n]/g, '');
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}

