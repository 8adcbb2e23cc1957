import { DigestMismatchError, ImageTsError, SigstoreCheckError, type ErrorCode, type SigstoreCheck } from '../errors.js';
import { Digest } from '../image/digest.js';
import type { Reference } from '../image/reference.js';
import type { ImageSource } from '../../ports/image-source/image-source.js';
import type { ResourceLoader } from '../../ports/resources/resource-loader.js';
import type { SimpleSignatureSource } from '../../ports/signatures/signature-source.js';
import type { SigstoreBundleBlob, VerifiedBundleContent } from '../../ports/signatures/sigstore-bundle.js';
import type { SigstoreTrust } from '../../ports/signatures/sigstore-trust.js';
import type { SigstoreSignature, SigstoreVerifier, SimpleSigningVerifier } from '../../ports/signatures/signature-verifier.js';

import { fetchCosignSignatures } from './cosign-signatures.js';
import { statementClaim } from './in-toto-statement.js';
import type { KeyPathSource, KeyDataSource, KeySource, Policy, Requirement, Requirements, SignedByRequirement, SignedIdentity, SigstoreSignedRequirement } from './policy.js';
import { fetchSigstoreBundles } from './sigstore-bundles.js';
import { requirementsFor } from './policy-scope.js';
import { identityMatches } from './signed-identity.js';
import { parseCosignPayload, parseSimpleSigningPayload, type SignaturePayload } from './signature-payload.js';

/** The image a policy judges: named as the user named it, read from where it was read. */
export interface PolicySubject {
  /** The logical reference, for scopes and identities; undefined for an OCI layout. */
  readonly reference: Reference | undefined;
  /** The OCI layout directory and ref, when that is what was pulled. */
  readonly layout?: { readonly dir: string; readonly ref: string | undefined } | undefined;
  /** The opened source: cosign `.sig` tags and the registry signature extension come from it. */
  readonly source: ImageSource;
  /** Where lookaside signatures are looked up: the repository actually read (a mirror's, later). */
  readonly physical: Reference | undefined;
  /** The per-platform manifest digest, which signatures must sign. */
  readonly manifestDigest: Digest;
  /** The index digest, which cosign signatures may sign instead (as image-rs accepts). */
  readonly indexDigest: Digest | undefined;
  /**
   * registries.d `use-sigstore-attachments` for the repository read: false
   * reads no sigstore attachment, neither the `sha256-<hex>.sig` tag nor
   * referrer bundles (what the registry attached is not to be read, as in
   * containers/image). Undefined keeps image-ts's default: read both, as
   * image-rs reads the tag.
   */
  readonly sigstoreAttachments?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface RequirementVerdict {
  /** `signedBy (GPGKeys)`, `sigstoreSigned`, `reject`, ... */
  readonly requirement: string;
  readonly allowed: boolean;
  /** A signature this requirement checks was accepted. */
  readonly signed: boolean;
  readonly reason: string;
  readonly code: ErrorCode | undefined;
  /** For a sigstore refusal: the check that failed, one per signature that failed one (in order). */
  readonly checks?: readonly SigstoreCheck[] | undefined;
}

export interface PolicyVerdict {
  readonly scope: string;
  readonly allowed: boolean;
  /** At least one signature requirement accepted a signature. */
  readonly signed: boolean;
  readonly requirements: readonly RequirementVerdict[];
}

export interface ImagePolicyDeps {
  readonly resources: ResourceLoader;
  readonly simpleSignatures: SimpleSignatureSource;
  readonly simpleVerifier: SimpleSigningVerifier;
  readonly sigstoreVerifier: SigstoreVerifier;
}

class Denied extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly checks: readonly SigstoreCheck[] = []) {
    super(message);
  }
}

/**
 * containers-policy.json evaluation: the most specific scope's requirements,
 * every one of which must allow the image. A signature requirement allows it
 * when at least one signature passes, checked in this order: cryptography,
 * then the signed manifest digest, then the signed identity.
 */
export class ImagePolicy {
  constructor(private readonly deps: ImagePolicyDeps) {}

  async evaluate(policy: Policy, subject: PolicySubject): Promise<PolicyVerdict> {
    const { scope, requirements } = select(policy, subject);
    const verdicts: RequirementVerdict[] = [];
    for (const requirement of requirements) verdicts.push(await this.judge(requirement, subject));
    return {
      scope,
      allowed: verdicts.every((v) => v.allowed),
      signed: verdicts.some((v) => v.signed),
      requirements: verdicts,
    };
  }

  /** Throws the first denial, naming the scope and the requirement. */
  static enforce(verdict: PolicyVerdict, what: string): void {
    const denied = verdict.requirements.find((v) => !v.allowed);
    if (denied) {
      throw new ImageTsError(denied.code ?? 'POLICY_DENIED', `${what}: policy scope ${JSON.stringify(verdict.scope)}, requirement ${denied.requirement}: ${denied.reason}`);
    }
  }

  private async judge(requirement: Requirement, subject: PolicySubject): Promise<RequirementVerdict> {
    const name = describe(requirement);
    try {
      switch (requirement.type) {
        case 'insecureAcceptAnything':
          return { requirement: name, allowed: true, signed: false, reason: 'accepts anything', code: undefined };
        case 'reject':
          throw new Denied('POLICY_DENIED', `Running image ${describeSubject(subject)} is rejected by policy.`);
        case 'signedBaseLayer':
          throw new Denied('POLICY_DENIED', 'signedBaseLayer is not implemented, and denies every image');
        case 'signedBy':
          return { requirement: name, allowed: true, signed: true, reason: await this.signedBy(requirement, subject), code: undefined };
        case 'sigstoreSigned':
          return { requirement: name, allowed: true, signed: true, reason: await this.sigstoreSigned(requirement, subject), code: undefined };
      }
    } catch (err) {
      if (err instanceof Denied) {
        return { requirement: name, allowed: false, signed: false, reason: err.message, code: err.code, ...(err.checks.length > 0 ? { checks: err.checks } : {}) };
      }
      throw err;
    }
  }

  private async signedBy(req: SignedByRequirement, subject: PolicySubject): Promise<string> {
    if (req.keyType !== 'GPGKeys') throw new Denied('POLICY_DENIED', `Unimplemented "keyType" value "${req.keyType}"`);
    const keyrings = await this.keys(req.keys, subject.signal);
    const signatures = await this.simpleSignatures(subject);
    return accepted(signatures.length, await Promise.all(signatures.map(async (sig) => {
      const verified = await this.deps.simpleVerifier.verify(sig, keyrings);
      const payload = parseSimpleSigningPayload(verified.payload);
      checkClaims(payload, [subject.manifestDigest], req.signedIdentity, subject);
      return `signed by ${verified.keyIdentity}`;
    }).map(settle)));
  }

  /**
   * Every cosign signature of the image: `.sig` layers and sigstore bundles
   * attached as referrers (unless registries.d turned attachments off), for
   * the manifest and the index. Each is checked in the usual order:
   * cryptography (and log, chain, identity of the certificate), then the
   * signed digest, then the signed identity.
   */
  private async sigstoreSigned(req: SigstoreSignedRequirement, subject: PolicySubject): Promise<string> {
    const trust = await this.trust(req, subject.signal);
    const digests = [subject.manifestDigest, ...(subject.indexDigest ? [subject.indexDigest] : [])];
    const signatures: SigstoreSignature[] = [];
    if (subject.sigstoreAttachments !== false) {
      for (const d of digests) signatures.push(...await fetchCosignSignatures(subject.source, d, subject.signal));
    }
    const bundles: SigstoreBundleBlob[] = [];
    for (const d of subject.sigstoreAttachments === false ? [] : digests) {
      const found = await fetchSigstoreBundles(subject.source, d, subject.signal);
      // A message-signature bundle signs the manifest bytes themselves.
      const artifact = found.length > 0 ? await manifestBytes(subject, d) : undefined;
      bundles.push(...found.map((b) => ({ ...b, artifact })));
    }
    // containers/image would apply matchRepoDigestOrExact, which no cosign claim (a bare repository) can pass;
    // image-rs checks nothing. matchRepository is the strictest rule such a claim can meet.
    const identity: SignedIdentity = req.signedIdentityExplicit ? req.signedIdentity : { type: 'matchRepository' };
    const checks = [
      ...signatures.map(async (sig) => {
        if (trust.kind === 'keys') await this.deps.sigstoreVerifier.verify(sig, trust.publicKeys, trust.rekorPublicKeys);
        else await this.deps.sigstoreVerifier.verifyKeyless(sig, trust);
        const payload = parseCosignPayload(sig.payload);
        checkClaims(payload, digests, identity, subject);
        return `cosign signature verified (${trust.kind})`;
      }),
      ...bundles.map(async (bundle) => {
        const content = await this.deps.sigstoreVerifier.verifyBundle(bundle, trust);
        checkBundleClaims(content, bundle.subject, req, subject);
        return `sigstore bundle verified (${trust.kind})`;
      }),
    ];
    return accepted(checks.length, await Promise.all(checks.map(settle)));
  }

  /** The requirement's trust root with every key and certificate loaded. */
  private async trust(req: SigstoreSignedRequirement, signal: AbortSignal | undefined): Promise<SigstoreTrust> {
    const rekorPublicKeys = req.rekorKeys ? await this.keys(req.rekorKeys, signal) : undefined;
    const k = req.keys;
    switch (k.kind) {
      case 'fulcio':
        return {
          kind: 'fulcio',
          caCertificates: await this.one(k.ca, signal),
          oidcIssuer: k.oidcIssuer,
          subjectEmail: k.subjectEmail,
          rekorPublicKeys: rekorPublicKeys ?? [],
        };
      case 'pki':
        return {
          kind: 'pki',
          caRoots: await this.one(k.caRoots, signal),
          caIntermediates: k.caIntermediates ? await this.one(k.caIntermediates, signal) : undefined,
          subjectEmail: k.subjectEmail,
          subjectHostname: k.subjectHostname,
        };
      default:
        return { kind: 'keys', publicKeys: await this.keys(k, signal), rekorPublicKeys };
    }
  }

  private async one(source: KeyPathSource | KeyDataSource, signal: AbortSignal | undefined): Promise<Buffer> {
    return source.kind === 'data' ? source.data : this.deps.resources.load(source.path, signal);
  }

  private async simpleSignatures(subject: PolicySubject): Promise<Buffer[]> {
    const served = await subject.source.getSimpleSignatures?.(subject.manifestDigest, subject.signal);
    if (served) return served;
    if (!subject.physical) return [];
    return this.deps.simpleSignatures.getSignatures(subject.physical, subject.manifestDigest, subject.signal);
  }

  private async keys(source: KeySource, signal: AbortSignal | undefined): Promise<Buffer[]> {
    switch (source.kind) {
      case 'data': return [source.data];
      case 'datas': return [...source.datas];
      case 'path': return [await this.deps.resources.load(source.path, signal)];
      case 'paths': return Promise.all(source.paths.map((p) => this.deps.resources.load(p, signal)));
    }
  }
}

function select(policy: Policy, subject: PolicySubject): { scope: string; requirements: Requirements } {
  if (subject.reference) return requirementsFor(policy, subject.reference);
  // An OCI layout: its absolute path (with and without the ref), then parent dirs, then "".
  const scopes = policy.transports.get('oci');
  if (scopes && subject.layout) {
    const { dir, ref } = subject.layout;
    const candidates = [...(ref ? [`${dir}:${ref}`] : []), dir];
    for (let d = dir; d.lastIndexOf('/') > 0; ) candidates.push((d = d.slice(0, d.lastIndexOf('/'))));
    candidates.push('');
    for (const scope of candidates) {
      const requirements = scopes.get(scope);
      if (requirements) return { scope, requirements };
    }
  }
  return { scope: 'default', requirements: policy.default };
}

type Settled = { ok: true; value: string } | { ok: false; error: unknown };

function settle(p: Promise<string>): Promise<Settled> {
  return p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));
}

/** One good signature is enough; bad ones are ignored unless none is good. Service failures are not denials. */
function accepted(count: number, results: readonly Settled[]): string {
  if (count === 0) throw new Denied('SIGNATURE_MISSING', 'A signature was required, but no signature exists');
  const good = results.find((r): r is { ok: true; value: string } => r.ok);
  if (good) return good.value;
  const reasons: string[] = [];
  const checks: SigstoreCheck[] = [];
  for (const r of results) {
    if (r.ok) continue;
    const e = r.error;
    if (e instanceof SigstoreCheckError) checks.push(e.check);
    if (e instanceof Denied) reasons.push(e.message);
    else if (e instanceof ImageTsError && e.code === 'SIGNATURE_INVALID') reasons.push(e.message);
    else throw e;
  }
  throw new Denied('SIGNATURE_INVALID', reasons.length === 1 ? reasons[0]! : `None of the signatures were accepted, reasons: ${reasons.join('; ')}`, checks);
}

function checkClaims(payload: SignaturePayload, digests: readonly Digest[], identity: SignedIdentity, subject: PolicySubject): void {
  if (!digests.some((d) => d.toString() === payload.dockerManifestDigest)) {
    throw new Denied('SIGNATURE_INVALID', `Signature for docker digest "${payload.dockerManifestDigest}" does not match the image's ${subject.manifestDigest}`);
  }
  if (!subject.reference) throw new Denied('SIGNATURE_INVALID', 'an OCI layout has no docker reference to check the signed identity against');
  if (!identityMatches(identity, subject.reference, payload.dockerReference)) {
    throw new Denied('SIGNATURE_INVALID', `Signature for identity "${payload.dockerReference}" is not accepted (${identity.type})`);
  }
}

/** The manifest (or index) bytes of `digest`, checked against it. */
async function manifestBytes(subject: PolicySubject, digest: Digest): Promise<Buffer> {
  const fetched = await subject.source.getManifest(digest.toString(), subject.signal);
  const actual = Digest.of(fetched.bytes, digest.algorithm);
  if (!actual.equals(digest)) throw new DigestMismatchError(`manifest ${digest}`, digest.toString(), actual.toString());
  return fetched.bytes;
}

/**
 * What a verified bundle claims. A DSSE statement must name this digest as
 * its subject; a message signature signs the manifest bytes, which the
 * verifier compared with the message digest. Neither carries a signed
 * docker reference, only (for a statement) the subject's name. So with no
 * signedIdentity in the policy, the digest is the identity (and a name, when
 * present, must be this repository); an explicit signedIdentity needs a name
 * to judge, and is matched against `name@digest`.
 */
function checkBundleClaims(content: VerifiedBundleContent, digest: Digest, req: SigstoreSignedRequirement, subject: PolicySubject): void {
  let name: string | undefined;
  if (content.kind === 'dsse') {
    name = statementClaim(content.payloadType, content.payload, digest).name;
  } else if (content.algorithm !== digest.algorithm || content.digest.toString('hex') !== digest.encoded) {
    throw new SigstoreCheckError('statement-subject', `the message signature is over ${content.algorithm}:${content.digest.toString('hex')}, not ${digest}`);
  }
  if (!subject.reference) throw new Denied('SIGNATURE_INVALID', 'an OCI layout has no docker reference to check the signed identity against');
  if (name === undefined) {
    if (!req.signedIdentityExplicit) return;
    throw new Denied('SIGNATURE_INVALID', `the sigstore bundle names no image, so signedIdentity ${req.signedIdentity.type} cannot be checked`);
  }
  const claim = `${name}@${digest}`;
  const identity: SignedIdentity = req.signedIdentityExplicit ? req.signedIdentity : { type: 'matchRepository' };
  if (!identityMatches(identity, subject.reference, claim)) {
    throw new Denied('SIGNATURE_INVALID', `Signature for identity "${claim}" is not accepted (${identity.type})`);
  }
}

function describe(r: Requirement): string {
  if (r.type === 'signedBy') return `signedBy (${r.keyType})`;
  return r.type;
}

function describeSubject(s: PolicySubject): string {
  return s.reference?.toString() ?? (s.layout ? `oci:${s.layout.dir}${s.layout.ref ? `:${s.layout.ref}` : ''}` : 'image');
}
