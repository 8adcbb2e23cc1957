/**
 * Wrong on purpose: a broker that answers a resource it does not hold with
 * a key of zeros instead of refusing. A layer would "decrypt" with it.
 */
import type { ResourceUri } from '../../src/domain/encryption/resource-uri.js';
import { ImageTsError } from '../../src/domain/errors.js';
import { MemoryKeyBroker } from '../../test/mocks/memory-key-broker.js';
import { keyBrokerContract } from '../key-broker.contract.js';

class ZeroKeyForMissing extends MemoryKeyBroker {
  override async getResource(uri: ResourceUri, signal?: AbortSignal): Promise<Buffer> {
    try {
      return await super.getResource(uri, signal);
    } catch (err) {
      if (err instanceof ImageTsError && err.code === 'KEY_BROKER_DENIED') return Buffer.alloc(32);
      throw err;
    }
  }
}

keyBrokerContract('wrong: a broker that answers a missing resource with zeros', async (resources) => {
  const dead = new ZeroKeyForMissing();
  dead.down = true;
  return { broker: new ZeroKeyForMissing(new Map(resources)), deadBroker: dead, teardown: async () => undefined };
});
