import { randomUUID } from 'node:crypto';
import { Container, ContainerModule } from 'inversify';
import { ConfigFileError } from '../../domain/errors.js';
import { Platform } from '../../domain/image/platform.js';
import { PullImage } from '../../domain/pull/pull-image.js';
import { ManageImages } from '../../domain/store/manage-images.js';
import { ImageSourceFactoryToken, type Credentials, type ImageSourceFactory } from '../../ports/image-source/image-source.js';
import { DecompressorToken, type Decompressor } from '../../ports/layer/decompressor.js';
import { LayerStoreToken, type LayerStore } from '../../ports/layer/layer-store.js';
import { LoggerToken, type Logger } from '../../ports/observability/logger.js';
import { BundleFsToken, type BundleFs } from '../../ports/snapshot/bundle-fs.js';
import { SnapshottersToken, type Snapshotter } from '../../ports/snapshot/snapshotter.js';
import { MetadataStoreToken, type MetadataStore } from '../../ports/store/metadata-store.js';
import { NativeDecompressor } from '../outbound/decompress/native-decompressor.js';
import { SubprocessDecompressor, findSubprocessCodecs } from '../outbound/decompress/subprocess-decompressor.js';
import { FsLayerStore } from '../outbound/layer-store/fs-layer-store.js';
import { OciLayoutSourceFactory } from '../outbound/oci-layout/oci-layout-source.js';
import { RegistrySourceFactory } from '../outbound/registry/registry-source.js';
import { CopySnapshotter } from '../outbound/snapshot/copy-snapshotter.js';
import { FsBundleFs } from '../outbound/snapshot/fs-bundle.js';
import { OverlaySnapshotter } from '../outbound/snapshot/overlay-snapshotter.js';
import { FsMetadataStore } from '../outbound/store/fs-metadata-store.js';
import { LayerKeys } from '../../domain/encryption/layer-keys.js';
import { AttestationAgentToken, type AttestationAgent } from '../../ports/keys/attestation-agent.js';
import { KeyBrokerToken, type KeyBroker } from '../../ports/keys/key-broker.js';
import { KeyProvidersToken, type KeyProvider } from '../../ports/keys/key-provider.js';
import { KeyUnwrapperToken, type KeyUnwrapper } from '../../ports/keys/key-unwrapper.js';
import { AA_DEFAULT_TTRPC } from '../outbound/keys/aa-client.js';
import { CDH_DEFAULT_TTRPC } from '../outbound/keys/cdh-key-broker.js';
import { JweKeyUnwrapper } from '../outbound/keys/jwe-unwrapper.js';
import { OFFLINE_FS_DEFAULT_FILES } from '../outbound/keys/offline-fs-key-broker.js';
import { PgpKeyUnwrapper } from '../outbound/keys/pgp-unwrapper.js';
import { Pkcs7KeyUnwrapper } from '../outbound/keys/pkcs7-unwrapper.js';
import type { KeyBrokerSettings, Settings } from './image-config-file.js';
import { attestationAgentFor, caPems, keyBrokerFor, keyProvidersFor, NoKeyBroker } from './keys.js';
import type { RegistriesConf } from '../../domain/registry/registries-conf.js';
import { processAlive } from '../outbound/process-alive.js';
import { ConfiguredLookaside, policyLoader, registriesLoader } from './signatures.js';
import { ImagePolicy } from '../../domain/policy/image-policy.js';
import { PolicyGate } from '../../domain/policy/policy-gate.js';
import { ResourceLoaderToken, type ResourceLoader } from '../../ports/resources/resource-loader.js';
import { SimpleSignatureSourceToken, type SimpleSignatureSource } from '../../ports/signatures/signature-source.js';
import {
  SigstoreVerifierToken,
  SimpleSigningVerifierToken,
  type SigstoreVerifier,
  type SimpleSigningVerifier,
} from '../../ports/signatures/signature-verifier.js';
import { BrokerResourceLoader } from '../outbound/resources/resource-loader.js';
import { NodeSigstoreVerifier } from '../outbound/signatures/sigstore-verifier.js';
import { OpenPgpSimpleSigningVerifier } from '../outbound/signatures/openpgp-verifier.js';
import { Tokens } from './tokens.js';
import { defaultLimits, resolveLimits } from './limits.js';
import type { UnpackLimits } from '../../domain/layer/unpack-limits.js';
import { totalmem } from 'node:os';

export interface RuntimeContext {
  readonly settings: Settings;
  readonly logger: Logger;
  /** Default credentials, e.g. from --creds. Never logged. */
  readonly credentials?: Credentials | undefined;
}

/**
 * Bindings every profile shares: the use cases, which see only ports.
 * Swapping an adapter is a binding change in a profile module, nothing more.
 */
function useCases(): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(Tokens.Clock).toConstantValue(() => new Date());
    bind(Tokens.Ids).toConstantValue(() => randomUUID());
    bind(Tokens.PullImage).toDynamicValue((ctx) => {
      const settings = ctx.get<Settings>(Tokens.Settings);
      const snapshotters = ctx.get<Snapshotter[]>(SnapshottersToken);
      return new PullImage(
        {
          sources: ctx.getAll<ImageSourceFactory>(ImageSourceFactoryToken),
          decompressor: ctx.get<Decompressor>(DecompressorToken),
          layers: ctx.get<LayerStore>(LayerStoreToken),
          snapshotters,
          bundles: ctx.get<BundleFs>(BundleFsToken),
          metadata: ctx.get<MetadataStore>(MetadataStoreToken),
          logger: ctx.get<Logger>(LoggerToken),
          clock: ctx.get<() => Date>(Tokens.Clock),
          ids: ctx.get<() => string>(Tokens.Ids),
          keys: new LayerKeys(
            ctx.getAll<KeyUnwrapper>(KeyUnwrapperToken),
            ctx.get<ReadonlyMap<string, KeyProvider>>(KeyProvidersToken),
            ctx.get<Logger>(LoggerToken),
          ),
          policy: new PolicyGate(
            policyLoader(settings, ctx.get<ResourceLoader>(ResourceLoaderToken)),
            new ImagePolicy({
              resources: ctx.get<ResourceLoader>(ResourceLoaderToken),
              simpleSignatures: ctx.get<SimpleSignatureSource>(SimpleSignatureSourceToken),
              simpleVerifier: ctx.get<SimpleSigningVerifier>(SimpleSigningVerifierToken),
              sigstoreVerifier: ctx.get<SigstoreVerifier>(SigstoreVerifierToken),
            }),
            settings.admission,
          ),
          attestation: ctx.get<AttestationAgent>(AttestationAgentToken, { optional: true }),
          registries: ctx.get<() => Promise<RegistriesConf | undefined>>(Tokens.Registries, { optional: true }),
          owner: process.pid,
          isOwnerAlive: processAlive,
        },
        {
          hostPlatform: settings.platform ? Platform.parse(settings.platform) : Platform.fromNode(process.platform, process.arch),
          defaultSnapshotter: settings.snapshotter,
          maxConcurrentLayers: settings.maxConcurrentLayers,
          maxConcurrentDownloads: settings.maxConcurrentDownloads,
          limits: ctx.get<UnpackLimits>(Tokens.Limits),
        },
      );
    }).inSingletonScope();
    bind(Tokens.ManageImages).toDynamicValue((ctx) => new ManageImages({
      metadata: ctx.get<MetadataStore>(MetadataStoreToken),
      layers: ctx.get<LayerStore>(LayerStoreToken),
      snapshotters: ctx.get<Snapshotter[]>(SnapshottersToken),
      bundles: ctx.get<BundleFs>(BundleFsToken),
      logger: ctx.get<Logger>(LoggerToken),
      clock: ctx.get<() => Date>(Tokens.Clock),
      isOwnerAlive: processAlive,
    })).inSingletonScope();
    // Local keys are the same everywhere; brokers and providers are the profile's.
    bind(KeyUnwrapperToken).toConstantValue(new JweKeyUnwrapper());
    bind(KeyUnwrapperToken).toConstantValue(new Pkcs7KeyUnwrapper());
    bind(KeyUnwrapperToken).toConstantValue(new PgpKeyUnwrapper());
    bind(KeyProvidersToken).toDynamicValue((ctx) => keyProvidersFor(ctx.get<Settings>(Tokens.Settings), ctx.get<KeyBroker>(KeyBrokerToken))).inSingletonScope();
    // Policies and their keys may live in the key broker, like layer keys.
    bind(ResourceLoaderToken).toDynamicValue((ctx) => new BrokerResourceLoader(ctx.get<KeyBroker>(KeyBrokerToken))).inSingletonScope();
    bind(SimpleSigningVerifierToken).toConstantValue(new OpenPgpSimpleSigningVerifier());
    bind(SigstoreVerifierToken).toConstantValue(new NodeSigstoreVerifier());
    bind(SimpleSignatureSourceToken).toDynamicValue((ctx) => {
      const settings = ctx.get<Settings>(Tokens.Settings);
      return new ConfiguredLookaside(settings, caPems(settings), ctx.get<Logger>(LoggerToken));
    }).inSingletonScope();
  });
}

/**
 * Where `kbs://` keys come from, per profile. The config file's key_broker
 * wins; a profile only supplies the default its deployment implies.
 */
interface KeyProfile {
  readonly broker?: KeyBrokerSettings | undefined;
  readonly attestationAgent?: Settings['attestationAgent'];
  /** Refuses to start without a broker of this kind. */
  readonly requires?: KeyBrokerSettings['kind'] | undefined;
  /** The store lives in a guest's memory: unpack limits default to a share of it. */
  readonly guest?: boolean | undefined;
}

/** Everything a profile binds: the image sources, the store, the snapshotters, the keys. */
function baseProfile(context: RuntimeContext, keys: KeyProfile): ContainerModule {
  const logger = context.logger;
  const settings: Settings = {
    ...context.settings,
    keyBroker: context.settings.keyBroker ?? keys.broker,
    attestationAgent: context.settings.attestationAgent ?? keys.attestationAgent,
  };
  if (keys.requires && settings.keyBroker?.kind !== keys.requires) {
    throw new ConfigFileError(`profile ${settings.profile} needs key_broker {"kind": "${keys.requires}", ...} in the config file`);
  }
  const broker = settings.keyBroker ? keyBrokerFor(settings.keyBroker, settings, logger) : new NoKeyBroker();
  return new ContainerModule(({ bind }) => {
    bind(KeyBrokerToken).toConstantValue(broker);
    const aa: AttestationAgent | undefined = attestationAgentFor(settings);
    if (aa) bind(AttestationAgentToken).toConstantValue(aa);
    bind(Tokens.Settings).toConstantValue(settings);
    bind(Tokens.Limits).toConstantValue(resolveLimits(settings.limits, defaultLimits(keys.guest === true, totalmem())));
    bind(LoggerToken).toConstantValue(logger);
    const registries = registriesLoader(settings, new BrokerResourceLoader(broker), logger);
    if (registries) bind(Tokens.Registries).toConstantValue(registries);
    bind(ImageSourceFactoryToken).toConstantValue(new RegistrySourceFactory({
      insecureRegistries: settings.insecureRegistries,
      plainHttpRegistries: settings.plainHttpRegistries,
      caFiles: settings.caFiles,
      caPems: settings.caPems,
      certsDirs: settings.certsDirs,
      authFiles: settings.authFiles,
      credentials: context.credentials,
      logger,
      registries,
      proxy: settings.proxy,
      timeouts: settings.timeouts,
    }));
    bind(ImageSourceFactoryToken).toConstantValue(new OciLayoutSourceFactory());
    bind(DecompressorToken).toConstantValue(decompressorFor(settings.decompressor));
    bind(LayerStoreToken).toConstantValue(new FsLayerStore(settings.workDir, { logger }));
    bind(SnapshottersToken).toConstantValue([new OverlaySnapshotter(settings.workDir), new CopySnapshotter()]);
    bind(BundleFsToken).toConstantValue(new FsBundleFs());
    bind(MetadataStoreToken).toConstantValue(new FsMetadataStore(settings.workDir));
  });
}

/**
 * gzip: ISA-L in process when the addon was built with it; else an igzip
 * process when the machine has one (4x node's zlib); else node's zlib. zstd:
 * zstd-napi in process, which beat a zstd process once the pipe's copies
 * were counted (bench/NOTES.md). Nothing is probed until a layer needs it.
 */
function decompressorFor(setting: 'auto' | 'native'): Decompressor {
  const native = new NativeDecompressor();
  if (setting === 'native') return native;
  return new SubprocessDecompressor(() => (native.hasIsal() ? {} : { gzip: findSubprocessCodecs().gzip }), native);
}

export const PROFILES: Readonly<Record<string, (c: RuntimeContext) => ContainerModule>> = {
  /** The CLI on a host or guest: local keys, and a key broker only if the config names one. */
  standalone: (c) => baseProfile(c, {}),
  /** In a Kata guest next to the Confidential Data Hub (cdh-guest): keys through CDH, measurements to the AA, both over ttrpc. */
  'cdh-guest': (c) => baseProfile(c, {
    guest: true,
    broker: { kind: 'cdh', address: CDH_DEFAULT_TTRPC, transport: 'ttrpc' },
    attestationAgent: { address: AA_DEFAULT_TTRPC, transport: 'ttrpc' },
  }),
  /** Straight to a Trustee KBS, attesting through the guest's AA (or the sample attester when asked). */
  'kbs-direct': (c) => baseProfile(c, { requires: 'kbs', guest: true }),
  /** No network for keys: the offline-fs KBC's JSON files. */
  offline: (c) => baseProfile(c, { guest: true, broker: { kind: 'offline-fs', files: OFFLINE_FS_DEFAULT_FILES } }),
};

export async function buildContainer(context: RuntimeContext): Promise<Container> {
  const profile = PROFILES[context.settings.profile];
  if (!profile) {
    throw new ConfigFileError(`unknown profile ${context.settings.profile}; known: ${Object.keys(PROFILES).join(', ')}`);
  }
  const container = new Container({ defaultScope: 'Singleton' });
  await container.load(useCases(), profile(context));
  return container;
}
