import { Readable } from 'node:stream';
import { ImageTsError, NotFoundError } from '../../src/domain/errors.js';
import type { Descriptor } from '../../src/domain/image/descriptor.js';
import { Digest } from '../../src/domain/image/digest.js';
import { asReferrers, filterReferrers, parseReferrerManifest, referrerDescriptor } from '../../src/domain/image/referrers.js';
import type { ImageTarget } from '../../src/domain/image/image-target.js';
import type { FetchedManifest, ImageSource, ImageSourceFactory, OpenOptions, Referrer } from '../../src/ports/image-source/image-source.js';

interface Repo {
  manifests: Map<string, { bytes: Buffer; mediaType: string }>;
  blobs: Map<string, Buffer>;
}

/** Registry-shaped content in memory, keyed by repository name (`domain/path`). Counts blob fetches. */
export class MemoryImageSourceFactory implements ImageSourceFactory {
  private readonly repos = new Map<string, Repo>();
  readonly blobFetches = new Map<string, number>();

  private repo(name: string): Repo {
    let r = this.repos.get(name);
    if (!r) {
      r = { manifests: new Map(), blobs: new Map() };
      this.repos.set(name, r);
    }
    return r;
  }

  /** Stores a manifest under a tag and under its digest, and the blobs it needs. */
  put(name: string, tag: string | undefined, manifest: { bytes: Buffer; digest: string; mediaType: string }, blobs: Map<string, Buffer>): void {
    const r = this.repo(name);
    if (tag) r.manifests.set(tag, manifest);
    r.manifests.set(manifest.digest, manifest);
    for (const [d, b] of blobs) {
      r.blobs.set(d, b);
      // Blobs that are manifests are reachable by digest as manifests too.
      if (!r.manifests.has(d) && b[0] === 0x7b) r.manifests.set(d, { bytes: b, mediaType: '' });
    }
  }

  supports(target: ImageTarget): boolean {
    return target.kind === 'registry';
  }

  async open(target: ImageTarget, _options?: OpenOptions): Promise<ImageSource> {
    if (target.kind !== 'registry') throw new ImageTsError('INTERNAL', 'not a registry target');
    const name = target.reference.name;
    const repo = this.repos.get(name);
    const fetches = this.blobFetches;
    return {
      description: `memory://${name}`,
      async getManifest(ref: string): Promise<FetchedManifest> {
        const m = repo?.manifests.get(ref);
        if (!m) throw new NotFoundError(`memory://${name}:${ref} not found`);
        return { bytes: m.bytes, mediaType: m.mediaType || undefined };
      },
      async getBlob(descriptor: Descriptor): Promise<Readable> {
        const key = descriptor.digest.toString();
        const b = repo?.blobs.get(key);
        if (!b) throw new NotFoundError(`memory://${name} has no blob ${key}`);
        fetches.set(key, (fetches.get(key) ?? 0) + 1);
        // Several chunks, so consumers see a real stream.
        const parts: Buffer[] = [];
        for (let i = 0; i < b.length; i += 16 * 1024) parts.push(b.subarray(i, i + 16 * 1024));
        return Readable.from(parts.length ? parts : [Buffer.alloc(0)]);
      },
      /** As a registry's referrers API builds its answer: every stored manifest whose subject is `subject`. */
      async listReferrers(subject: Digest, artifactType?: string): Promise<Referrer[]> {
        const found: Descriptor[] = [];
        for (const [key, m] of repo?.manifests ?? []) {
          if (!Digest.isValid(key)) continue;
          let parsed;
          try {
            parsed = parseReferrerManifest(m.bytes, key);
          } catch {
            continue; // not a manifest (a config or layer blob stored as one)
          }
          if (parsed.subject?.digest.equals(subject)) found.push(referrerDescriptor(Digest.parse(key), m.bytes.length, parsed));
        }
        return asReferrers(filterReferrers(found, artifactType));
      },
      async close(): Promise<void> {},
    };
  }
}
