import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OfflineFsKeyBroker } from '../src/adapters/outbound/keys/brokers/offline-fs-key-broker.js';
import { ResourceUri } from '../src/domain/encryption/resource-uri.js';
import { ImageTsError } from '../src/domain/errors.js';
import type { Logger } from '../src/ports/observability/logger.js';
import { keyBrokerContract } from './key-broker.contract.js';

keyBrokerContract('offline-fs key files', async (resources) => {
  const dir = await mkdtemp(join(tmpdir(), 'image-ts-offline-kbc-'));
  const file = join(dir, 'resources.json');
  await writeFile(file, JSON.stringify(Object.fromEntries([...resources].map(([k, v]) => [k, v.toString('base64')]))));
  return {
    // A missing file next to the real one is only a warning.
    broker: new OfflineFsKeyBroker({ files: [join(dir, 'absent.json'), file] }),
    // "Nothing answers" for files: the configured file exists but cannot be read (a directory: EISDIR).
    deadBroker: new OfflineFsKeyBroker({ files: [dir] }),
    teardown: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('offline-fs key files', () => {
  const b64 = (b: Buffer): string => b.toString('base64');
  const code = (c: string) => (e: unknown): boolean => e instanceof ImageTsError && e.code === c;
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'image-ts-offline-kbc-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads again when the file changes, and lets a later file win', async () => {
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    const one = randomBytes(32);
    const two = randomBytes(32);
    await writeFile(a, JSON.stringify({ 'default/key/1': b64(one), 'default/key/2': b64(one) }));
    await writeFile(b, JSON.stringify({ 'default/key/2': b64(two) }));
    const broker = new OfflineFsKeyBroker({ files: [a, b] });
    assert.deepEqual(await broker.getResource(ResourceUri.parse('kbs:///default/key/1')), one);
    assert.deepEqual(await broker.getResource(ResourceUri.parse('kbs:///default/key/2')), two);
    await writeFile(a, JSON.stringify({ 'default/key/1': b64(two) }));
    await utimes(a, new Date(), new Date(Date.now() + 5000));
    assert.deepEqual(await broker.getResource(ResourceUri.parse('kbs:///default/key/1')), two);
  });

  it('hands out copies, so that wiping one does not wipe the next', async () => {
    const f = join(dir, 'copy.json');
    const key = randomBytes(32);
    await writeFile(f, JSON.stringify({ 'default/key/1': b64(key) }));
    const broker = new OfflineFsKeyBroker({ files: [f] });
    (await broker.getResource(ResourceUri.parse('kbs:///default/key/1'))).fill(0);
    assert.deepEqual(await broker.getResource(ResourceUri.parse('kbs:///default/key/1')), key);
  });

  it('warns once about a missing file and finds the file once it appears', async () => {
    const f = join(dir, 'later.json');
    const warnings: string[] = [];
    const logger: Logger = { log: (level, event) => void (level === 'warn' && warnings.push(event)) };
    const broker = new OfflineFsKeyBroker({ files: [f], logger });
    await assert.rejects(broker.getResource(ResourceUri.parse('kbs:///default/key/1')), code('KEY_BROKER_DENIED'));
    await assert.rejects(broker.getResource(ResourceUri.parse('kbs:///default/key/1')), code('KEY_BROKER_DENIED'));
    assert.deepEqual(warnings, ['keys.offline.missing']);
    const key = randomBytes(16);
    await writeFile(f, JSON.stringify({ 'default/key/1': b64(key) }));
    assert.deepEqual(await broker.getResource(ResourceUri.parse('kbs:///default/key/1')), key);
  });

  it('rejects a malformed file with one line of CONFIG_FILE_INVALID and no content', async () => {
    const key = randomBytes(32);
    const cases = [
      `{"default/key/1": "${b64(key)}"`,
      JSON.stringify([b64(key)]),
      JSON.stringify({ 'default/key/1': b64(key), 'default/key/2': `${b64(key)}!` }),
      JSON.stringify({ 'default/key/1': 12 }),
    ];
    for (const [i, text] of cases.entries()) {
      const f = join(dir, `bad-${i}.json`);
      await writeFile(f, text);
      await assert.rejects(new OfflineFsKeyBroker({ files: [f] }).getResource(ResourceUri.parse('kbs:///default/key/1')), (e: unknown) => {
        assert.ok(code('CONFIG_FILE_INVALID')(e), String(e));
        const m = (e as Error).message;
        assert.ok(!m.includes('\n') && !m.includes(b64(key).slice(0, 12)), m);
        assert.ok(m.includes(f), m);
        return true;
      });
    }
  });

  it('still serves what readable files hold when another file is unreadable', async () => {
    const f = join(dir, 'ok.json');
    const key = randomBytes(32);
    await writeFile(f, JSON.stringify({ 'default/key/1': b64(key) }));
    const broker = new OfflineFsKeyBroker({ files: [dir, f] });
    assert.deepEqual(await broker.getResource(ResourceUri.parse('kbs:///default/key/1')), key);
    await assert.rejects(broker.getResource(ResourceUri.parse('kbs:///default/key/2')), (e: unknown) => {
      assert.ok(code('KEY_BROKER_UNAVAILABLE')(e), String(e));
      assert.match((e as Error).message, /EISDIR/);
      return true;
    });
  });
});
