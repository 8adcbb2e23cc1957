import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OciLayoutSourceFactory } from '../src/adapters/outbound/oci-layout/oci-layout-source.js';
import { Descriptor } from '../src/domain/image/descriptor.js';
import { ImageTarget } from '../src/domain/image/image-target.js';
import { buildImage, imageManifestEntry, writeOciLayout } from '../test/helpers/image-builder.js';
import { tar } from '../test/helpers/tar-writer.js';
import { MemoryImageSourceFactory } from '../test/mocks/memory-image-source.js';
import { imageSourceContract, type ReferrersFixture } from './image-source.contract.js';
import { referrerContent, type ReferrerArtifact } from './referrer-artifacts.js';
import { Digest } from '../src/domain/image/digest.js';

const image = buildImage({ layers: [{ tar: tar([{ name: 'hello', content: 'contract' }]) }, { tar: tar([{ name: 'big', content: Buffer.alloc(300_000, 7) }]) }] });
const layer = image.layers[1]!;
const lonely = buildImage({ layers: [{ tar: tar([{ name: 'lonely', content: 'nobody refers to me' }]) }] });
const content = referrerContent({ mediaType: image.manifestMediaType, digest: image.manifestDigest, size: image.manifest.length });
const referrers: ReferrersFixture = { subject: Digest.parse(image.manifestDigest), lonely: Digest.parse(lonely.manifestDigest), content };
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const artifactEntry = (a: ReferrerArtifact) => ({
  manifest: { digest: a.digest.toString(), mediaType: OCI_MANIFEST, bytes: a.bytes },
  blobs: new Map([...content.blobs, [a.digest.toString(), a.bytes]]),
});

const blob = {
  descriptor: Descriptor.parse({ mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.length }, 'fixture'),
  bytes: layer.bytes,
};

/** A layout holding the image, a second image nobody refers to, and the referrers as `entries` store them. */
async function layoutFixture(entries: Parameters<typeof writeOciLayout>[1]) {
  const dir = await mkdtemp(join(tmpdir(), 'image-ts-layout-'));
  await writeOciLayout(dir, [imageManifestEntry(image, 'v1'), imageManifestEntry(lonely, 'lonely'), ...entries]);
  return {
    factory: new OciLayoutSourceFactory(),
    target: ImageTarget.parse(`oci:${dir}:v1`),
    manifestBytes: image.manifest,
    blob,
    missingTarget: ImageTarget.parse(`oci:${dir}:absent`),
    referrers,
    teardown: () => rm(dir, { recursive: true, force: true }),
  };
}

// Referrers listed in index.json beside the images, as oras and cosign write a layout.
imageSourceContract('OCI layout directory', () => layoutFixture([...content.referrers, content.stranger].map(artifactEntry)));

imageSourceContract('OCI layout directory, referrers tag schema', () => {
  // Only the tag schema's index names the referrers; their manifests are blobs of the layout.
  const tagIndexDigest = Digest.of(content.tagIndex.bytes).toString();
  const blobs = new Map([...content.blobs, ...content.referrers.map((a) => [a.digest.toString(), a.bytes] as const)]);
  blobs.set(tagIndexDigest, content.tagIndex.bytes);
  return layoutFixture([{ ref: content.tagIndex.tag, manifest: { digest: tagIndexDigest, mediaType: content.tagIndex.mediaType, bytes: content.tagIndex.bytes }, blobs }]);
});

imageSourceContract('in-memory mock', async () => {
  const factory = new MemoryImageSourceFactory();
  factory.put('example.com/contract/app', 'v1', { bytes: image.manifest, digest: image.manifestDigest, mediaType: image.manifestMediaType }, image.blobs);
  factory.put('example.com/contract/app', 'lonely', { bytes: lonely.manifest, digest: lonely.manifestDigest, mediaType: lonely.manifestMediaType }, lonely.blobs);
  for (const a of [...content.referrers, content.stranger]) {
    factory.put('example.com/contract/app', undefined, { bytes: a.bytes, digest: a.digest.toString(), mediaType: OCI_MANIFEST }, new Map(content.blobs));
  }
  return {
    factory,
    target: ImageTarget.parse('example.com/contract/app:v1'),
    manifestBytes: image.manifest,
    blob,
    missingTarget: ImageTarget.parse('example.com/contract/absent:v1'),
    referrers,
    teardown: async () => undefined,
  };
});
