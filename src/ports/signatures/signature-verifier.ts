import type { SigstoreBundleBlob, VerifiedBundleContent } from './sigstore-bundle.js';
import type { FulcioTrustMaterial, PkiTrustMaterial, SigstoreTrust } from './sigstore-trust.js';

/** A simple-signing signature whose OpenPGP layer verified. The payload is still unparsed and untrusted. */
export interface VerifiedSimpleSignature {
  readonly payload: Buffer;
  /** Uppercase hex v4 fingerprint of the signer's primary key (a subkey signature maps to its primary). */
  readonly keyIdentity: string;
}

/**
 * OpenPGP for simple signing: a binary signed message (compressed or not),
 * checked against the trusted keyrings. Throws SIGNATURE_INVALID for a
 * signature that is not a signed message, is by an unknown key, is bad, or
 * has expired.
 */
export interface SimpleSigningVerifier {
  verify(signature: Buffer, keyrings: readonly Buffer[]): Promise<VerifiedSimpleSignature>;
}

/** One cosign signature: a `.sig` layer, or a lookaside `sigstore-json` blob. */
export interface SigstoreSignature {
  readonly mimeType: string;
  /** The exact payload bytes that were signed. */
  readonly payload: Buffer;
  /** Layer annotations; `dev.cosignproject.cosign/signature` holds the base64 signature. */
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * Cosign's cryptography: the signature over the payload by any of the
 * trusted PEM public keys (ECDSA P-256, RSA, Ed25519); with Rekor keys, a
 * bundle whose SET verifies and whose body matches is mandatory. Throws
 * SIGNATURE_INVALID; the payload is not parsed here.
 */
export interface SigstoreVerifier {
  verify(signature: SigstoreSignature, publicKeys: readonly Buffer[], rekorPublicKeys?: readonly Buffer[]): Promise<void>;
  /**
   * A keyless `.sig` layer (certificate, chain and bundle annotations):
   * chain, identity, certificate validity at the log's integratedTime, SET
   * and body (fulcio); chain and subject (pki). Throws SIGNATURE_INVALID
   * naming the failed check.
   */
  verifyKeyless(signature: SigstoreSignature, trust: FulcioTrustMaterial | PkiTrustMaterial): Promise<void>;
  /**
   * A sigstore bundle (v0.1–v0.3; DSSE or message signature) under any
   * trust: signature, certificate or key, log evidence (SET and/or
   * inclusion proof with a signed checkpoint). Returns what was signed; the
   * caller checks its claims (statement subject, identity). Throws
   * SIGNATURE_INVALID naming the failed check.
   */
  verifyBundle(bundle: SigstoreBundleBlob, trust: SigstoreTrust): Promise<VerifiedBundleContent>;
}
