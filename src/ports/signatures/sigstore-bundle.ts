import type { Digest } from '../../domain/image/digest.js';

/** `application/vnd.dev.sigstore.bundle.v0.3+json`; v0.1 and v0.2 are `application/vnd.dev.sigstore.bundle+json;version=0.N`. */
export type SigstoreBundleMediaType = string;

/**
 * A sigstore bundle as discovery found it: the JSON bytes of the one layer
 * of a referrer manifest, its media type (the referrer's artifactType), and
 * the digest it was found as a referrer of.
 */
export interface SigstoreBundleBlob {
  readonly mediaType: SigstoreBundleMediaType;
  readonly bytes: Buffer;
  /** The manifest (or index) digest whose referrers listed it. */
  readonly subject: Digest;
  /**
   * The signed bytes of a messageSignature bundle: the subject's manifest
   * bytes, already checked against `subject`. Not used for DSSE bundles.
   */
  readonly artifact?: Buffer | undefined;
}

/** What a bundle's signature covers, once every cryptographic check passed. Still untrusted as to meaning. */
export type VerifiedBundleContent =
  | {
      readonly kind: 'dsse';
      /** The DSSE payloadType, e.g. `application/vnd.in-toto+json`. */
      readonly payloadType: string;
      readonly payload: Buffer;
    }
  | {
      readonly kind: 'message';
      /** The bundle's messageDigest, which the verifier checked against the artifact. */
      readonly algorithm: string;
      readonly digest: Buffer;
    };
