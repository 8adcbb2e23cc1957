import { RegistrySourceFactory } from '../src/adapters/outbound/registry/registry-source.js';
import { Digest } from '../src/domain/image/digest.js';
import { ImageTarget } from '../src/domain/image/image-target.js';
import { startReferrersProxy, type ReferrersMode } from '../test/harness/referrers-proxy.js';
import { smallImage, startRegistry, type StartedRegistry } from '../test/harness/registry.js';
import { imageSourceContract, type ImageSourceFixture } from './image-source.contract.js';
import { referrerContent } from './referrer-artifacts.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/**
 * The image, a second image nothing refers to, and referrer artifacts of the
 * first, pushed as a client does to a registry without the referrers API:
 * the artifacts by digest, and the tag schema's index.
 */
async function pushContent(registry: StartedRegistry, host: string, teardown: () => Promise<void>): Promise<ImageSourceFixture> {
  const image = await registry.pushImage('contract/app', 'v1');
  const lonely = await registry.pushImage('contract/app', 'lonely', smallImage('nobody refers to me\n'));
  const layer = image.layers[0];
  if (!layer) throw new Error('pushed image has no layer');
  const content = referrerContent({ mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifestBytes.length });
  for (const bytes of content.blobs.values()) await registry.pushBlob('contract/app', bytes);
  for (const a of [...content.referrers, content.stranger]) await registry.pushManifest('contract/app', a.digest.toString(), a.bytes, OCI_MANIFEST);
  await registry.pushManifest('contract/app', content.tagIndex.tag, content.tagIndex.bytes, content.tagIndex.mediaType);
  return {
    factory: new RegistrySourceFactory({ insecureRegistries: [host], caFiles: [] }),
    target: ImageTarget.parse(`${host}/contract/app:v1`),
    manifestBytes: image.manifestBytes,
    blob: layer,
    missingTarget: ImageTarget.parse(`${host}/contract/absent:v1`),
    referrers: { subject: Digest.parse(image.manifestDigest), lonely: Digest.parse(lonely.manifestDigest), content },
    teardown,
  };
}

imageSourceContract('registry (docker-registry 2.8, plain http; referrers through the tag schema)', async () => {
  const registry = await startRegistry('open');
  return pushContent(registry, registry.host, () => registry.stop());
});

const throughApi = (mode: ReferrersMode, pageSize: number | undefined) => async (): Promise<ImageSourceFixture> => {
  const registry = await startRegistry('open');
  const proxy = await startReferrersProxy(registry, mode);
  proxy.pageSize = pageSize;
  return pushContent(registry, proxy.host, async () => {
    await proxy.stop();
    await registry.stop();
  });
};

imageSourceContract('registry behind the referrers API (filtering)', throughApi('api', undefined));
imageSourceContract('registry behind a referrers API that ignores artifactType, one referrer per page', throughApi('api-unfiltered', 1));
