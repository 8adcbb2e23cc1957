import { createHash, X509Certificate as NodeCertificate } from 'node:crypto';
import type { Bundle } from '@sigstore/bundle';
import type { SignedEntity, Verifier } from '@sigstore/verify';
import { SignatureInvalidError, SigstoreCheckError } from '../../../../domain/errors.js';
import type { FulcioTrustMaterial, KeyedTrust, PkiTrustMaterial, SigstoreTrust } from '../../../../ports/signatures/sigstore-trust.js';
import { parseCosignPublicKey } from '../cosign-public-key.js';
import { checkFulcioIdentity, exactPattern } from './fulcio-identity.js';
import { checkLogBodyBindsSigner, type ExpectedSigner } from './log-body-binding.js';
import { pemCertificates } from './pem-certificates.js';
import { checkPkiSubject, verifyPkiChain } from './pki-chain.js';
import { sigstoreCore, sigstoreVerify } from './sigstore-modules.js';
import { vouchedIntermediates } from './vouched-intermediates.js';
import { checkpointNames, rekorKeys, tlogAuthorities, trustMaterial } from './trust-material.js';

const CODE_SIGNING = '1.3.6.1.5.5.7.3.3';

/**
 * Verifies a parsed sigstore bundle under a policy's trust, through
 * sigstore-js wherever it serves: signature (DSSE PAE or message), chain to
 * the CA at the log's integratedTime, SET, inclusion proof and checkpoint,
 * the entry body against the signature, SAN and issuer. `artifact` is the
 * signed bytes of a message signature. Throws SigstoreCheckError.
 */
export async function verifyParsedBundle(bundle: Bundle, trust: SigstoreTrust, artifact: Buffer | undefined, now: Date): Promise<void> {
  const material = bundle.verificationMaterial.content;
  const keyless = material.$case !== 'publicKey';
  if (trust.kind === 'keys' && keyless) {
    throw new SigstoreCheckError('key-kind', 'the signature carries a certificate (keyless), but the policy trusts public keys');
  }
  if (trust.kind !== 'keys' && !keyless) {
    throw new SigstoreCheckError('key-kind', `the signature names a public key, but the policy wants a ${trust.kind} certificate`);
  }
  if (bundle.content.$case === 'messageSignature') checkArtifact(bundle.content.messageSignature.messageDigest?.digest, artifact);
  const { toSignedEntity } = await sigstoreVerify();
  let parsed: SignedEntity;
  try {
    parsed = toSignedEntity(bundle, artifact);
  } catch {
    throw new SigstoreCheckError('format', 'the bundle\'s certificate or timestamps do not parse');
  }
  // A policy names no timestamp authority, so RFC 3161 timestamps prove nothing here: only the log's time counts.
  const entity: SignedEntity = { ...parsed, timestamps: parsed.timestamps.filter((t) => t.$case === 'transparency-log') };
  switch (trust.kind) {
    case 'keys':
      return verifyKeyed(entity, trust);
    case 'fulcio':
      return verifyFulcio(entity, certificates(bundle), trust);
    case 'pki':
      return verifyPki(entity, certificates(bundle), trust, now);
  }
}

/** Leaf first, then whatever chain the bundle carries (untrusted). */
function certificates(bundle: Bundle): Buffer[] {
  const m = bundle.verificationMaterial.content;
  if (m.$case === 'certificate') return [Buffer.from(m.certificate.rawBytes)];
  if (m.$case === 'x509CertificateChain') return m.x509CertificateChain.certificates.map((c) => Buffer.from(c.rawBytes));
  return [];
}

function checkArtifact(messageDigest: Buffer | undefined, artifact: Buffer | undefined): void {
  if (!artifact) throw new SigstoreCheckError('format', 'a message-signature bundle needs the signed artifact, and none was given');
  // sigstore-js verifies the signature over the artifact but never compares it with messageDigest.
  if (!messageDigest || !createHash('sha256').update(artifact).digest().equals(messageDigest)) {
    throw new SigstoreCheckError('statement-subject', 'the bundle\'s message digest is not the digest of this image\'s manifest');
  }
}

async function verifyKeyed(entity: SignedEntity, trust: KeyedTrust): Promise<void> {
  if (trust.publicKeys.length === 0) throw new SignatureInvalidError('no public keys to verify the signature with');
  const keys = trust.publicKeys.map((pem, i) => parseCosignPublicKey(pem, `public key ${i + 1}`));
  const signer = keys.find((k) => entity.signature.verifySignature(k.key));
  if (!signer) throw new SigstoreCheckError('signature', `the signature matches none of the ${keys.length} trusted public key(s)`);
  const rekor = rekorKeys(trust.rekorPublicKeys ?? []);
  const logged = rekor.length > 0;
  const tm = await trustMaterial({ tlogs: tlogAuthorities(rekor, namesOf(entity)), publicKey: signer.key });
  // Without Rekor keys the log is not consulted, as containers/image does for keyed signatures.
  const checked: SignedEntity = logged ? entity : { ...entity, tlogEntries: [], timestamps: [] };
  await run((V) => new V(tm, { tlogThreshold: logged ? 1 : 0, ctlogThreshold: 0, timestampThreshold: 0 }), checked, undefined, undefined);
  if (logged) bindEntries(entity, { spkiDer: signer.spkiDer });
}

async function verifyFulcio(entity: SignedEntity, certs: readonly Buffer[], trust: FulcioTrustMaterial): Promise<void> {
  const leafDer = certs[0];
  if (!leafDer) throw new SigstoreCheckError('format', 'the signature carries no certificate');
  const nodeLeaf = nodeCertificate(leafDer, 'the leaf certificate');
  checkCodeSigning(nodeLeaf);
  // sigstore-js compares the log body with the signature before verifying it; checked first, a bad signature is named as such.
  if (!entity.signature.verifySignature(nodeLeaf.publicKey)) throw new SigstoreCheckError('signature', 'the signature does not verify under the certificate\'s key');
  const policyCa = pemCertificates(trust.caCertificates, 'the fulcio CA');
  const ca = [...policyCa, ...vouchedIntermediates(policyCa, certs.slice(1))];
  const rekor = rekorKeys(trust.rekorPublicKeys);
  if (rekor.length === 0) throw new SigstoreCheckError('log-missing', 'fulcio requires Rekor public keys');
  const tm = await trustMaterial({ caChains: [ca], tlogs: tlogAuthorities(rekor, namesOf(entity)) });
  if (entity.tlogEntries.length === 0) throw new SigstoreCheckError('log-missing', 'the signature has no transparency log entry, which fulcio requires');
  const policy = { subjectAlternativeName: exactPattern(trust.subjectEmail), extensions: { issuer: trust.oidcIssuer } };
  const { X509Certificate } = await sigstoreCore();
  let leaf;
  try {
    leaf = X509Certificate.parse(Buffer.from(leafDer));
  } catch {
    throw new SigstoreCheckError('format', 'the leaf certificate does not parse');
  }
  await run((V) => new V(tm, { tlogThreshold: 1, ctlogThreshold: 0, timestampThreshold: 1 }), entity, policy, { leaf, trust });
  checkFulcioIdentity(leaf, trust.oidcIssuer, trust.subjectEmail);
  bindEntries(entity, { certificateDer: leafDer });
}

async function verifyPki(entity: SignedEntity, certs: readonly Buffer[], trust: PkiTrustMaterial, now: Date): Promise<void> {
  const [leafDer, ...chain] = certs;
  if (!leafDer) throw new SigstoreCheckError('format', 'the signature carries no certificate');
  const leaf = nodeCertificate(leafDer, 'the leaf certificate');
  const roots = pemCertificates(trust.caRoots, 'pki caRoots').map((d) => nodeCertificate(d, 'a pki root'));
  const intermediates = [
    ...(trust.caIntermediates ? pemCertificates(trust.caIntermediates, 'pki caIntermediates') : []),
    ...chain,
  ].map((d) => nodeCertificate(d, 'an intermediate certificate'));
  verifyPkiChain(leaf, { roots, intermediates }, now);
  checkPkiSubject(leaf, trust.subjectEmail, trust.subjectHostname);
  // The signature itself still goes through sigstore-js's DSSE PAE / message verification.
  if (!entity.signature.verifySignature(leaf.publicKey)) throw new SigstoreCheckError('signature', 'the signature does not verify under the certificate\'s key');
}

/** Certificates in a bundle are untrusted bytes: one that does not parse refuses the signature, nothing more. */
function nodeCertificate(der: Buffer, what: string): NodeCertificate {
  try {
    return new NodeCertificate(der);
  } catch {
    throw new SigstoreCheckError('format', `${what} does not parse as X.509`);
  }
}

function checkCodeSigning(leaf: NodeCertificate): void {
  const eku = leaf.keyUsage;
  if (eku !== undefined && !eku.includes(CODE_SIGNING)) throw new SigstoreCheckError('chain', 'the certificate is not for code signing (extended key usage)');
}

function namesOf(entity: SignedEntity): string[] {
  return checkpointNames(entity.tlogEntries.flatMap((e) => (e.inclusionProof?.checkpoint ? [e.inclusionProof.checkpoint.envelope] : [])));
}

function bindEntries(entity: SignedEntity, expected: ExpectedSigner): void {
  for (const e of entity.tlogEntries) checkLogBodyBindsSigner(Buffer.from(e.canonicalizedBody), expected);
}

interface IdentityContext {
  readonly leaf: import('@sigstore/core').X509Certificate;
  readonly trust: FulcioTrustMaterial;
}

/** Runs sigstore-js and names the check it refused by its error code, never by its message. */
async function run(
  make: (V: typeof Verifier) => Verifier,
  entity: SignedEntity,
  policy: { subjectAlternativeName: string; extensions: { issuer: string } } | undefined,
  identity: IdentityContext | undefined,
): Promise<void> {
  const mod = await sigstoreVerify();
  try {
    make(mod.Verifier).verify(entity, policy);
  } catch (err) {
    if (err instanceof SigstoreCheckError) throw err;
    if (err instanceof mod.PolicyError) {
      if (identity) checkFulcioIdentity(identity.leaf, identity.trust.oidcIssuer, identity.trust.subjectEmail);
      throw new SigstoreCheckError('identity', 'identity mismatch: the certificate is not for the policy\'s subject and issuer');
    }
    if (err instanceof mod.VerificationError) throw fromVerificationError(err.code, entity, identity?.leaf);
    throw new SigstoreCheckError('format', `the signature cannot be verified: ${(err as Error).message}`);
  }
}

type VerificationCode = InstanceType<Awaited<ReturnType<typeof sigstoreVerify>>['VerificationError']>['code'];

function fromVerificationError(code: VerificationCode, entity: SignedEntity, leaf: import('@sigstore/core').X509Certificate | undefined): SigstoreCheckError {
  switch (code) {
    case 'CERTIFICATE_ERROR': {
      const times = entity.tlogEntries.filter((e) => e.inclusionPromise).map((e) => new Date(Number(e.integratedTime) * 1000)).filter((t) => Number.isFinite(t.getTime()));
      if (leaf && times.some((t) => !leaf.validForDate(t))) {
        return new SigstoreCheckError('validity-at-log-time', `the certificate (${leaf.notBefore.toISOString()} to ${leaf.notAfter.toISOString()}) was not valid at the log entry's integratedTime ${times.map((t) => t.toISOString()).join(', ')}`);
      }
      return new SigstoreCheckError('chain', 'the certificate does not chain to the policy\'s CA');
    }
    case 'TLOG_INCLUSION_PROMISE_ERROR':
      return new SigstoreCheckError('set', 'the SET (inclusion promise) does not verify under a trusted Rekor key');
    case 'TLOG_INCLUSION_PROOF_ERROR':
      return new SigstoreCheckError('inclusion-proof', 'the inclusion proof or its signed checkpoint does not verify');
    case 'TLOG_BODY_ERROR':
      return new SigstoreCheckError('log-body', 'the log entry body does not bind this signature and payload');
    case 'TLOG_MISSING_INCLUSION_ERROR':
    case 'TLOG_ERROR':
      return new SigstoreCheckError('log-missing', 'the signature has no verifiable transparency log entry, which the policy\'s Rekor keys require');
    case 'TIMESTAMP_ERROR':
      return new SigstoreCheckError('log-missing', 'no trusted time: a certificate needs a log entry with a SET (inclusion promise) to be checked at its integratedTime');
    case 'SIGNATURE_ERROR':
      return new SigstoreCheckError('signature', 'the signature does not verify');
    case 'PUBLIC_KEY_ERROR':
      return new SigstoreCheckError('key-kind', 'the signature\'s key is not trusted');
    case 'NOT_IMPLEMENTED_ERROR':
      return new SigstoreCheckError('format', 'the signature uses a sigstore feature sigstore-js does not implement');
  }
}
