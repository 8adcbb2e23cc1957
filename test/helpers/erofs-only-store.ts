import assert from 'node:assert/strict';
import type { CommittedLayer, LayerStore } from '../../src/ports/layer/layer-store.js';

/**
 * `store`, checking that every layer it commits or returns is an EROFS image:
 * a store that fell back to directories would pass a suite meant for images
 * while testing nothing of them.
 */
export function erofsOnly(store: LayerStore): LayerStore {
  const checked = (layer: CommittedLayer): CommittedLayer => {
    assert.equal(layer.format, 'erofs', `layer ${layer.diffId} was committed as ${layer.format ?? 'directory'}, not erofs`);
    assert.ok(layer.image, `layer ${layer.diffId} is erofs without an image record`);
    return layer;
  };
  return {
    get whiteoutFormat() {
      return store.whiteoutFormat;
    },
    get: async (diffId) => {
      const layer = await store.get(diffId);
      return layer && checked(layer);
    },
    stage: async (diffId, options) => {
      const writer = await store.stage(diffId, options);
      return { sink: writer.sink, commit: async () => checked(await writer.commit()), abort: () => writer.abort() };
    },
    tryIngest: (diffId) => store.tryIngest(diffId),
    waitIngest: (diffId, signal) => store.waitIngest(diffId, signal),
    remove: (diffId) => store.remove(diffId),
    list: () => store.list(),
    cleanStaging: () => store.cleanStaging(),
    ...(store.footprint ? { footprint: store.footprint.bind(store) } : {}),
  };
}
