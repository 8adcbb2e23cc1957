import { MemoryKeyBroker } from '../test/mocks/memory-key-broker.js';
import { keyBrokerContract } from './key-broker.contract.js';

keyBrokerContract('in-memory mock', async (resources) => {
  const dead = new MemoryKeyBroker();
  dead.down = true;
  return { broker: new MemoryKeyBroker(new Map(resources)), deadBroker: dead, teardown: async () => undefined };
});
