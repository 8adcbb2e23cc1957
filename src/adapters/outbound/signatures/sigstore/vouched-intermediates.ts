import { X509Certificate } from 'node:crypto';

const MAX_ROUNDS = 8;

/**
 * The intermediates a signature carries that a trusted CA (or an
 * intermediate already vouched for) issued, as DER. containers/image lets a
 * keyless signature's chain supply intermediates under the fulcio CA;
 * sigstore-js builds paths from trusted certificates only. Adding just the
 * ones a trusted certificate signed keeps both: nothing the signature brings
 * can become an anchor, and sigstore-js still checks the whole path (CA flags,
 * path length, validity at the log time). Hand-written for that reason.
 */
export function vouchedIntermediates(trustedDer: readonly Buffer[], untrustedDer: readonly Buffer[]): Buffer[] {
  const anchors = trustedDer.flatMap((d) => parse(d));
  const pending = untrustedDer.flatMap((der) => parse(der).map((cert) => ({ der, cert })));
  const vouched: Buffer[] = [];
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const next = pending.filter((p) => p.cert.ca && !vouched.includes(p.der) && anchors.some((a) => issued(p.cert, a)));
    if (next.length === 0) break;
    for (const p of next) {
      vouched.push(p.der);
      anchors.push(p.cert);
    }
  }
  return vouched;
}

function parse(der: Buffer): X509Certificate[] {
  try {
    return [new X509Certificate(der)];
  } catch {
    return [];
  }
}

function issued(cert: X509Certificate, by: X509Certificate): boolean {
  try {
    return by.ca && !cert.checkIssued(cert) && cert.checkIssued(by) && cert.verify(by.publicKey);
  } catch {
    return false;
  }
}
