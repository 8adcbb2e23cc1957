import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsLayerStore } from '../src/adapters/outbound/layer-store/fs-layer-store.js';
import { CopySnapshotter } from '../src/adapters/outbound/snapshot/copy-snapshotter.js';
import { OverlaySnapshotter } from '../src/adapters/outbound/snapshot/overlay-snapshotter.js';
import { MemoryLayerStore } from '../test/mocks/memory-layer-store.js';
import { MemorySnapshotter } from '../test/mocks/memory-snapshot.js';
import { snapshotterRecordContract } from './snapshotter-record.contract.js';

async function onDisk(make: (workDir: string) => OverlaySnapshotter | CopySnapshotter) {
  const workDir = await mkdtemp(join(tmpdir(), 'image-ts-snaprec-'));
  return {
    snapshotter: make(workDir),
    layers: new FsLayerStore(workDir, { whiteoutFormat: 'overlay' }),
    workDir,
    teardown: () => rm(workDir, { recursive: true, force: true }),
  };
}

snapshotterRecordContract('overlay', () => onDisk((w) => new OverlaySnapshotter(w)));
snapshotterRecordContract('copy', () => onDisk(() => new CopySnapshotter()));
snapshotterRecordContract('in-memory mock', async () => {
  const workDir = await mkdtemp(join(tmpdir(), 'image-ts-snaprec-'));
  return { snapshotter: new MemorySnapshotter(), layers: new MemoryLayerStore(), workDir, teardown: () => rm(workDir, { recursive: true, force: true }) };
});
