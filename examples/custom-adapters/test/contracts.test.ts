import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attestationAgentContract, keyBrokerContract } from 'image-ts/contract-tests';
import { HttpSecretBroker } from '../src/http-secret-broker.js';
import { JsonlAttestationAgent } from '../src/jsonl-attestation-agent.js';
import { startSecretStore } from '../src/secret-store.js';

// The same suites image-ts runs against its own brokers and agents.
keyBrokerContract('HTTP secret store', async (resources) => {
  const store = await startSecretStore(resources);
  // A port nothing listens on: the store just closed.
  const dead = await startSecretStore(new Map());
  await dead.close();
  return { broker: new HttpSecretBroker(store.url), deadBroker: new HttpSecretBroker(dead.url), teardown: () => store.close() };
});

attestationAgentContract('JSON-lines event log', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'jsonl-aa-'));
  const agent = new JsonlAttestationAgent(join(dir, 'events.jsonl'));
  return { agent, measurements: () => agent.measurements(), teardown: () => rm(dir, { recursive: true, force: true }) };
});
