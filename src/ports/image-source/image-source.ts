import type { Readable } from 'node:stream';
import type { Descriptor } from '../../domain/image/descriptor.js';
import type { Digest } from '../../domain/image/digest.js';
import type { Reference } from '../../domain/image/reference.js';
import type { ImageTarget } from '../../domain/image/image-target.js';

/** Credentials a caller passes with one request; they win over any auth file. */
export type Credentials =
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  | { readonly kind: 'identity-token'; readonly username: string; readonly token: string }
  | { readonly kind: 'registry-token'; readonly token: string };

export interface FetchedManifest {
  readonly bytes: Buffer;
  /** The transport's Content-Type, if it has one. */
  readonly mediaType: string | undefined;
}

/** One entry of a referrers index: a manifest whose `subject` is the digest asked about. */
export interface Referrer {
  /** The referrer manifest's descriptor (mediaType, digest, size, annotations). */
  readonly descriptor: Descriptor;
  /** The descriptor's artifactType (for a sigstore bundle, the bundle media type). */
  readonly artifactType: string | undefined;
}

export interface BlobRequest {
  readonly signal?: AbortSignal | undefined;
}

/**
 * One opened image: its manifests and blobs. Sources move bytes; they do not
 * decide what the bytes mean. The pull use case verifies every digest.
 */
export interface ImageSource {
  /** Human-readable origin, never containing credentials. */
  readonly description: string;
  /** A manifest or index by tag or digest (`sha256:...`). */
  getManifest(ref: string, signal?: AbortSignal): Promise<FetchedManifest>;
  /** A blob's bytes as a stream. Transient failures are retried and resumed inside the source. */
  getBlob(descriptor: Descriptor, request?: BlobRequest): Promise<Readable>;
  /**
   * Simple-signing signatures the source itself serves (the registry
   * signature extension, X-Registry-Supports-Signatures); undefined when it
   * has no such thing, and lookaside applies.
   */
  getSimpleSignatures?(manifestDigest: Digest, signal?: AbortSignal): Promise<Buffer[] | undefined>;
  /**
   * The OCI 1.1 referrers of `subject`: the manifests whose `subject` is it
   * (signatures, SBOMs, attestations). A registry answers through its
   * referrers API, or through the referrers tag schema (an index at tag
   * `sha256-<hex>`) where it has none (a 404). Filtered by artifactType when
   * given (the source filters if the registry did not). [] when there are
   * none; an unreachable registry is an error, never []. The list is a hint:
   * callers fetch each manifest by digest and check it. An undefined method
   * means this source cannot have referrers.
   */
  listReferrers?(subject: Digest, artifactType?: string, signal?: AbortSignal): Promise<Referrer[]>;
  /** The repository actually read (a mirror's, when one served the image); undefined before the first manifest or for layouts. */
  physicalReference?(): Reference | undefined;
  close(): Promise<void>;
}

export interface OpenOptions {
  readonly credentials?: Credentials | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** Opens a source for a target. Adapters for registries and OCI layouts register behind it. */
export interface ImageSourceFactory {
  supports(target: ImageTarget): boolean;
  open(target: ImageTarget, options?: OpenOptions): Promise<ImageSource>;
}
