import { X509Certificate } from 'node:crypto';
import { SigstoreCheckError } from '../../../../domain/errors.js';
import { decodeStdBase64 } from '../cosign-public-key.js';

/**
 * Every `CERTIFICATE` block of a PEM text, as DER, in order. Other blocks
 * are skipped; a certificate block that is not base64 or not X.509 fails, so
 * a damaged CA file is never read as a shorter one.
 */
export function pemCertificates(pem: Buffer | string, what: string): Buffer[] {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1');
  const re = /-----BEGIN CERTIFICATE-----\r?\n([\s\S]*?)-----END CERTIFICATE-----/g;
  const out: Buffer[] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const der = decodeStdBase64((m[1] ?? '').replace(/[ \t\r\n]/g, ''));
    if (!der || der.length === 0) throw new SigstoreCheckError('format', `${what}: a CERTIFICATE block is not base64`);
    try {
      new X509Certificate(der);
    } catch {
      throw new SigstoreCheckError('format', `${what}: a CERTIFICATE block does not parse as X.509`);
    }
    out.push(der);
  }
  if (out.length === 0) throw new SigstoreCheckError('format', `${what} holds no PEM certificate`);
  return out;
}
