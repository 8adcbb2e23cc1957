import type { MetadataStore, StoreState } from '../../src/ports/store/metadata-store.js';
import { emptyState } from '../../src/domain/store/empty-state.js';

/** Keeps the state in memory; copies on the way in and out, as a file would. */
export class MemoryMetadataStore implements MetadataStore {
  private state: StoreState = emptyState();
  private chain: Promise<unknown> = Promise.resolve();

  async read(): Promise<StoreState> {
    return structuredClone(this.state);
  }

  update<T>(mutate: (state: StoreState) => T | Promise<T>): Promise<T> {
    const run = this.chain.then(async () => {
      const draft = structuredClone(this.state);
      const result = await mutate(draft);
      this.state = draft;
      return result;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}
