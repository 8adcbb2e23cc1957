import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KbsKeyBroker } from '../src/adapters/outbound/keys/brokers/kbs-key-broker.js';
import { OfflineFsKeyBroker } from '../src/adapters/outbound/keys/brokers/offline-fs-key-broker.js';
import { SampleAttester } from '../src/adapters/outbound/keys/attestation/sample-attester.js';
import { BrokerResourceLoader } from '../src/adapters/outbound/resources/resource-loader.js';
import { startKbsServer } from '../test/harness/kbs-server.js';
import { freePort } from '../test/harness/registry.js';
import { MemoryKeyBroker } from '../test/mocks/memory-key-broker.js';
import { resourceLoaderContract } from './resource-loader.contract.js';

// One loader, over the brokers it is wired to: the mock, offline key files, and a KBS.
resourceLoaderContract('BrokerResourceLoader over the in-memory key broker', async (resources) => {
  const dead = new MemoryKeyBroker();
  dead.down = true;
  return {
    loader: new BrokerResourceLoader(new MemoryKeyBroker(new Map(resources))),
    deadLoader: new BrokerResourceLoader(dead),
    teardown: async () => undefined,
  };
});

resourceLoaderContract('BrokerResourceLoader over offline-fs key files', async (resources) => {
  const dir = await mkdtemp(join(tmpdir(), 'image-ts-resources-kbc-'));
  const file = join(dir, 'resources.json');
  await writeFile(file, JSON.stringify(Object.fromEntries([...resources].map(([k, v]) => [k, v.toString('base64')]))));
  return {
    loader: new BrokerResourceLoader(new OfflineFsKeyBroker({ files: [file] })),
    // A configured key file that cannot be read (a directory).
    deadLoader: new BrokerResourceLoader(new OfflineFsKeyBroker({ files: [dir] })),
    teardown: () => rm(dir, { recursive: true, force: true }),
  };
});

resourceLoaderContract('BrokerResourceLoader over the Trustee KBS client (sample attester, test KBS)', async (resources) => {
  const kbs = await startKbsServer({ resources });
  const broker = new KbsKeyBroker({ url: kbs.url, attester: new SampleAttester() });
  const dead = new KbsKeyBroker({ url: `http://127.0.0.1:${await freePort()}`, attester: new SampleAttester(), retries: 1, retryDelayMs: 10 });
  return {
    loader: new BrokerResourceLoader(broker),
    deadLoader: new BrokerResourceLoader(dead),
    teardown: async () => {
      await broker.close();
      await dead.close();
      await kbs.close();
    },
  };
});
