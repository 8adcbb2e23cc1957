/**
 * Wrong on purpose: a layer store whose commit() does not wait for the
 * layer stream to end: it closes the sink itself and commits whatever had
 * arrived, so a half-written layer becomes a committed one.
 */
import { once } from 'node:events';
import type { Digest } from '../../src/domain/image/digest.js';
import type { LayerWriter, StageOptions } from '../../src/ports/layer/layer-store.js';
import { MemoryLayerStore } from '../../test/mocks/memory-layer-store.js';
import { layerStoreContract } from '../layer-store.contract.js';

class HalfCommittingStore extends MemoryLayerStore {
  override async stage(diffId: Digest, options?: StageOptions): Promise<LayerWriter> {
    const writer = await super.stage(diffId, options);
    return {
      sink: writer.sink,
      abort: () => writer.abort(),
      commit: async () => {
        if (!writer.sink.writableFinished) {
          writer.sink.end();
          await once(writer.sink, 'finish');
        }
        return writer.commit();
      },
    };
  }
}

layerStoreContract('wrong: a store that commits a half-written layer', async () => ({ store: new HalfCommittingStore(), teardown: async () => undefined }));
