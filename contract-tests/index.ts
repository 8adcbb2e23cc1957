/**
 * The contract suites, one per port, for adapters written anywhere: call one
 * from your own `node --test` file with a factory for your adapter, e.g.
 *
 *   import { keyBrokerContract } from 'image-ts/contract-tests';
 *   keyBrokerContract('my broker', async (resources) => ({ broker: new MyBroker(resources), teardown: async () => {} }));
 *
 * Each suite is what image-ts relies on from that port; every shipped
 * adapter and mock passes it.
 */
export { attestationAgentContract, type AttestationAgentFixture } from './attestation-agent.contract.js';
export { bundleFsContract, type BundleFsFixture } from './bundle-fs.contract.js';
export { decompressorContract, type ContractOptions as DecompressorContractOptions } from './decompressor.contract.js';
export { imageSourceContract, type ImageSourceFixture } from './image-source.contract.js';
export { keyBrokerContract, type KeyBrokerFixture } from './key-broker.contract.js';
export { keyProviderContract, samplePrivOpts, wrapPrivOpts, type HeldKey, type KeyProviderFixture } from './key-provider.contract.js';
export { layerStoreContract, type LayerStoreFixture } from './layer-store.contract.js';
export { metadataStoreContract } from './metadata-store.contract.js';
export { snapshotterRecordContract } from './snapshotter-record.contract.js';
export { snapshotterContract, type SnapshotterFixture } from './snapshotter.contract.js';
