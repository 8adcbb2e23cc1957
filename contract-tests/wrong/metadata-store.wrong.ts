/**
 * Wrong on purpose: a metadata store that lets a mutation change the live
 * state, so a mutation that throws half way leaves its half behind.
 */
import type { MetadataStore, StoreState } from '../../src/ports/store/metadata-store.js';
import { metadataStoreContract } from '../metadata-store.contract.js';
import { emptyState } from '../../src/domain/store/empty-state.js';

class InPlaceStore implements MetadataStore {
  private readonly state: StoreState = emptyState();
  private chain: Promise<unknown> = Promise.resolve();

  async read(): Promise<StoreState> {
    return structuredClone(this.state);
  }

  update<T>(mutate: (state: StoreState) => T | Promise<T>): Promise<T> {
    const run = this.chain.then(() => mutate(this.state));
    this.chain = run.catch(() => undefined);
    return run;
  }
}

metadataStoreContract('wrong: a store that does not roll back a failed mutation', async () => {
  const store = new InPlaceStore();
  return { store, reopen: async () => store, teardown: async () => undefined };
});
