import { ContainerModule } from 'inversify';
import type { Logger } from '../../../ports/observability/logger.js';
import { FsLayerStore } from '../../outbound/layer-store/fs-layer-store.js';
import { CopySnapshotter } from '../../outbound/snapshot/copy-snapshotter.js';
import { LocalBundleDirectory } from '../../outbound/snapshot/local-bundle-directory.js';
import { OverlaySnapshotter } from '../../outbound/snapshot/overlay-snapshotter.js';
import { FsMetadataStore } from '../../outbound/store/fs-metadata-store.js';
import { BundleDirectoryToken, LayerStoreToken, LoggerToken, MetadataStoreToken, SnapshottersToken } from '../port-tokens.js';

/** The store under work_dir: unpacked layers and metadata.json. */
export function fsStore(workDir: string): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(LayerStoreToken).toDynamicValue((ctx) => new FsLayerStore(workDir, { logger: ctx.get<Logger>(LoggerToken) })).inSingletonScope();
    bind(MetadataStoreToken).toConstantValue(new FsMetadataStore(workDir));
  });
}

/** Bundles on the local filesystem, their rootfs by overlay mount (preferred where it works) or by copy. */
export function fsBundles(workDir: string): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(SnapshottersToken).toConstantValue([new OverlaySnapshotter(workDir), new CopySnapshotter()]);
    bind(BundleDirectoryToken).toConstantValue(new LocalBundleDirectory());
  });
}
