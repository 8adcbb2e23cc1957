import { Digest } from '../src/domain/image/digest.js';
import { MediaType } from '../src/domain/image/media-types.js';
import { referrersTag } from '../src/domain/image/referrers.js';

/** The OCI empty config (`{}`) artifacts carry. */
export const EMPTY_CONFIG_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
/** Two artifact types the image-source contract stores as referrers. */
export const SBOM_ARTIFACT_TYPE = 'application/vnd.example.sbom.v1+json';
export const BUNDLE_ARTIFACT_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

export interface ReferrerArtifact {
  readonly bytes: Buffer;
  readonly digest: Digest;
  readonly artifactType: string;
}

/** What a fixture stores so the image-source contract can check referrers. */
export interface ReferrerContent {
  /** Manifests whose subject is the image: one with `artifactType`, one typed by its config only (cosign's older form). */
  readonly referrers: readonly ReferrerArtifact[];
  /** An artifact whose subject is another manifest: never a referrer of the image. */
  readonly stranger: ReferrerArtifact;
  /** The blobs they need: the empty config and each layer. */
  readonly blobs: ReadonlyMap<string, Buffer>;
  /**
   * The referrers tag schema's index of the image, listing `referrers`: what
   * a client pushes to a registry without the referrers API. A store with the
   * API need not hold it.
   */
  readonly tagIndex: { readonly tag: string; readonly bytes: Buffer; readonly mediaType: string };
}

function artifact(
  subject: { readonly mediaType: string; readonly digest: string; readonly size: number },
  type: { readonly artifactType?: string; readonly configMediaType: string },
  layer: Buffer,
  layerMediaType: string,
  blobs: Map<string, Buffer>,
): ReferrerArtifact {
  const empty = Buffer.from('{}');
  blobs.set(Digest.of(empty).toString(), empty);
  blobs.set(Digest.of(layer).toString(), layer);
  const bytes = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    ...(type.artifactType !== undefined ? { artifactType: type.artifactType } : {}),
    config: { mediaType: type.configMediaType, digest: Digest.of(empty).toString(), size: empty.length },
    layers: [{ mediaType: layerMediaType, digest: Digest.of(layer).toString(), size: layer.length }],
    subject,
    annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
  }));
  return { bytes, digest: Digest.of(bytes), artifactType: type.artifactType ?? type.configMediaType };
}

/** Referrer artifacts of `subject` (the image manifest's descriptor), made fresh for a fixture to store. */
export function referrerContent(subject: { readonly mediaType: string; readonly digest: string; readonly size: number }): ReferrerContent {
  const blobs = new Map<string, Buffer>();
  const sbom = artifact(subject, { artifactType: SBOM_ARTIFACT_TYPE, configMediaType: EMPTY_CONFIG_MEDIA_TYPE },
    Buffer.from(`{"sbom":"${subject.digest}"}`), 'application/json', blobs);
  // Typed by its config alone: the API must report config.mediaType as its artifactType.
  const bundle = artifact(subject, { configMediaType: BUNDLE_ARTIFACT_TYPE },
    Buffer.from(`{"mediaType":"${BUNDLE_ARTIFACT_TYPE}","for":"${subject.digest}"}`), BUNDLE_ARTIFACT_TYPE, blobs);
  const other = Buffer.from(`another manifest than ${subject.digest}`);
  const stranger = artifact({ mediaType: MediaType.OciManifest, digest: Digest.of(other).toString(), size: other.length },
    { artifactType: SBOM_ARTIFACT_TYPE, configMediaType: EMPTY_CONFIG_MEDIA_TYPE }, Buffer.from('{"stranger":true}'), 'application/json', blobs);
  const referrers = [sbom, bundle];
  const tagIndex = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: referrers.map((r) => ({ mediaType: MediaType.OciManifest, digest: r.digest.toString(), size: r.bytes.length, artifactType: r.artifactType })),
  }));
  return { referrers, stranger, blobs, tagIndex: { tag: referrersTag(Digest.parse(subject.digest)), bytes: tagIndex, mediaType: MediaType.OciIndex } };
}
