import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { DigestMismatchError, ImageTsError, InvalidManifestError, NotFoundError, asImageTsError } from '../../../domain/errors.js';
import { Descriptor } from '../../../domain/image/descriptor.js';
import { Digest } from '../../../domain/image/digest.js';
import type { ImageTarget } from '../../../domain/image/image-target.js';
import { parseJsonObject } from '../../../domain/image/json-fields.js';
import { MediaType } from '../../../domain/image/media-types.js';
import { asReferrers, filterReferrers, MAX_REFERRERS, mergeReferrers, parseReferrerManifest, referrerDescriptor, referrersTag } from '../../../domain/image/referrers.js';
import { referrersFromTag } from '../../../domain/image/referrers-lookup.js';
import type { BlobRequest, FetchedManifest, ImageSource, ImageSourceFactory, Referrer } from '../../../ports/image-source/image-source.js';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const MAX_INDEX_BYTES = 4 * 1024 * 1024;

function missing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR';
}

/** An OCI image layout directory (image-spec "image-layout"): index.json plus blobs/<alg>/<hex>. */
class OciLayoutSource implements ImageSource {
  readonly description: string;

  constructor(private readonly dir: string) {
    this.description = `oci:${dir}`;
  }

  private blobPath(digest: Digest): string {
    // Digest.parse has already confined algorithm and hex to safe characters.
    return join(this.dir, 'blobs', digest.algorithm, digest.encoded);
  }

  private async index(): Promise<Descriptor[]> {
    let bytes: Buffer;
    try {
      const layout = parseJsonObject(await readFile(join(this.dir, 'oci-layout')), 'oci-layout', (m) => new InvalidManifestError(m));
      if (typeof layout['imageLayoutVersion'] !== 'string') throw new InvalidManifestError('oci-layout has no imageLayoutVersion');
      const st = await stat(join(this.dir, 'index.json'));
      if (st.size > MAX_INDEX_BYTES) throw new InvalidManifestError('index.json is too large');
      bytes = await readFile(join(this.dir, 'index.json'));
    } catch (err) {
      if (missing(err)) throw new NotFoundError(`no OCI image layout at ${this.dir}`);
      throw asImageTsError(err);
    }
    const doc = parseJsonObject(bytes, 'index.json', (m) => new InvalidManifestError(m));
    const manifests = doc['manifests'];
    if (!Array.isArray(manifests)) throw new InvalidManifestError('index.json has no manifests array');
    return manifests.map((m, i) => Descriptor.parse(m, `index.json manifests[${i}]`));
  }

  /** A ref name from index.json, a digest, or '' for "the only image in the layout". */
  async getManifest(ref: string): Promise<FetchedManifest> {
    if (Digest.isValid(ref)) {
      const digest = Digest.parse(ref);
      return { bytes: await this.readSmallBlob(digest), mediaType: undefined };
    }
    const entries = await this.index();
    let chosen: Descriptor | undefined;
    if (ref === '') {
      if (entries.length !== 1) {
        const names = entries.map((e) => e.annotations?.[REF_NAME_ANNOTATION]).filter((n): n is string => !!n);
        throw new ImageTsError(
          'INVALID_REFERENCE',
          `${this.description} holds ${entries.length} images; name one with oci:DIR:REF${names.length ? ` (refs: ${names.join(', ')})` : ''}`,
        );
      }
      chosen = entries[0];
    } else {
      chosen = entries.find((e) => e.annotations?.[REF_NAME_ANNOTATION] === ref);
      if (!chosen) throw new NotFoundError(`${this.description} has no image named ${JSON.stringify(ref)}`);
    }
    return { bytes: await this.readSmallBlob(chosen!.digest), mediaType: chosen!.mediaType };
  }

  private async readSmallBlob(digest: Digest): Promise<Buffer> {
    try {
      const st = await stat(this.blobPath(digest));
      if (st.size > MAX_INDEX_BYTES) throw new InvalidManifestError(`manifest ${digest} is too large`);
      return await readFile(this.blobPath(digest));
    } catch (err) {
      if (missing(err)) throw new NotFoundError(`${this.description} has no blob ${digest}`);
      throw asImageTsError(err);
    }
  }

  /**
   * A layout has no referrers API. Referrers are manifests listed in
   * index.json whose `subject` is the digest (as oras and cosign write a
   * layout), plus the tag schema's index when index.json names one
   * `sha256-<hex>`. Each manifest read is checked against its digest.
   */
  async listReferrers(subject: Digest, artifactType?: string): Promise<Referrer[]> {
    const entries = await this.index();
    if (entries.length > MAX_REFERRERS) throw new InvalidManifestError(`index.json lists more than ${MAX_REFERRERS} manifests`);
    const tag = referrersTag(subject);
    const found: Descriptor[] = [];
    for (const entry of entries) {
      if (entry.annotations?.[REF_NAME_ANNOTATION] === tag) {
        found.push(...(await referrersFromTag(this, subject, undefined)).map((r) => r.descriptor));
        continue;
      }
      if (entry.mediaType !== MediaType.OciManifest) continue;
      const what = `manifest ${entry.digest} of ${this.description}`;
      const bytes = await this.readSmallBlob(entry.digest);
      const actual = Digest.of(bytes, entry.digest.algorithm);
      if (!actual.equals(entry.digest)) throw new DigestMismatchError(what, entry.digest.toString(), actual.toString());
      const manifest = parseReferrerManifest(bytes, what);
      if (manifest.subject?.digest.equals(subject)) found.push(referrerDescriptor(entry.digest, bytes.length, manifest));
    }
    return asReferrers(filterReferrers(mergeReferrers([found]), artifactType));
  }

  async getBlob(descriptor: Descriptor, request?: BlobRequest): Promise<Readable> {
    const path = this.blobPath(descriptor.digest);
    try {
      await stat(path);
    } catch (err) {
      if (missing(err)) throw new NotFoundError(`${this.description} has no blob ${descriptor.digest}`);
      throw asImageTsError(err);
    }
    return createReadStream(path, { highWaterMark: 256 * 1024, signal: request?.signal });
  }

  async close(): Promise<void> {}
}

export class OciLayoutSourceFactory implements ImageSourceFactory {
  supports(target: ImageTarget): boolean {
    return target.kind === 'oci-layout';
  }

  async open(target: ImageTarget): Promise<ImageSource> {
    if (target.kind !== 'oci-layout') throw new ImageTsError('INTERNAL', 'not an OCI layout target');
    return new OciLayoutSource(resolve(target.dir));
  }
}
