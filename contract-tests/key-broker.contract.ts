import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ImageTsError } from '../src/domain/errors.js';
import { ResourceUri } from '../src/domain/encryption/resource-uri.js';
import type { KeyBroker } from '../src/ports/keys/key-broker.js';

export interface KeyBrokerFixture {
  /** Serves exactly the resources it was made with, keyed `repo/type/tag`. */
  readonly broker: KeyBroker;
  /** The same adapter, configured for an endpoint where nothing answers. */
  readonly deadBroker: KeyBroker;
  teardown(): Promise<void>;
}

const code = (c: string) => (e: unknown): boolean => e instanceof ImageTsError && e.code === c;

/**
 * What every KeyBroker must do, so that swapping KBS, CDH, offline files or
 * the mock changes nothing above the port.
 */
export function keyBrokerContract(name: string, make: (resources: ReadonlyMap<string, Buffer>) => Promise<KeyBrokerFixture>): void {
  describe(`KeyBroker contract: ${name}`, () => {
    const kek = randomBytes(32);
    const binary = Buffer.from([0, 255, 10, 13, 0, 128, 34, 92]);
    const big = randomBytes(256 * 1024);
    const resources = new Map([
      ['default/key/1', kek],
      ['default/binary/x', binary],
      ['other/big/blob', big],
    ]);

    it('returns each resource byte for byte', async () => {
      const f = await make(resources);
      try {
        assert.deepEqual(await f.broker.getResource(ResourceUri.parse('kbs:///default/key/1')), kek);
        assert.deepEqual(await f.broker.getResource(ResourceUri.parse('kbs:///default/binary/x')), binary);
        assert.deepEqual(await f.broker.getResource(ResourceUri.parse('kbs:///other/big/blob')), big);
      } finally {
        await f.teardown();
      }
    });

    it('ignores the host part of the URI', async () => {
      const f = await make(resources);
      try {
        assert.deepEqual(await f.broker.getResource(ResourceUri.parse('kbs://elsewhere.example:8080/default/key/1')), kek);
      } finally {
        await f.teardown();
      }
    });

    it('serves concurrent requests', async () => {
      const f = await make(resources);
      try {
        const all = await Promise.all(Array.from({ length: 8 }, (_, i) =>
          f.broker.getResource(ResourceUri.parse(i % 2 ? 'kbs:///default/key/1' : 'kbs:///default/binary/x'))));
        all.forEach((v, i) => assert.deepEqual(v, i % 2 ? kek : binary));
      } finally {
        await f.teardown();
      }
    });

    it('refuses a resource it does not hold with KEY_BROKER_DENIED, naming the URI and no secret', async () => {
      const f = await make(resources);
      try {
        await assert.rejects(f.broker.getResource(ResourceUri.parse('kbs:///default/key/missing')), (e: unknown) => {
          assert.ok(code('KEY_BROKER_DENIED')(e), String(e));
          assert.match((e as Error).message, /default\/key\/missing/);
          assert.ok(!(e as Error).message.includes(kek.toString('base64')));
          return true;
        });
      } finally {
        await f.teardown();
      }
    });

    it('reports an endpoint that does not answer as KEY_BROKER_UNAVAILABLE', async () => {
      const f = await make(resources);
      try {
        await assert.rejects(f.deadBroker.getResource(ResourceUri.parse('kbs:///default/key/1')), code('KEY_BROKER_UNAVAILABLE'));
      } finally {
        await f.teardown();
      }
    });

    it('stops when the signal is aborted', async () => {
      const f = await make(resources);
      try {
        const c = new AbortController();
        c.abort(new Error('cancelled'));
        await assert.rejects(f.broker.getResource(ResourceUri.parse('kbs:///default/key/1'), c.signal));
      } finally {
        await f.teardown();
      }
    });
  });
}
