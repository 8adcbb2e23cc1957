import 'reflect-metadata';
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
import type { Settings } from './image-config-file.js';
import { Tokens } from './tokens.js';

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
        },
        {
          hostPlatform: settings.platform ? Platform.parse(settings.platform) : Platform.fromNode(process.platform, process.arch),
          defaultSnapshotter: settings.snapshotter,
          maxConcurrentLayers: settings.maxConcurrentLayers,
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
    })).inSingletonScope();
  });
}

/** `standalone`: the CLI on a host or guest, local files and keys, registries over the network. */
function standaloneProfile(context: RuntimeContext): ContainerModule {
  const { settings, logger } = context;
  return new ContainerModule(({ bind }) => {
    bind(Tokens.Settings).toConstantValue(settings);
    bind(LoggerToken).toConstantValue(logger);
    bind(ImageSourceFactoryToken).toConstantValue(new RegistrySourceFactory({
      insecureRegistries: settings.insecureRegistries,
      caFiles: settings.caFiles,
      caPems: settings.caPems,
      certsDirs: settings.certsDirs,
      authFiles: settings.authFiles,
      credentials: context.credentials,
      logger,
    }));
    bind(ImageSourceFactoryToken).toConstantValue(new OciLayoutSourceFactory());
    // igzip/zstd processes when the machine has them (measured faster, see bench/NOTES.md); node's codecs otherwise.
    bind(DecompressorToken).toConstantValue(settings.decompressor === 'native'
      ? new NativeDecompressor()
      : new SubprocessDecompressor(findSubprocessCodecs(), new NativeDecompressor()));
    bind(LayerStoreToken).toConstantValue(new FsLayerStore(settings.workDir, { logger }));
    bind(SnapshottersToken).toConstantValue([new OverlaySnapshotter(settings.workDir), new CopySnapshotter()]);
    bind(BundleFsToken).toConstantValue(new FsBundleFs());
    bind(MetadataStoreToken).toConstantValue(new FsMetadataStore(settings.workDir));
  });
}

export const PROFILES: Readonly<Record<string, (c: RuntimeContext) => ContainerModule>> = {
  standalone: standaloneProfile,
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
