/**
 * Every adapter image-ts ships, to compose your own deployment from (pass
 * instances in createImageService's `adapters`), and the container modules
 * its profiles are made of (pass them in `modules`).
 */
// Image sources and transport
export { RegistrySourceFactory } from './adapters/outbound/registry/registry-source.js';
export { OciLayoutSourceFactory } from './adapters/outbound/oci-layout/oci-layout-source.js';
// Decompression
export { NativeDecompressor } from './adapters/outbound/decompress/native-decompressor.js';
export { SubprocessDecompressor, findSubprocessCodecs } from './adapters/outbound/decompress/subprocess-decompressor.js';
// Store, snapshots, bundles
export { FsLayerStore, type FsLayerStoreOptions } from './adapters/outbound/layer-store/fs-layer-store.js';
export { FsMetadataStore } from './adapters/outbound/store/fs-metadata-store.js';
export { OverlaySnapshotter, type OverlaySnapshotterOptions } from './adapters/outbound/snapshot/overlay-snapshotter.js';
export { ErofsSnapshotter } from './adapters/outbound/snapshot/erofs-snapshotter.js';
export { CopySnapshotter } from './adapters/outbound/snapshot/copy-snapshotter.js';
export { LocalBundleDirectory } from './adapters/outbound/snapshot/local-bundle-directory.js';
// Keys: brokers, attestation, providers, unwrappers
export { KbsKeyBroker } from './adapters/outbound/keys/brokers/kbs-key-broker.js';
export { CdhKeyBroker } from './adapters/outbound/keys/brokers/cdh-key-broker.js';
export { OfflineFsKeyBroker } from './adapters/outbound/keys/brokers/offline-fs-key-broker.js';
export { NoKeyBroker } from './adapters/wiring/keys.js';
export { AttestationAgentClient } from './adapters/outbound/keys/attestation/aa-client.js';
export { SampleAttester } from './adapters/outbound/keys/attestation/sample-attester.js';
export { CmdKeyProvider } from './adapters/outbound/keys/providers/cmd-key-provider.js';
export { GrpcKeyProvider, TtrpcKeyProvider } from './adapters/outbound/keys/providers/rpc-key-provider.js';
export { JweKeyUnwrapper } from './adapters/outbound/keys/unwrappers/jwe-unwrapper.js';
export { Pkcs7KeyUnwrapper } from './adapters/outbound/keys/unwrappers/pkcs7-unwrapper.js';
export { PgpKeyUnwrapper } from './adapters/outbound/keys/unwrappers/pgp-unwrapper.js';
export { CocoKeyProvider } from './domain/encryption/coco-key-provider.js';
// Signatures and resources
export { OpenPgpSimpleSigningVerifier } from './adapters/outbound/signatures/openpgp-verifier.js';
export { NodeSigstoreVerifier } from './adapters/outbound/signatures/sigstore-verifier.js';
export { LookasideSignatureSource } from './adapters/outbound/signatures/lookaside-source.js';
export { BrokerResourceLoader } from './adapters/outbound/resources/resource-loader.js';
// RPC clients, for brokers and agents reached over ttrpc or gRPC
export { TtrpcClient } from './adapters/outbound/rpc/ttrpc.js';
export { GrpcTransport } from './adapters/outbound/rpc/grpc.js';
export type { RpcTransport, RpcCallOptions } from './adapters/outbound/rpc/rpc.js';
// Container modules, one per backend (what a profile is a list of)
export { aaGrpc, aaTtrpc, sampleAttestationAgent } from './adapters/wiring/modules/attestation-agents.js';
export { cdhKeyBroker, kbsKeyBroker, noKeyBroker, offlineFsKeyBroker } from './adapters/wiring/modules/key-brokers.js';
export { autoDecompressor, nativeDecompressor, ociLayoutSource, registrySource } from './adapters/wiring/modules/sources.js';
export { fsBundles, fsStore } from './adapters/wiring/modules/storage.js';
