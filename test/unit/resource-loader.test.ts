import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { BrokerResourceLoader } from '../../src/adapters/outbound/resources/resource-loader.js';
import { ImageTsError } from '../../src/domain/errors.js';
import { MemoryKeyBroker } from '../mocks/memory-key-broker.js';

const code = (c: string) => (e: unknown): boolean => e instanceof ImageTsError && e.code === c;

describe('BrokerResourceLoader', () => {
  it('reads bare paths and file:// URIs afresh each time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'image-ts-res-'));
    try {
      const f = join(dir, 'policy.json');
      await writeFile(f, 'one');
      const loader = new BrokerResourceLoader(new MemoryKeyBroker());
      assert.equal((await loader.load(f)).toString(), 'one');
      await writeFile(f, 'two');
      assert.equal((await loader.load(pathToFileURL(f).href)).toString(), 'two');
      await assert.rejects(loader.load(join(dir, 'missing')), code('INVALID_ARGUMENT'));
      await assert.rejects(loader.load('https://example.com/policy.json'), code('INVALID_ARGUMENT'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps kbs:// resources for the TTL only, and does not cache failures', async () => {
    let now = 0;
    const broker = new MemoryKeyBroker(new Map([['default/policy/1', Buffer.from('v1')]]));
    const loader = new BrokerResourceLoader(broker, { ttlMs: 1000, now: () => now });
    assert.equal((await loader.load('kbs:///default/policy/1')).toString(), 'v1');
    broker.set('default/policy/1', Buffer.from('v2'));
    now = 999;
    assert.equal((await loader.load('kbs:///default/policy/1')).toString(), 'v1', 'within the TTL');
    now = 1001;
    assert.equal((await loader.load('kbs:///default/policy/1')).toString(), 'v2', 'refetched after the TTL');
    assert.equal(broker.requests.length, 2);
    broker.down = true;
    now = 5000;
    await assert.rejects(loader.load('kbs:///default/policy/1'), code('KEY_BROKER_UNAVAILABLE'));
    broker.down = false;
    assert.equal((await loader.load('kbs:///default/policy/1')).toString(), 'v2');
  });
});
