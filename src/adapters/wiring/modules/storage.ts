import { ContainerModule } from 'inversify';
import { LayerStoreToken } from '../../../ports/layer/layer-store.js';
import { LoggerToken, type Logger } from '../../../ports/observability/logger.js';
import { BundleFsToken } from '../../../ports/snapshot/bundle-fs.js';
import { SnapshottersToken } from '../../../ports/snapshot/snapshotter.js';
import { MetadataStoreToken } from '../../../ports/store/metadata-store.js';
import { FsLayerStore } from '../../outbound/layer-store/fs-layer-store.js';
import { CopySnapshotter } from '../../outbound/snapshot/copy-snapshotter.js';
import { FsBundleFs } from '../../outbound/snapshot/fs-bundle.js';
import { OverlaySnapshotter } from '../../outbound/snapshot/overlay-snapshotter.js';
import { FsMetadataStore } from '../../outbound/store/fs-metadata-store.js';

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
    bind(BundleFsToken).toConstantValue(new FsBundleFs());
  });
}
