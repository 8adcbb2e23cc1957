import { createServer } from 'node:net';
import { CdhKeyBroker } from '../src/adapters/outbound/keys/cdh-key-broker.js';
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

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

keyBrokerContract('CDH GetResourceService over gRPC/TCP (the gRPC build on 127.0.0.1)', async (resources) => {
  const service = await startCdhService('grpc', new MemoryKeyBroker(new Map(resources)), { tcp: true });
  const broker = CdhKeyBroker.overGrpc(service.target);
  const deadBroker = CdhKeyBroker.overGrpc(`127.0.0.1:${await closedPort()}`, { timeoutMs: 5000 });
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
