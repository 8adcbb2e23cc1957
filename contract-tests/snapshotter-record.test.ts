import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsLayerStore } from '../src/adapters/outbound/layer-store/fs-layer-store.js';
import { CopySnapshotter } from '../src/adapters/outbound/snapshot/copy-snapshotter.js';
import { ErofsSnapshotter } from '../src/adapters/outbound/snapshot/erofs-snapshotter.js';
import { OverlaySnapshotter } from '../src/adapters/outbound/snapshot/overlay-snapshotter.js';
import type { LayerFormat, LayerStore } from '../src/ports/layer/layer-store.js';
import { erofsOnly } from '../test/helpers/erofs-only-store.js';
import { MemoryLayerStore } from '../test/mocks/memory-layer-store.js';
import { MemorySnapshotter } from '../test/mocks/memory-snapshot.js';
import { snapshotterRecordContract } from './snapshotter-record.contract.js';

/** An erofs store is checked to commit images indeed. */
const layersIn = (store: FsLayerStore, format: LayerFormat): LayerStore => (format === 'erofs' ? erofsOnly(store) : store);

/** A snapshotter on disk, with a store that commits new layers in the format the snapshotter asks for (erofs images for ErofsSnapshotter). */
async function onDisk(make: (workDir: string) => OverlaySnapshotter | CopySnapshotter | ErofsSnapshotter, defaultFormat: LayerFormat = 'directory') {
  const workDir = await mkdtemp(join(tmpdir(), 'image-ts-snaprec-'));
  return {
    snapshotter: make(workDir),
    layers: layersIn(new FsLayerStore(workDir, { whiteoutFormat: 'overlay', defaultFormat }), defaultFormat),
    workDir,
    teardown: () => rm(workDir, { recursive: true, force: true }),
  };
}

snapshotterRecordContract('overlay', () => onDisk((w) => new OverlaySnapshotter(w)));
snapshotterRecordContract('copy', () => onDisk(() => new CopySnapshotter()));
snapshotterRecordContract('erofs', () => onDisk((w) => new ErofsSnapshotter(w), 'erofs'));
snapshotterRecordContract('in-memory mock', async () => {
  const workDir = await mkdtemp(join(tmpdir(), 'image-ts-snaprec-'));
  return { snapshotter: new MemorySnapshotter(), layers: new MemoryLayerStore(), workDir, teardown: () => rm(workDir, { recursive: true, force: true }) };
});
