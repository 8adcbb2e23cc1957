/**
 * The contract suites, one per port, for adapters written anywhere: call one
 * from your own `node --test` file with a factory for your adapter, e.g.
 *
 *   import { keyBrokerContract } from 'image-ts/contract-tests';
 *   keyBrokerContract('my broker', async (resources) => ({ broker: new MyBroker(resources), deadBroker: ..., teardown: async () => {} }));
 *
 * Each suite is what image-ts relies on from that port; every shipped
 * adapter and mock passes it, and a deliberately wrong adapter fails it
 * (contract-tests/wrong/). Each factory is called per test unless its
 * fixture says otherwise, and its `teardown` undoes what it made.
 */

/** AttestationAgent: the factory returns an agent and a reader of the measurements it recorded. */
export { attestationAgentContract, type AttestationAgentFixture } from './attestation-agent.contract.js';
/** BundleDirectory: the factory returns the bundle fs, fresh bundle paths, and a way to put rootfs files and to see what is left. */
export { bundleDirectoryContract, type BundleDirectoryFixture } from './bundle-directory.contract.js';
/** Decompressor: the factory returns a new decompressor; `boundedOutput: false` skips the bounded-memory cases. */
export { decompressorContract, type ContractOptions as DecompressorContractOptions } from './decompressor.contract.js';
/** ImageSource: the factory (called once per suite) returns a source factory, a target with a known manifest and blob, a missing target, and optionally the referrers it stored (referrerContent). */
export { imageSourceContract, type ImageSourceFixture, type ReferrersFixture } from './image-source.contract.js';
/** ImageSource referrers: fresh referrer artifacts of an image, for a fixture to store (and a tag-schema index for stores without a referrers API). */
export { referrerContent, type ReferrerArtifact, type ReferrerContent } from './referrer-artifacts.js';
/** KeyBroker: the factory gets the resources to hold and returns a broker serving them and one whose endpoint does not answer. */
export { keyBrokerContract, type KeyBrokerFixture } from './key-broker.contract.js';
/** KeyProvider: the factory gets the one KEK it may reach and returns a provider and one whose endpoint does not answer. */
export { keyProviderContract, samplePrivOpts, wrapPrivOpts, type HeldKey, type KeyProviderFixture } from './key-provider.contract.js';
/** KeyUnwrapper: the factory (called once per suite) returns the unwrapper, held and other keys, and how to wrap for and tamper with its items. */
export { keyUnwrapperContract, type KeyUnwrapperFixture } from './key-unwrapper.contract.js';
/** LayerStore: the factory returns an empty store. */
export { layerStoreContract, type LayerStoreFixture } from './layer-store.contract.js';
/** MetadataStore: the factory returns an empty store and a way to open it again. */
export { metadataStoreContract, type MetadataStoreFixture } from './metadata-store.contract.js';
/** ResourceLoader: the factory gets the kbs:// resources to hold and returns a loader serving them and one whose broker does not answer. */
export { resourceLoaderContract, MAX_RESOURCE_BYTES, type ResourceLoaderFixture } from './resource-loader.contract.js';
/** SimpleSignatureSource: the factory (called once per suite) returns a source, how to store signatures where it reads, and a source over an unreadable store. */
export { signatureSourceContract, MAX_SIMPLE_SIGNATURES, MAX_SIMPLE_SIGNATURE_BYTES, type SignatureSourceFixture } from './signature-source.contract.js';
/** SimpleSigningVerifier: the factory (called once per suite) returns the verifier, a signer's keyring and fingerprint, another keyring, and how to sign. */
export { simpleSigningPayload, simpleSigningVerifierContract, type SimpleSigningVerifierFixture } from './simple-signing-verifier.contract.js';
/** SigstoreVerifier: the factory (called once per suite) returns the verifier, signer and Rekor public keys (and others), how to sign as cosign, and keyless material (CA, log, keyless `.sig` layers, bundles). */
export { cosignPayload, sigstoreVerifierContract, type KeylessSigstoreFixture, type SigstoreVerifierFixture } from './sigstore-verifier.contract.js';
/** Snapshotter, the records part: the factory returns a snapshotter, a layer store and a scratch directory. */
export { snapshotterRecordContract, type SnapshotterRecordFixture } from './snapshotter-record.contract.js';
/** Snapshotter, union semantics on disk: the factory returns a snapshotter, a layer store, a scratch directory, and optionally how to read a stored layer's file. */
export { snapshotterContract, type RefusableFeature, type SnapshotterFixture } from './snapshotter.contract.js';
