/**
 * Wrong on purpose: a key provider whose failures carry no code (plain
 * Errors), so the pull cannot tell a denied key from a broker that is down.
 */
import { CocoKeyProvider } from '../../src/domain/encryption/coco-key-provider.js';
import type { KeyProvider } from '../../src/ports/keys/key-provider.js';
import { MemoryKeyBroker } from '../../test/mocks/memory-key-broker.js';
import { keyProviderContract, type HeldKey } from '../key-provider.contract.js';

class CodelessProvider implements KeyProvider {
  constructor(private readonly inner: KeyProvider) {}

  get name(): string {
    return this.inner.name;
  }

  async unwrapKey(input: Buffer, signal?: AbortSignal): Promise<Buffer> {
    try {
      return await this.inner.unwrapKey(input, signal);
    } catch (err) {
      throw new Error(err instanceof Error ? err.message : String(err));
    }
  }
}

const brokerHolding = (held: HeldKey): MemoryKeyBroker => new MemoryKeyBroker(new Map([[new URL(held.kid).pathname.slice(1), held.kek]]));

keyProviderContract('wrong: a provider whose errors carry no code', async (held) => {
  const down = new MemoryKeyBroker();
  down.down = true;
  return {
    provider: new CodelessProvider(new CocoKeyProvider(brokerHolding(held))),
    deadProvider: new CodelessProvider(new CocoKeyProvider(down)),
    teardown: async () => undefined,
  };
});
