/**
 * An in-memory ImageSource for policy tests: manifests and blobs by digest,
 * and OCI 1.1 referrers listed for a subject, so the verify side runs
 * without the discovery side's registry code.
 */
import { Readable } from 'node:stream';
import { ImageTsError } from '../../src/domain/errors.js';
import type { Descriptor } from '../../src/domain/image/descriptor.js';
import { Digest } from '../../src/domain/image/digest.js';
import type { ImageSource, Referrer } from '../../src/ports/image-source/image-source.js';

const EMPTY_CONFIG = { mediaType: 'application/vnd.oci.empty.v1+json', digest: Digest.of(Buffer.from('{}')).toString(), size: 2 };

export class ReferrersSource implements ImageSource {
  readonly description = 'memory referrers source';
  private readonly manifests = new Map<string, Buffer>();
  private readonly tags = new Map<string, string>();
  private readonly blobs = new Map<string, Buffer>();
  private readonly referrers = new Map<string, Referrer[]>();

  /** Stores a manifest (or index) and returns its digest; `tag` names it too. */
  putManifest(bytes: Buffer, tag?: string): Digest {
    const d = Digest.of(bytes);
    this.manifests.set(d.toString(), bytes);
    if (tag) this.tags.set(tag, d.toString());
    return d;
  }

  putBlob(bytes: Buffer): Digest {
    const d = Digest.of(bytes);
    this.blobs.set(d.toString(), bytes);
    return d;
  }

  /** A minimal image manifest to sign. */
  putImage(seed = 'image'): Digest {
    return this.putManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: EMPTY_CONFIG, layers: [], annotations: { seed } })));
  }

  /** Attaches a sigstore bundle to `subject` as cosign v3 does: a referrer manifest with one bundle layer. */
  attachBundle(
    subject: Digest,
    bundle: { readonly mediaType: string; readonly bytes: Buffer },
    options: { readonly listArtifactType?: boolean; readonly predicateType?: string } = {},
  ): Digest {
    const layer = this.putBlob(bundle.bytes);
    const subjectBytes = this.manifests.get(subject.toString());
    if (!subjectBytes) throw new Error(`no manifest ${subject}`);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: bundle.mediaType,
      config: EMPTY_CONFIG,
      layers: [{ mediaType: bundle.mediaType, digest: layer.toString(), size: bundle.bytes.length }],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: subject.toString(), size: subjectBytes.length },
      annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': options.predicateType ?? 'https://sigstore.dev/cosign/sign/v1' },
    }));
    const d = this.putManifest(manifest);
    const list = this.referrers.get(subject.toString()) ?? [];
    list.push({
      descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d, size: manifest.length },
      artifactType: options.listArtifactType === false ? undefined : bundle.mediaType,
    });
    this.referrers.set(subject.toString(), list);
    return d;
  }

  /** A `.sig` tag for `subject` with these layers (payload + annotations). */
  attachSig(subject: Digest, layers: readonly { readonly payload: Buffer; readonly annotations: Readonly<Record<string, string>> }[]): void {
    const descs = layers.map((l) => ({ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: this.putBlob(l.payload).toString(), size: l.payload.length, annotations: l.annotations }));
    this.putManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: EMPTY_CONFIG, layers: descs })), `${subject.algorithm}-${subject.encoded}.sig`);
  }

  async getManifest(ref: string): Promise<{ bytes: Buffer; mediaType: string | undefined }> {
    const bytes = this.manifests.get(this.tags.get(ref) ?? ref);
    if (!bytes) throw new ImageTsError('NOT_FOUND', `manifest ${ref} not found`);
    return { bytes, mediaType: 'application/vnd.oci.image.manifest.v1+json' };
  }

  async getBlob(descriptor: Descriptor): Promise<Readable> {
    const bytes = this.blobs.get(descriptor.digest.toString());
    if (!bytes) throw new ImageTsError('NOT_FOUND', `blob ${descriptor.digest} not found`);
    return Readable.from([bytes]);
  }

  async listReferrers(subject: Digest, artifactType?: string): Promise<Referrer[]> {
    return (this.referrers.get(subject.toString()) ?? []).filter((r) => artifactType === undefined || r.artifactType === artifactType);
  }

  async close(): Promise<void> {}
}
