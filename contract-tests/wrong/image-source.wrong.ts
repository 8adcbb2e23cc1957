/**
 * Wrong on purpose: a source that answers a blob it does not have with an
 * empty stream instead of NOT_FOUND, so a missing layer reads as empty.
 */
import { Readable } from 'node:stream';
import { ImageTsError } from '../../src/domain/errors.js';
import { Descriptor } from '../../src/domain/image/descriptor.js';
import { ImageTarget } from '../../src/domain/image/image-target.js';
import type { ImageSource, ImageSourceFactory, OpenOptions } from '../../src/ports/image-source/image-source.js';
import { buildImage } from '../../test/helpers/image-builder.js';
import { tar } from '../../test/helpers/tar-writer.js';
import { MemoryImageSourceFactory } from '../../test/mocks/memory-image-source.js';
import { imageSourceContract } from '../image-source.contract.js';

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
    };
  }
}

const image = buildImage({ layers: [{ tar: tar([{ name: 'hello', content: 'wrong' }]) }] });
const layer = image.layers[0]!;

imageSourceContract('wrong: a source that serves a missing blob as empty', async () => {
  const inner = new MemoryImageSourceFactory();
  inner.put('example.com/contract/app', 'v1', { bytes: image.manifest, digest: image.manifestDigest, mediaType: image.manifestMediaType }, image.blobs);
  return {
    factory: new EmptyForMissingBlobs(inner),
    target: ImageTarget.parse('example.com/contract/app:v1'),
    manifestBytes: image.manifest,
    blob: { descriptor: Descriptor.parse({ mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.length }, 'fixture'), bytes: layer.bytes },
    missingTarget: ImageTarget.parse('example.com/contract/absent:v1'),
    teardown: async () => undefined,
  };
});
