/**
 * Wrong on purpose: a source that answers a blob it does not have with an
 * empty stream instead of NOT_FOUND, so a missing layer reads as empty; and
 * whose referrers lookup ignores the artifactType filter, so a caller asking
 * for signatures is handed every other artifact too.
 */
import { Readable } from 'node:stream';
import { ImageTsError } from '../../src/domain/errors.js';
import { Descriptor } from '../../src/domain/image/descriptor.js';
import { Digest } from '../../src/domain/image/digest.js';
import { ImageTarget } from '../../src/domain/image/image-target.js';
import type { ImageSource, ImageSourceFactory, OpenOptions } from '../../src/ports/image-source/image-source.js';
import { buildImage } from '../../test/helpers/image-builder.js';
import { tar } from '../../test/helpers/tar-writer.js';
import { MemoryImageSourceFactory } from '../../test/mocks/memory-image-source.js';
import { imageSourceContract } from '../image-source.contract.js';
import { referrerContent } from '../referrer-artifacts.js';

class EmptyForMissingBlobs implements ImageSourceFactory {
  constructor(private readonly inner: ImageSourceFactory) {}

  supports(target: ImageTarget): boolean {
    return this.inner.supports(target);
  }

  async open(target: ImageTarget, options?: OpenOptions): Promise<ImageSource> {
    const source = await this.inner.open(target, options);
    return {
      ...source,
      getBlob: async (descriptor: Descriptor) => {
        try {
          return await source.getBlob(descriptor);
        } catch (err) {
          if (err instanceof ImageTsError && err.code === 'NOT_FOUND') return Readable.from([]);
          throw err;
        }
      },
      listReferrers: async (subject: Digest) => (await source.listReferrers?.(subject)) ?? [],
    };
  }
}

const image = buildImage({ layers: [{ tar: tar([{ name: 'hello', content: 'wrong' }]) }] });
const layer = image.layers[0]!;
const lonely = buildImage({ layers: [{ tar: tar([{ name: 'lonely', content: 'nobody refers to me' }]) }] });
const content = referrerContent({ mediaType: image.manifestMediaType, digest: image.manifestDigest, size: image.manifest.length });

imageSourceContract('wrong: a source that serves a missing blob as empty', async () => {
  const inner = new MemoryImageSourceFactory();
  inner.put('example.com/contract/app', 'v1', { bytes: image.manifest, digest: image.manifestDigest, mediaType: image.manifestMediaType }, image.blobs);
  inner.put('example.com/contract/app', 'lonely', { bytes: lonely.manifest, digest: lonely.manifestDigest, mediaType: lonely.manifestMediaType }, lonely.blobs);
  for (const a of [...content.referrers, content.stranger]) {
    inner.put('example.com/contract/app', undefined, { bytes: a.bytes, digest: a.digest.toString(), mediaType: 'application/vnd.oci.image.manifest.v1+json' }, new Map(content.blobs));
  }
  return {
    factory: new EmptyForMissingBlobs(inner),
    target: ImageTarget.parse('example.com/contract/app:v1'),
    manifestBytes: image.manifest,
    blob: { descriptor: Descriptor.parse({ mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.length }, 'fixture'), bytes: layer.bytes },
    missingTarget: ImageTarget.parse('example.com/contract/absent:v1'),
    referrers: { subject: Digest.parse(image.manifestDigest), lonely: Digest.parse(lonely.manifestDigest), content },
    teardown: async () => undefined,
  };
});
