import type { Readable } from 'node:stream';
import { ImageTsError } from '../errors.js';
import type { Descriptor } from '../image/descriptor.js';
import type { Digest } from '../image/digest.js';
import type { Reference } from '../image/reference.js';
import type { BlobRequest, FetchedManifest, ImageSource, Referrer } from '../../ports/image-source/image-source.js';
import { firstSuccess } from './first-success.js';

/** One place an image may be read from: a mirror, or the primary location. */
export interface SourceCandidate {
  /** The repository actually read, which signatures are looked up for. */
  readonly physical: Reference;
  readonly description: string;
  open(): Promise<ImageSource>;
}

/**
 * Mirrors first, then the primary: the first candidate whose manifest fetch
 * succeeds serves everything else of this pull. When all fail, every
 * candidate's error is reported.
 */
export class FallbackImageSource implements ImageSource {
  private chosen: { readonly source: ImageSource; readonly physical: Reference } | undefined;

  constructor(private readonly candidates: readonly SourceCandidate[]) {}

  get description(): string {
    return this.chosen?.source.description ?? this.candidates.map((c) => c.description).join(', then ');
  }

  physicalReference(): Reference | undefined {
    return this.chosen?.physical;
  }

  async getManifest(ref: string, signal?: AbortSignal): Promise<FetchedManifest> {
    if (this.chosen) return this.chosen.source.getManifest(ref, signal);
    // The primary (last) decides the code; the message names every source tried.
    return firstSuccess(this.candidates, {
      name: (c) => c.description,
      summary: 'every source failed',
      signal,
      attempt: async (candidate) => {
        let source: ImageSource | undefined;
        try {
          source = await candidate.open();
          const manifest = await source.getManifest(ref, signal);
          this.chosen = { source, physical: candidate.physical };
          return manifest;
        } catch (err) {
          await source?.close().catch(() => undefined);
          throw err;
        }
      },
    });
  }

  getBlob(descriptor: Descriptor, request?: BlobRequest): Promise<Readable> {
    return this.current().getBlob(descriptor, request);
  }

  async getSimpleSignatures(manifestDigest: Digest, signal?: AbortSignal): Promise<Buffer[] | undefined> {
    return this.current().getSimpleSignatures?.(manifestDigest, signal);
  }

  async listReferrers(subject: Digest, artifactType?: string, signal?: AbortSignal): Promise<Referrer[]> {
    return (await this.current().listReferrers?.(subject, artifactType, signal)) ?? [];
  }

  async close(): Promise<void> {
    await this.chosen?.source.close();
  }

  private current(): ImageSource {
    if (!this.chosen) throw new ImageTsError('INTERNAL', 'a blob was asked for before any manifest was fetched');
    return this.chosen.source;
  }
}
