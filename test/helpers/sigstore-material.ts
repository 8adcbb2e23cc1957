/**
 * Sigstore material made in the test, with no network: a Fulcio-like CA
 * (root, intermediate, 10-minute ECDSA P-256 leaves with EKU codeSigning, a
 * SAN email and both issuer extensions), a Rekor-like log (SETs, a Merkle
 * tree with an inclusion proof, a signed checkpoint), DSSE in-toto
 * statements, the legacy cosign `.sig` layer annotations, and sigstore
 * bundle JSON (v0.1, v0.2, v0.3).
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import { ecKey, issueCertificate, toPem, type IssuedCertificate, type KeyPair } from './x509-builder.js';
import { dsseBody, hashedRekordBody, logEntry, type LoggedEntry, type RekorLog } from './rekor-log.js';

export { rekorLog, type RekorLog, type LoggedEntry } from './rekor-log.js';
export { issueCertificate, ecKey, toPem, type IssuedCertificate, type KeyPair } from './x509-builder.js';

export const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const BUNDLE_V02 = 'application/vnd.dev.sigstore.bundle+json;version=0.2';
export const BUNDLE_V01 = 'application/vnd.dev.sigstore.bundle+json;version=0.1';
export const IN_TOTO = 'application/vnd.in-toto+json';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
export const SIMPLESIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';

/** Unix seconds of a fixed moment in the past: the signing happened then, long before any test runs. */
export const SIGNED_AT = Date.UTC(2025, 5, 1, 12, 0, 0) / 1000;

export interface CertificateAuthority {
  readonly root: IssuedCertificate;
  readonly intermediate: IssuedCertificate;
  /** Root PEM alone (`pki.caRootsData`). */
  readonly rootPem: string;
  /** Intermediate PEM alone (`pki.caIntermediatesData`). */
  readonly intermediatePem: string;
  /** Intermediate then root (`fulcio.caData`, and the `.sig` chain annotation). */
  readonly chainPem: string;
}

export function certificateAuthority(name = 'fulcio.test'): CertificateAuthority {
  const notBefore = new Date(Date.UTC(2020, 0, 1));
  const notAfter = new Date(Date.UTC(2045, 0, 1));
  const root = issueCertificate({ commonName: `${name} root`, notBefore, notAfter, ca: {} });
  const intermediate = issueCertificate({ commonName: `${name} intermediate`, notBefore, notAfter, ca: { pathLen: 0 }, issuer: root });
  return { root, intermediate, rootPem: root.pem, intermediatePem: intermediate.pem, chainPem: intermediate.pem + root.pem };
}

export interface LeafOptions {
  readonly email?: string | undefined;
  readonly hostname?: string | undefined;
  /** OIDC issuer in both extensions unless v1/v2 are given separately. */
  readonly oidcIssuer?: string | undefined;
  readonly oidcIssuerV1?: string | undefined;
  readonly oidcIssuerV2?: string | undefined;
  /** Unix seconds; default SIGNED_AT - 60. The leaf lives `lifetimeSeconds` (600). */
  readonly notBefore?: number | undefined;
  readonly lifetimeSeconds?: number | undefined;
  readonly codeSigning?: boolean | undefined;
}

/** A short-lived leaf as Fulcio issues it, under the CA's intermediate. */
export function leafCertificate(ca: CertificateAuthority, options: LeafOptions = {}): IssuedCertificate {
  const from = options.notBefore ?? SIGNED_AT - 60;
  return issueCertificate({
    commonName: '',
    notBefore: new Date(from * 1000),
    notAfter: new Date((from + (options.lifetimeSeconds ?? 600)) * 1000),
    issuer: ca.intermediate,
    emails: options.email !== undefined ? [options.email] : [],
    hostnames: options.hostname !== undefined ? [options.hostname] : [],
    oidcIssuerV1: options.oidcIssuerV1 ?? options.oidcIssuer,
    oidcIssuerV2: options.oidcIssuerV2 ?? options.oidcIssuer,
    codeSigning: options.codeSigning,
  });
}

/** A cosign key pair (ECDSA P-256) for keyed signatures. */
export function cosignKey(): KeyPair & { readonly publicPem: string } {
  const key = ecKey();
  return { ...key, publicPem: toPem('PUBLIC KEY', key.publicKey.export({ type: 'spki', format: 'der' })) };
}

/** ECDSA (DER) and RSA over SHA-256; Ed25519 pure. */
export const signBytes = (key: KeyObject, data: Buffer): Buffer =>
  sign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, { key, dsaEncoding: 'der' });
const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

/** cosign's simple-signing payload (`.sig` layers). */
export function cosignPayload(dockerReference: string, manifestDigest: string): Buffer {
  return Buffer.from(JSON.stringify({
    critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': manifestDigest }, type: 'cosign container image signature' },
    optional: null,
  }));
}

/** cosign v3's in-toto Statement v1 for an image: subject = the manifest digest, an empty predicate. */
export function cosignStatement(manifestDigest: string, name = 'registry.example.com/team/app'): Buffer {
  const [algorithm, hex] = manifestDigest.split(':');
  return Buffer.from(JSON.stringify({
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name, digest: { [algorithm!]: hex } }],
    predicateType: COSIGN_SIGN_PREDICATE,
    predicate: {},
  }));
}

/** DSSE pre-authentication encoding. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const t = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${payload.length} `), payload]);
}

export interface LegacyKeylessOptions {
  readonly log: RekorLog;
  readonly integratedTime?: number | undefined;
  /** Log this certificate instead of the signer's (a body that binds another certificate). */
  readonly loggedCertificatePem?: string | undefined;
}

/** The annotations of a keyless `.sig` layer: signature, certificate, chain and the Rekor bundle (SET). */
export function legacyKeylessAnnotations(payload: Buffer, leaf: IssuedCertificate, ca: CertificateAuthority, options: LegacyKeylessOptions): Record<string, string> {
  const signature = signBytes(leaf.key.privateKey, payload);
  const body = hashedRekordBody(payload, signature, options.loggedCertificatePem ?? leaf.pem);
  const entry = logEntry(options.log, body, options.integratedTime ?? SIGNED_AT);
  return {
    'dev.cosignproject.cosign/signature': signature.toString('base64'),
    'dev.sigstore.cosign/certificate': leaf.pem,
    'dev.sigstore.cosign/chain': ca.chainPem,
    'dev.sigstore.cosign/bundle': JSON.stringify({
      SignedEntryTimestamp: entry.signedEntryTimestamp.toString('base64'),
      Payload: { body: body.toString('base64'), integratedTime: entry.integratedTime, logIndex: entry.logIndex, logID: entry.logId.toString('hex') },
    }),
  };
}

export type BundleVersion = '0.1' | '0.2' | '0.3';
export type LogEvidence = 'promise' | 'proof' | 'both' | 'none';

export interface BundleOptions {
  /** The signer: a certificate (keyless/pki) or a bare key (keyed; the bundle names it by hint). */
  readonly signer: { readonly certificate: IssuedCertificate; readonly chain?: readonly IssuedCertificate[] } | { readonly key: KeyPair & { readonly publicPem: string } };
  readonly log?: RekorLog | undefined;
  readonly integratedTime?: number | undefined;
  readonly evidence?: LogEvidence | undefined;
  readonly version?: BundleVersion | undefined;
}

export interface MadeBundle {
  readonly mediaType: string;
  readonly bytes: Buffer;
  readonly json: Record<string, unknown>;
  readonly entry: LoggedEntry | undefined;
}

const mediaTypeOf = (v: BundleVersion): string => (v === '0.3' ? BUNDLE_V03 : v === '0.2' ? BUNDLE_V02 : BUNDLE_V01);

/** A DSSE bundle (cosign v3's default) carrying `payload` (an in-toto statement by default type). */
export function dsseBundle(payload: Buffer, options: BundleOptions, payloadType = IN_TOTO): MadeBundle {
  const { privateKey, pem } = signerOf(options);
  const sig = signBytes(privateKey, pae(payloadType, payload));
  const envelope = { payload: payload.toString('base64'), payloadType, signatures: [{ sig: sig.toString('base64'), keyid: '' }] };
  const body = dsseBody(JSON.stringify(envelope), payload, sig, pem);
  return assemble(options, body, { dsseEnvelope: envelope }, { kind: 'dsse', version: '0.0.1' });
}

/** A message-signature bundle over `artifact` (hashedrekord). */
export function messageBundle(artifact: Buffer, options: BundleOptions): MadeBundle {
  const { privateKey, pem } = signerOf(options);
  const sig = signBytes(privateKey, artifact);
  const body = hashedRekordBody(artifact, sig, pem);
  const messageSignature = { messageDigest: { algorithm: 'SHA2_256', digest: sha256(artifact).toString('base64') }, signature: sig.toString('base64') };
  return assemble(options, body, { messageSignature }, { kind: 'hashedrekord', version: '0.0.1' });
}

function signerOf(options: BundleOptions): { privateKey: KeyObject; pem: string } {
  return 'certificate' in options.signer
    ? { privateKey: options.signer.certificate.key.privateKey, pem: options.signer.certificate.pem }
    : { privateKey: options.signer.key.privateKey, pem: options.signer.key.publicPem };
}

function assemble(options: BundleOptions, body: Buffer, content: Record<string, unknown>, kindVersion: { kind: string; version: string }): MadeBundle {
  const version = options.version ?? '0.3';
  const evidence = options.evidence ?? (options.log ? 'both' : 'none');
  const entry = options.log ? logEntry(options.log, body, options.integratedTime ?? SIGNED_AT) : undefined;
  const tlogEntries = entry && evidence !== 'none' ? [{
    logIndex: String(entry.logIndex),
    logId: { keyId: entry.logId.toString('base64') },
    kindVersion,
    integratedTime: String(entry.integratedTime),
    ...(evidence === 'promise' || evidence === 'both' ? { inclusionPromise: { signedEntryTimestamp: entry.signedEntryTimestamp.toString('base64') } } : {}),
    ...(evidence === 'proof' || evidence === 'both' ? {
      inclusionProof: {
        logIndex: String(entry.inclusionProof.logIndex),
        rootHash: entry.inclusionProof.rootHash.toString('base64'),
        treeSize: String(entry.inclusionProof.treeSize),
        hashes: entry.inclusionProof.hashes.map((h) => h.toString('base64')),
        checkpoint: { envelope: entry.inclusionProof.checkpoint },
      },
    } : {}),
    canonicalizedBody: body.toString('base64'),
  }] : [];
  let material: Record<string, unknown>;
  if ('certificate' in options.signer) {
    const certs = [options.signer.certificate, ...(options.signer.chain ?? [])];
    material = version === '0.3'
      ? { certificate: { rawBytes: options.signer.certificate.der.toString('base64') } }
      : { x509CertificateChain: { certificates: certs.map((c) => ({ rawBytes: c.der.toString('base64') })) } };
  } else {
    material = { publicKey: { hint: sha256(options.signer.key.publicKey.export({ type: 'spki', format: 'der' })).toString('base64') } };
  }
  const json = { mediaType: mediaTypeOf(version), verificationMaterial: { ...material, tlogEntries, timestampVerificationData: { rfc3161Timestamps: [] } }, ...content };
  return { mediaType: mediaTypeOf(version), bytes: Buffer.from(JSON.stringify(json)), json, entry };
}
