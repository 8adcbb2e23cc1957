/**
 * Wrong on purpose: a loader that keeps local files forever once read, so
 * an edited policy file is not seen until the process restarts.
 */
import { BrokerResourceLoader } from '../../src/adapters/outbound/resources/resource-loader.js';
import type { ResourceLoader } from '../../src/ports/resources/resource-loader.js';
import { MemoryKeyBroker } from '../../test/mocks/memory-key-broker.js';
import { resourceLoaderContract } from '../resource-loader.contract.js';

class StickyFiles implements ResourceLoader {
  private readonly files = new Map<string, Buffer>();
  constructor(private readonly inner: ResourceLoader) {}

  async load(uri: string, signal?: AbortSignal): Promise<Buffer> {
    if (uri.startsWith('kbs:')) return this.inner.load(uri, signal);
    const kept = this.files.get(uri) ?? (await this.inner.load(uri, signal));
    this.files.set(uri, kept);
    return Buffer.from(kept);
  }
}

resourceLoaderContract('wrong: a loader that keeps local files forever', async (resources) => {
  const dead = new MemoryKeyBroker();
  dead.down = true;
  return {
    loader: new StickyFiles(new BrokerResourceLoader(new MemoryKeyBroker(new Map(resources)))),
    deadLoader: new StickyFiles(new BrokerResourceLoader(dead)),
    teardown: async () => undefined,
  };
});
