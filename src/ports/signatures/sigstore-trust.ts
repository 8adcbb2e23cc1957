/**
 * What a sigstore signature must chain to, with every key and certificate
 * already loaded (PEM bytes). The domain builds it from a sigstoreSigned
 * requirement; the verifier adapter turns it into its own trust root.
 */
export type SigstoreTrust = KeyedTrust | FulcioTrustMaterial | PkiTrustMaterial;

/** `keyPath(s)`/`keyData(s)`: any of these public keys; with Rekor keys, log evidence is mandatory. */
export interface KeyedTrust {
  readonly kind: 'keys';
  readonly publicKeys: readonly Buffer[];
  readonly rekorPublicKeys: readonly Buffer[] | undefined;
}

/** `fulcio`: a leaf chaining to the CA(s), for this OIDC issuer and email, logged in a trusted Rekor. */
export interface FulcioTrustMaterial {
  readonly kind: 'fulcio';
  /** PEM: the Fulcio root and any intermediates. */
  readonly caCertificates: Buffer;
  readonly oidcIssuer: string;
  readonly subjectEmail: string;
  /** Never empty: containers/image requires a Rekor key with fulcio. */
  readonly rekorPublicKeys: readonly Buffer[];
}

/** `pki`: a leaf chaining to the roots (through the intermediates), for this email and/or hostname. No log. */
export interface PkiTrustMaterial {
  readonly kind: 'pki';
  /** PEM roots. */
  readonly caRoots: Buffer;
  /** PEM intermediates, if the policy names any. */
  readonly caIntermediates: Buffer | undefined;
  readonly subjectEmail: string | undefined;
  readonly subjectHostname: string | undefined;
}
