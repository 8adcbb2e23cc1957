import { MemoryLayerStore } from '../test/mocks/memory-layer-store.js';
import { layerStoreContract } from './layer-store.contract.js';

layerStoreContract('MemoryLayerStore', async () => ({ store: new MemoryLayerStore(), teardown: async () => undefined }));
