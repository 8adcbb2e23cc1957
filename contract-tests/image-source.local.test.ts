import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OciLayoutSourceFactory } from '../src/adapters/outbound/oci-layout/oci-layout-source.js';
import { Descriptor } from '../src/domain/image/descriptor.js';
import { ImageTarget } from '../src/domain/image/image-target.js';
import { buildImage, imageManifestEntry, writeOciLayout } from '../test/helpers/image-builder.js';
import { tar } from '../test/helpers/tar-writer.js';
import { MemoryImageSourceFactory } from '../test/mocks/memory-image-source.js';
import { imageSourceContract } from './image-source.contract.js';

const image = buildImage({ layers: [{ tar: tar([{ name: 'hello', content: 'contract' }]) }, { tar: tar([{ name: 'big', content: Buffer.alloc(300_000, 7) }]) }] });
const layer = image.layers[1]!;
const blob = {
  descriptor: Descriptor.parse({ mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.length }, 'fixture'),
  bytes: layer.bytes,
};

imageSourceContract('OCI layout directory', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'image-ts-layout-'));
  await writeOciLayout(dir, [imageManifestEntry(image, 'v1')]);
  return {
    factory: new OciLayoutSourceFactory(),
    target: ImageTarget.parse(`oci:${dir}:v1`),
    manifestBytes: image.manifest,
    blob,
    missingTarget: ImageTarget.parse(`oci:${dir}:absent`),
    teardown: () => rm(dir, { recursive: true, force: true }),
  };
});

imageSourceContract('in-memory mock', async () => {
  const factory = new MemoryImageSourceFactory();
  factory.put('example.com/contract/app', 'v1', { bytes: image.manifest, digest: image.manifestDigest, mediaType: image.manifestMediaType }, image.blobs);
  return {
    factory,
    target: ImageTarget.parse('example.com/contract/app:v1'),
    manifestBytes: image.manifest,
    blob,
    missingTarget: ImageTarget.parse('example.com/contract/absent:v1'),
    teardown: async () => undefined,
  };
});
