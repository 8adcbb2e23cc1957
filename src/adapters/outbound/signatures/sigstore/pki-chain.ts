import { X509Certificate } from 'node:crypto';
import { SigstoreCheckError } from '../../../../domain/errors.js';

const CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
const ANY_EKU = '2.5.29.37.0';
const MAX_DEPTH = 8;

export interface PkiAnchors {
  readonly roots: readonly X509Certificate[];
  /** The policy's intermediates and the signature's own chain: neither is trusted, both may link the leaf to a root. */
  readonly intermediates: readonly X509Certificate[];
}

/**
 * The leaf chains to one of the roots through the intermediates, every
 * certificate valid at `at`, issuers being CAs, the leaf for code signing:
 * what containers/image's pki check asks of Go's x509.Verify. Hand-written
 * because sigstore-js checks a chain only at a log or TSA time, and a pki
 * signature has neither (containers/image refuses Rekor keys with pki), so
 * the time is the verifier's clock.
 */
export function verifyPkiChain(leaf: X509Certificate, anchors: PkiAnchors, at: Date): void {
  const eku = leaf.keyUsage;
  // Go's x509.Verify: a leaf without EKU is for any usage; one with EKU must list code signing (or any).
  if (eku !== undefined && !eku.includes(CODE_SIGNING) && !eku.includes(ANY_EKU)) {
    throw new SigstoreCheckError('chain', 'the certificate is not for code signing (extended key usage)');
  }
  if (!validAt(leaf, at)) throw new SigstoreCheckError('chain', `the certificate is not valid now (${leaf.validFrom} to ${leaf.validTo})`);
  if (!reachesRoot(leaf, anchors, at, 0, new Set([leaf.fingerprint256]))) {
    throw new SigstoreCheckError('chain', 'the certificate does not chain to the policy\'s caRoots');
  }
}

function reachesRoot(cert: X509Certificate, anchors: PkiAnchors, at: Date, depth: number, seen: Set<string>): boolean {
  if (depth > MAX_DEPTH) return false;
  if (anchors.roots.some((root) => issuedBy(cert, root) && validAt(root, at))) return true;
  for (const next of anchors.intermediates) {
    if (seen.has(next.fingerprint256) || !issuedBy(cert, next) || !validAt(next, at)) continue;
    seen.add(next.fingerprint256);
    if (reachesRoot(next, anchors, at, depth + 1, seen)) return true;
    seen.delete(next.fingerprint256);
  }
  return false;
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return issuer.ca && cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function validAt(cert: X509Certificate, at: Date): boolean {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return Number.isFinite(from) && Number.isFinite(to) && from <= at.getTime() && at.getTime() <= to;
}

/** containers/image's subject checks: the email among the SAN emails, the hostname as Go's VerifyHostname takes it. */
export function checkPkiSubject(leaf: X509Certificate, subjectEmail: string | undefined, subjectHostname: string | undefined): void {
  if (subjectEmail !== undefined && leaf.checkEmail(subjectEmail, { subject: 'never' }) === undefined) {
    throw new SigstoreCheckError('identity', `the certificate is not for ${subjectEmail} (${leaf.subjectAltName ?? 'no subject alternative names'})`);
  }
  if (subjectHostname !== undefined && leaf.checkHost(subjectHostname, { subject: 'never' }) === undefined) {
    throw new SigstoreCheckError('identity', `the certificate is not for host ${subjectHostname} (${leaf.subjectAltName ?? 'no subject alternative names'})`);
  }
}
