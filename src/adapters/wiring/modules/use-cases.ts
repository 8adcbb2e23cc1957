import { randomUUID } from 'node:crypto';
import { ContainerModule } from 'inversify';
import { LayerKeys } from '../../../domain/encryption/layer-keys.js';
import { Platform } from '../../../domain/image/platform.js';
import type { UnpackLimits } from '../../../domain/layer/unpack-limits.js';
import { ImagePolicy } from '../../../domain/policy/image-policy.js';
import { PolicyGate } from '../../../domain/policy/policy-gate.js';
import { PullImage } from '../../../domain/pull/pull-image.js';
import type { RegistriesConf } from '../../../domain/registry/registries-conf.js';
import { ManageImages } from '../../../domain/store/manage-images.js';
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
import { JweKeyUnwrapper } from '../../outbound/keys/unwrappers/jwe-unwrapper.js';
import { PgpKeyUnwrapper } from '../../outbound/keys/unwrappers/pgp-unwrapper.js';
import { Pkcs7KeyUnwrapper } from '../../outbound/keys/unwrappers/pkcs7-unwrapper.js';
import { processAlive } from '../../outbound/process-alive.js';
import { BrokerResourceLoader } from '../../outbound/resources/resource-loader.js';
import { OpenPgpSimpleSigningVerifier } from '../../outbound/signatures/openpgp-verifier.js';
import { NodeSigstoreVerifier } from '../../outbound/signatures/sigstore-verifier.js';
import type { Settings } from '../settings-file.js';
import { keyProvidersFor } from '../keys.js';
import { ConfiguredLookaside, policyLoader } from '../signatures.js';
import { Tokens } from '../tokens.js';
import { AttestationAgentToken, BundleDirectoryToken, DecompressorToken, ImageSourceFactoryToken, KeyBrokerToken, KeyProvidersToken, KeyUnwrapperToken, LayerStoreToken, LoggerToken, MetadataStoreToken, ResourceLoaderToken, SigstoreVerifierToken, SimpleSignatureSourceToken, SimpleSigningVerifierToken, SnapshottersToken } from '../port-tokens.js';

/**
 * The use cases, and what they are made of, every part resolved from the
 * container at first use: rebinding a port before then reaches each of its
 * consumers. Nothing here names a backend; the profile's modules do.
 */
export function useCases(): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(Tokens.Clock).toConstantValue(() => new Date());
    bind(Tokens.Ids).toConstantValue(() => randomUUID());
    bind(Tokens.LayerKeys).toDynamicValue((ctx) => new LayerKeys(
      ctx.getAll<KeyUnwrapper>(KeyUnwrapperToken),
      ctx.get<ReadonlyMap<string, KeyProvider>>(KeyProvidersToken),
      ctx.get<Logger>(LoggerToken),
    )).inSingletonScope();
    bind(Tokens.PolicyGate).toDynamicValue((ctx) => {
      const settings = ctx.get<Settings>(Tokens.Settings);
      const resources = ctx.get<ResourceLoader>(ResourceLoaderToken);
      const simpleSignatures = ctx.get<SimpleSignatureSource>(SimpleSignatureSourceToken);
      return new PolicyGate(
        policyLoader(settings, resources),
        new ImagePolicy({
          resources,
          simpleSignatures,
          simpleVerifier: ctx.get<SimpleSigningVerifier>(SimpleSigningVerifierToken),
          sigstoreVerifier: ctx.get<SigstoreVerifier>(SigstoreVerifierToken),
        }),
        settings.admission,
        // registries.d's use-sigstore-attachments, from whatever adapter holds registries.d.
        async (physical, signal) => simpleSignatures.sigstoreAttachments?.(physical, signal),
      );
    }).inSingletonScope();
    bind(Tokens.PullImage).toDynamicValue((ctx) => {
      const settings = ctx.get<Settings>(Tokens.Settings);
      return new PullImage(
        {
          sources: ctx.getAll<ImageSourceFactory>(ImageSourceFactoryToken),
          decompressor: ctx.get<Decompressor>(DecompressorToken),
          layers: ctx.get<LayerStore>(LayerStoreToken),
          snapshotters: ctx.get<Snapshotter[]>(SnapshottersToken),
          bundles: ctx.get<BundleDirectory>(BundleDirectoryToken),
          metadata: ctx.get<MetadataStore>(MetadataStoreToken),
          logger: ctx.get<Logger>(LoggerToken),
          clock: ctx.get<() => Date>(Tokens.Clock),
          ids: ctx.get<() => string>(Tokens.Ids),
          keys: ctx.get<LayerKeys>(Tokens.LayerKeys),
          policy: ctx.get<PolicyGate>(Tokens.PolicyGate),
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
      bundles: ctx.get<BundleDirectory>(BundleDirectoryToken),
      logger: ctx.get<Logger>(LoggerToken),
      clock: ctx.get<() => Date>(Tokens.Clock),
      isOwnerAlive: processAlive,
    })).inSingletonScope();
    // Local keys are the same everywhere; brokers and providers are the profile's.
    bind(KeyUnwrapperToken).toConstantValue(new JweKeyUnwrapper());
    bind(KeyUnwrapperToken).toConstantValue(new Pkcs7KeyUnwrapper());
    bind(KeyUnwrapperToken).toConstantValue(new PgpKeyUnwrapper());
    bind(KeyProvidersToken).toDynamicValue((ctx) => keyProvidersFor(ctx.get<Settings>(Tokens.Settings), ctx.get<KeyBroker>(KeyBrokerToken))).inSingletonScope();
    // Policies, registries.conf and their keys may live in the key broker, like layer keys.
    bind(ResourceLoaderToken).toDynamicValue((ctx) => new BrokerResourceLoader(ctx.get<KeyBroker>(KeyBrokerToken))).inSingletonScope();
    bind(SimpleSigningVerifierToken).toConstantValue(new OpenPgpSimpleSigningVerifier());
    bind(SigstoreVerifierToken).toConstantValue(new NodeSigstoreVerifier());
    bind(SimpleSignatureSourceToken).toDynamicValue((ctx) =>
      new ConfiguredLookaside(ctx.get<Settings>(Tokens.Settings), ctx.get<readonly string[]>(Tokens.CaPems), ctx.get<Logger>(LoggerToken))).inSingletonScope();
  });
}
