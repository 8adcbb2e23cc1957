import type { X509Certificate as SigstoreCertificate } from '@sigstore/core';
import { SigstoreCheckError } from '../../../../domain/errors.js';

export const OID_FULCIO_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';
export const OID_FULCIO_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8';

/** The OIDC issuer extensions of a Fulcio leaf: v1 holds the URL's raw bytes, v2 a DER UTF8String. */
export function fulcioIssuers(cert: SigstoreCertificate): { v1: string | undefined; v2: string | undefined } {
  const v1 = cert.extension(OID_FULCIO_ISSUER_V1)?.value.toString('utf8');
  const v2 = cert.extension(OID_FULCIO_ISSUER_V2)?.valueObj.subs[0]?.value.toString('utf8');
  return { v1, v2 };
}

/**
 * The anchored pattern for sigstore-js's SAN check, which treats the policy
 * identity as a regular expression: an email is matched exactly.
 */
export function exactPattern(s: string): string {
  return `^${s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`;
}

/**
 * Hand-written on top of sigstore-js, which reads the v2 issuer extension
 * when present and ignores v1 then: containers/image's Fulcio check wants
 * whichever extensions the leaf has to name the policy's issuer, so a leaf
 * whose v1 and v2 disagree is refused.
 */
export function checkFulcioIdentity(cert: SigstoreCertificate, oidcIssuer: string, subjectEmail: string): void {
  const { v1, v2 } = fulcioIssuers(cert);
  const san = cert.subjectAltName;
  if (san !== subjectEmail) {
    throw new SigstoreCheckError('identity', `identity mismatch: the certificate is for ${JSON.stringify(san ?? '')}, not ${JSON.stringify(subjectEmail)}`);
  }
  if (v1 === undefined && v2 === undefined) throw new SigstoreCheckError('identity', 'identity mismatch: the certificate has no Fulcio OIDC issuer extension');
  for (const [name, got] of [['1.3.6.1.4.1.57264.1.1', v1], ['1.3.6.1.4.1.57264.1.8', v2]] as const) {
    if (got !== undefined && got !== oidcIssuer) {
      throw new SigstoreCheckError('identity', `identity mismatch: the certificate's OIDC issuer (${name}) is ${JSON.stringify(got)}, not ${JSON.stringify(oidcIssuer)}`);
    }
  }
}
