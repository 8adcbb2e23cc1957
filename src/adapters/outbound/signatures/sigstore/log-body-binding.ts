import { X509Certificate } from 'node:crypto';
import { SigstoreCheckError } from '../../../../domain/errors.js';
import { decodeStdBase64 } from '../cosign-public-key.js';

/** The signer a log entry must name: a leaf certificate (keyless, pki) or a public key (keyed). */
export type ExpectedSigner = { readonly certificateDer: Buffer } | { readonly spkiDer: Buffer };

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (v: unknown, ...path: (string | number)[]): unknown => {
  let cur = v;
  for (const p of path) cur = typeof p === 'number' ? (Array.isArray(cur) ? cur[p] : undefined) : isRecord(cur) ? cur[p] : undefined;
  return cur;
};

/**
 * Hand-written because sigstore-js checks that a log entry names this
 * signature and digest, but not this certificate or key: an entry for the
 * same signature bytes logged under another certificate would pass it. Rekor
 * v1 bodies (hashedrekord, dsse 0.0.1) carry the verifier as base64 PEM;
 * Rekor v2 bodies (0.0.2) as raw DER.
 */
export function checkLogBodyBindsSigner(canonicalizedBody: Buffer, expected: ExpectedSigner): void {
  let body: unknown;
  try {
    body = JSON.parse(canonicalizedBody.toString('utf8'));
  } catch {
    throw new SigstoreCheckError('log-body', 'the log entry body is not JSON');
  }
  const kind = at(body, 'kind');
  const version = at(body, 'apiVersion');
  let verifier: { pem: Buffer } | { der: Buffer; isCertificate: boolean } | undefined;
  if (kind === 'hashedrekord' && version === '0.0.1') verifier = pemField(at(body, 'spec', 'signature', 'publicKey', 'content'));
  else if (kind === 'dsse' && version === '0.0.1') {
    const sigs = at(body, 'spec', 'signatures');
    if (!Array.isArray(sigs) || sigs.length !== 1) throw new SigstoreCheckError('log-body', 'the dsse log entry does not hold exactly one signature');
    verifier = pemField(at(sigs, 0, 'verifier'));
  } else if ((kind === 'hashedrekord' || kind === 'dsse') && version === '0.0.2') {
    const spec = kind === 'hashedrekord' ? at(body, 'spec', 'hashedRekordV002', 'signature', 'verifier') : at(body, 'spec', 'dsseV002', 'signatures', 0, 'verifier');
    verifier = derField(spec);
  } else {
    throw new SigstoreCheckError('log-body', `the log entry is ${String(kind)} ${String(version)}, whose signer this build cannot check`);
  }
  if (!verifier) throw new SigstoreCheckError('log-body', 'the log entry names no signer');
  if (!signerMatches(verifier, expected)) {
    throw new SigstoreCheckError('log-body', `the log entry binds another ${'certificateDer' in expected ? 'certificate' : 'key'} than the one that signed`);
  }
}

function pemField(v: unknown): { pem: Buffer } | undefined {
  const pem = typeof v === 'string' ? decodeStdBase64(v) : undefined;
  return pem ? { pem } : undefined;
}

function derField(v: unknown): { der: Buffer; isCertificate: boolean } | undefined {
  const cert = at(v, 'x509Certificate', 'rawBytes');
  const key = at(v, 'publicKey', 'rawBytes');
  const raw = typeof cert === 'string' ? cert : typeof key === 'string' ? key : undefined;
  const der = raw !== undefined ? decodeStdBase64(raw) : undefined;
  return der ? { der, isCertificate: typeof cert === 'string' } : undefined;
}

function signerMatches(verifier: { pem: Buffer } | { der: Buffer; isCertificate: boolean }, expected: ExpectedSigner): boolean {
  let der: Buffer;
  let isCertificate: boolean;
  if ('pem' in verifier) {
    const m = /^\s*-----BEGIN (CERTIFICATE|PUBLIC KEY)-----\r?\n([\s\S]*?)-----END \1-----\s*$/.exec(verifier.pem.toString('latin1'));
    const decoded = m ? decodeStdBase64((m[2] ?? '').replace(/[ \t\r\n]/g, '')) : undefined;
    if (!m || !decoded) return false;
    der = decoded;
    isCertificate = m[1] === 'CERTIFICATE';
  } else {
    ({ der, isCertificate } = verifier);
  }
  if ('certificateDer' in expected) return isCertificate && der.equals(expected.certificateDer);
  if (!isCertificate) return der.equals(expected.spkiDer);
  try {
    return new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' }).equals(expected.spkiDer);
  } catch {
    return false;
  }
}
