/**
 * Wrong on purpose: a snapshotter that overlooks opaque markers
 * (`.wh..wh..opq`), so what a layer meant to hide in a directory shows
 * through from the layers below.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Digest } from '../../src/domain/image/digest.js';
import { OPAQUE_MARKER } from '../../src/domain/layer/entry-path.js';
import { MemoryLayerStore, type MemoryEntry } from '../../test/mocks/memory-layer-store.js';
import { MemorySnapshotter } from '../../test/mocks/memory-snapshot.js';
import { snapshotterContract } from '../snapshotter.contract.js';

snapshotterContract('wrong: a snapshotter that ignores opaque directories', async () => {
  const layers = new MemoryLayerStore();
  const withoutOpaqueMarkers = {
    entries: (diffId: Digest): ReadonlyMap<string, MemoryEntry> | undefined => {
      const all = layers.entries(diffId);
      return all && new Map([...all].filter(([path]) => path.split('/').pop() !== OPAQUE_MARKER));
    },
  };
  const workDir = await mkdtemp(join(tmpdir(), 'image-ts-wrong-snap-'));
  return {
    snapshotter: new MemorySnapshotter(withoutOpaqueMarkers),
    layers,
    workDir,
    readLayerFile: async (layer, path) => layers.entries(layer.diffId)?.get(path)?.content?.toString('utf8'),
    refuses: ['raw-names', 'sparse', 'special-files'],
    teardown: () => rm(workDir, { recursive: true, force: true }),
  };
});
