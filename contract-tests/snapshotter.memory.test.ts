import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLayerStore } from '../test/mocks/memory-layer-store.js';
import { MemorySnapshotter } from '../test/mocks/memory-snapshot.js';
import { snapshotterContract } from './snapshotter.contract.js';

// The mock, given the store its layers come from, writes their union into the rootfs.
snapshotterContract('in-memory mock (MemorySnapshotter over MemoryLayerStore)', async () => {
  const layers = new MemoryLayerStore();
  const workDir = await mkdtemp(join(tmpdir(), 'image-ts-memsnap-'));
  return {
    snapshotter: new MemorySnapshotter(layers),
    layers,
    workDir,
    readLayerFile: async (layer, path) => layers.entries(layer.diffId)?.get(path)?.content?.toString('utf8'),
    // node-tar, which the mock parses with, cannot see these; FIFOs and devices it does not make.
    refuses: ['raw-names', 'sparse', 'special-files'],
    teardown: () => rm(workDir, { recursive: true, force: true }),
  };
});
