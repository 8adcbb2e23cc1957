import { RegistrySourceFactory } from '../src/adapters/outbound/registry/registry-source.js';
import { ImageTarget } from '../src/domain/image/image-target.js';
import { startRegistry } from '../test/harness/registry.js';
import { imageSourceContract } from './image-source.contract.js';

imageSourceContract('registry (docker-registry 2.8, plain http)', async () => {
  const registry = await startRegistry('open');
  const image = await registry.pushImage('contract/app', 'v1');
  const layer = image.layers[0];
  if (!layer) throw new Error('pushed image has no layer');
  return {
    factory: new RegistrySourceFactory({ insecureRegistries: [registry.host], caFiles: [] }),
    target: ImageTarget.parse(`${registry.host}/contract/app:v1`),
    manifestBytes: image.manifestBytes,
    blob: layer,
    missingTarget: ImageTarget.parse(`${registry.host}/contract/absent:v1`),
    teardown: () => registry.stop(),
  };
});
