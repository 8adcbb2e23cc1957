import { freePort } from '../test/harness/registry.js';
import { CdhKeyBroker } from '../src/adapters/outbound/keys/brokers/cdh-key-broker.js';
import { deadTarget, startCdhService } from '../test/harness/key-services.js';
import { MemoryKeyBroker } from '../test/mocks/memory-key-broker.js';
import { keyBrokerContract } from './key-broker.contract.js';

const overTransport = { grpc: CdhKeyBroker.overGrpc, ttrpc: CdhKeyBroker.overTtrpc } as const;

for (const transport of ['grpc', 'ttrpc'] as const) {
  keyBrokerContract(`CDH GetResourceService over ${transport}`, async (resources) => {
    const service = await startCdhService(transport, new MemoryKeyBroker(new Map(resources)));
    const dead = await deadTarget();
    const broker = overTransport[transport](service.target);
    const deadBroker = overTransport[transport](dead.target);
    return {
      broker,
      deadBroker,
      teardown: async () => {
        broker.close();
        deadBroker.close();
        await service.stop();
        await dead.cleanup();
      },
    };
  });
}

keyBrokerContract('CDH GetResourceService over gRPC/TCP (the gRPC build on 127.0.0.1)', async (resources) => {
  const service = await startCdhService('grpc', new MemoryKeyBroker(new Map(resources)), { tcp: true });
  const broker = CdhKeyBroker.overGrpc(service.target);
  const deadBroker = CdhKeyBroker.overGrpc(`127.0.0.1:${await freePort()}`, { timeoutMs: 5000 });
  return {
    broker,
    deadBroker,
    teardown: async () => {
      broker.close();
      deadBroker.close();
      await service.stop();
    },
  };
});
