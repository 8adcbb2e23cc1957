/**
 * image-ts, the library. Everything a program that embeds it needs comes
 * from here: the service, its options and results, the error classes, and
 * the ports (interfaces and their tokens) that an adapter of yours
 * implements. Shipped adapters: `image-ts/adapters`; contract suites for
 * your own: `image-ts/contract-tests`.
 */
export { createImageService, type Adapters, type ImageServiceOptions } from './adapters/inbound/library/create.js';
export type { ImageService, PullOptions, PulledBundle, PulledImage, ServeOptions } from './adapters/inbound/library/image-service.js';
export type { ServeHandle } from './adapters/inbound/cli/serve.js';

export * from './domain/errors.js';

// Values the ports take and give.
export { ResourceUri } from './domain/encryption/resource-uri.js';
export { Digest } from './domain/image/digest.js';
export type { Descriptor } from './domain/image/descriptor.js';
export type { Reference } from './domain/image/reference.js';
export type { VerifyResult } from './domain/pull/pull-image.js';
export type { PolicyVerdict } from './domain/policy/image-policy.js';
export type { DecryptConfig } from './domain/encryption/decrypt-config.js';
export type { LayerEncryption } from './domain/encryption/layer-encryption.js';
export type { PrivateLayerOptions } from './domain/encryption/layer-options.js';
export type { Compression } from './domain/image/media-types.js';
export type { EntryLimits, UnpackLimits } from './domain/layer/unpack-limits.js';
export type { ImageTarget } from './domain/image/image-target.js';
export type { ListedImage, StoreDiskUsage, StoredBytes, LayerUsage } from './domain/store/manage-images.js';

// The ports: implement one, pass it in `adapters`, check it with the matching suite in image-ts/contract-tests.
export * from './ports/image-source/image-source.js';
export * from './ports/keys/attestation-agent.js';
export * from './ports/keys/key-broker.js';
export * from './ports/keys/key-provider.js';
export * from './ports/keys/key-unwrapper.js';
export * from './ports/layer/decompressor.js';
export * from './ports/layer/layer-store.js';
export * from './ports/observability/logger.js';
export * from './ports/observability/progress.js';
export * from './ports/resources/resource-loader.js';
export * from './ports/signatures/signature-source.js';
export * from './ports/signatures/signature-verifier.js';
export * from './ports/signatures/sigstore-bundle.js';
export * from './ports/signatures/sigstore-trust.js';
export * from './ports/snapshot/bundle-directory.js';
export * from './ports/snapshot/snapshotter.js';
export * from './ports/store/metadata-store.js';
export { emptyState } from './domain/store/empty-state.js';

/** The ports' tokens, and those of what the composition root binds beyond the ports, for `modules`. */
export * from './adapters/wiring/port-tokens.js';
export { Tokens } from './adapters/wiring/tokens.js';
