import { SampleAttester } from '../src/adapters/outbound/keys/attestation/sample-attester.js';
import { KbsKeyBroker } from '../src/adapters/outbound/keys/brokers/kbs-key-broker.js';
import { startKbsServer } from '../test/harness/kbs-server.js';
import { freePort } from '../test/harness/registry.js';
import { keyBrokerContract } from './key-broker.contract.js';

keyBrokerContract('Trustee KBS client (sample attester, test KBS)', async (resources) => {
  const kbs = await startKbsServer({ resources });
  const broker = new KbsKeyBroker({ url: kbs.url, attester: new SampleAttester() });
  // Nothing listens there; short retries keep the test quick.
  const deadBroker = new KbsKeyBroker({
    url: `http://127.0.0.1:${await freePort()}`,
    attester: new SampleAttester(),
    retries: 1,
    retryDelayMs: 10,
  });
  return {
    broker,
    deadBroker,
    teardown: async () => {
      await broker.close();
      await deadBroker.close();
      await kbs.close();
    },
  };
});
