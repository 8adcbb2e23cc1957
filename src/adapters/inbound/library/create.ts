import type { ContainerModule } from 'inversify';
import { ConfigFileError } from '../../../domain/errors.js';
import { isObject } from '../../../domain/image/json-fields.js';
import type { ImageSourceFactory } from '../../../ports/image-source/image-source.js';
import type { AttestationAgent } from '../../../ports/keys/attestation-agent.js';
import type { KeyBroker } from '../../../ports/keys/key-broker.js';
import type { KeyProvider } from '../../../ports/keys/key-provider.js';
import type { KeyUnwrapper } from '../../../ports/keys/key-unwrapper.js';
import type { Decompressor } from '../../../ports/layer/decompressor.js';
import type { LayerStore } from '../../../ports/layer/layer-store.js';
import type { Logger } from '../../../ports/observability/logger.js';
import type { ResourceLoader } from '../../../ports/resources/resource-loader.js';
import type { SimpleSignatureSource } from '../../../ports/signatures/signature-source.js';
import type { SigstoreVerifier, SimpleSigningVerifier } from '../../../ports/signatures/signature-verifier.js';
import type { BundleDirectory } from '../../../ports/snapshot/bundle-directory.js';
import type { Snapshotter } from '../../../ports/snapshot/snapshotter.js';
import type { MetadataStore } from '../../../ports/store/metadata-store.js';
import type { Override } from '../../wiring/container.js';
import { loadConfigFile, parseConfig } from '../../wiring/settings-file.js';
import { resolveSettings } from '../../wiring/settings.js';
import { openImageService, type ImageService } from './image-service.js';
import { AttestationAgentToken, BundleDirectoryToken, DecompressorToken, ImageSourceFactoryToken, KeyBrokerToken, KeyProvidersToken, KeyUnwrapperToken, LayerStoreToken, LoggerToken, MetadataStoreToken, ResourceLoaderToken, SigstoreVerifierToken, SimpleSignatureSourceToken, SimpleSigningVerifierToken, SnapshottersToken } from '../../wiring/port-tokens.js';
import { silentLogger } from '../../outbound/silent-logger.js';

/** Your own adapter for any port: each one reaches every consumer of that port. */
export interface Adapters {
  readonly keyBroker?: KeyBroker | undefined;
  readonly attestationAgent?: AttestationAgent | undefined;
  /** ocicrypt key providers by name (`provider.<name>` annotations); replaces the configured set. */
  readonly keyProviders?: ReadonlyMap<string, KeyProvider> | undefined;
  /** Replaces the JWE, PKCS7 and PGP unwrappers. */
  readonly keyUnwrappers?: readonly KeyUnwrapper[] | undefined;
  /** Replaces the registry and OCI-layout sources. */
  readonly imageSources?: readonly ImageSourceFactory[] | undefined;
  readonly decompressor?: Decompressor | undefined;
  readonly layerStore?: LayerStore | undefined;
  /** In order of preference: the first available one is the default. */
  readonly snapshotters?: readonly Snapshotter[] | undefined;
  readonly metadataStore?: MetadataStore | undefined;
  readonly bundleDirectory?: BundleDirectory | undefined;
  readonly simpleSignatureSource?: SimpleSignatureSource | undefined;
  readonly simpleSigningVerifier?: SimpleSigningVerifier | undefined;
  readonly sigstoreVerifier?: SigstoreVerifier | undefined;
  /** Where policies, registries.conf and their keys are read from (paths, file:// and kbs:// URIs). */
  readonly resourceLoader?: ResourceLoader | undefined;
  /** Events and warnings; nothing is logged without one. Never given secrets. */
  readonly logger?: Logger | undefined;
}

export interface ImageServiceOptions {
  /** The config file's keys, as an object (image-rs names: work_dir, profile, key_broker, ...). */
  readonly config?: Readonly<Record<string, unknown>> | undefined;
  /** Or the config file itself. */
  readonly configFile?: string | undefined;
  readonly adapters?: Adapters | undefined;
  /** More inversify modules, loaded after the profile's, for wiring beyond `adapters`. */
  readonly modules?: readonly ContainerModule[] | undefined;
}

/** Which token each adapter binds; list-valued ports bind each element. */
const SINGLE: readonly (readonly [keyof Adapters, symbol])[] = [
  ['keyBroker', KeyBrokerToken], ['attestationAgent', AttestationAgentToken], ['keyProviders', KeyProvidersToken],
  ['decompressor', DecompressorToken], ['layerStore', LayerStoreToken], ['snapshotters', SnapshottersToken],
  ['metadataStore', MetadataStoreToken], ['bundleDirectory', BundleDirectoryToken], ['simpleSignatureSource', SimpleSignatureSourceToken],
  ['simpleSigningVerifier', SimpleSigningVerifierToken], ['sigstoreVerifier', SigstoreVerifierToken],
  ['resourceLoader', ResourceLoaderToken], ['logger', LoggerToken],
];
const MULTI: readonly (readonly [keyof Adapters, symbol])[] = [['keyUnwrappers', KeyUnwrapperToken], ['imageSources', ImageSourceFactoryToken]];

/**
 * image-ts as a library. The config and adapters decide everything the CLI's
 * flags and config file would; every method rejects with an ImageTsError.
 */
export async function createImageService(options: ImageServiceOptions = {}): Promise<ImageService> {
  const adapters = options.adapters ?? {};
  const logger = adapters.logger ?? silentLogger;
  const warn = (message: string): void => logger.log('warn', 'config', { message });
  if (options.config !== undefined && options.configFile !== undefined) throw new ConfigFileError('give config or configFile, not both');
  if (options.config !== undefined && !isObject(options.config)) throw new ConfigFileError('config must be an object of the config file\'s keys');
  const file = options.configFile !== undefined ? await loadConfigFile(options.configFile, warn)
    : options.config !== undefined ? parseConfig(options.config, 'config', warn) : {};
  const overrides: Override[] = [];
  for (const [key, token] of SINGLE) if (adapters[key] !== undefined) overrides.push({ token, values: [adapters[key]] });
  for (const [key, token] of MULTI) {
    const list = adapters[key] as readonly unknown[] | undefined;
    if (list !== undefined) overrides.push({ token, values: list });
  }
  return openImageService({ settings: resolveSettings(file), logger, overrides, modules: options.modules });
}
