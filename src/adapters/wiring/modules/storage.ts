import { ContainerModule } from 'inversify';
import type { Logger } from '../../../ports/observability/logger.js';
import { FsLayerStore } from '../../outbound/layer-store/fs-layer-store.js';
import { CopySnapshotter } from '../../outbound/snapshot/copy-snapshotter.js';
import { LocalBundleDirectory } from '../../outbound/snapshot/local-bundle-directory.js';
import { OverlaySnapshotter } from '../../outbound/snapshot/overlay-snapshotter.js';
import { FsMetadataStore } from '../../outbound/store/fs-metadata-store.js';
import { ErofsSnapshotter } from '../../outbound/snapshot/erofs-snapshotter.js';
import type { ErofsSettings } from '../settings-file.js';
import { BundleDirectoryToken, LayerStoreToken, LoggerToken, MetadataStoreToken, SnapshottersToken } from '../port-tokens.js';

/** The store under work_dir: unpacked layers and metadata.json. */
export function fsStore(workDir: string, erofs: ErofsSettings = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    const images = { ...(erofs.compression ? { compression: erofs.compression } : {}), ...(erofs.verity !== undefined ? { verity: erofs.verity } : {}) };
    bind(LayerStoreToken).toDynamicValue((ctx) => new FsLayerStore(workDir, { logger: ctx.get<Logger>(LoggerToken), erofs: images })).inSingletonScope();
    bind(MetadataStoreToken).toConstantValue(new FsMetadataStore(workDir));
  });
}

/**
 * Bundles on the local filesystem, their rootfs by overlay mount (preferred
 * where it works) or by copy; the erofs snapshotter, last, is taken only when
 * asked for by name.
 */
export function fsBundles(workDir: string, erofs: ErofsSettings = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    const erofsCheck = erofs.check ?? 'none';
    bind(SnapshottersToken).toConstantValue([new OverlaySnapshotter(workDir, { erofsCheck }), new CopySnapshotter(), new ErofsSnapshotter(workDir, { erofsCheck })]);
    bind(BundleDirectoryToken).toConstantValue(new LocalBundleDirectory());
  });
}
