import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ImageTsError } from '../src/domain/errors.js';
import type { ResourceLoader } from '../src/ports/resources/resource-loader.js';

export interface ResourceLoaderFixture {
  /** Reads paths and file:// URIs, and serves kbs:/// from a key broker holding exactly the resources it was made with. */
  readonly loader: ResourceLoader;
  /** The same loader over a key broker that cannot be reached. */
  readonly deadLoader: ResourceLoader;
  teardown(): Promise<void>;
}

/** The most a resource may hold: policies, registries.conf and keys are small; nothing is read without a bound. */
export const MAX_RESOURCE_BYTES = 4 * 1024 * 1024;

const code = (c: string, ...mentions: string[]) => (err: unknown): boolean => {
  assert.ok(err instanceof ImageTsError, `not an ImageTsError: ${String(err)}`);
  assert.equal(err.code, c, err.message);
  for (const m of mentions) assert.ok(err.message.includes(m), `${err.message} does not name ${m}`);
  assert.doesNotMatch(err.message, /\n/);
  return true;
};

/**
 * What image-ts relies on when it reads a policy, registries.conf or a key
 * by URI: bare paths and file:// read afresh, kbs:// through the key broker,
 * every read bounded, every failure a typed error, nothing else fetched.
 */
export function resourceLoaderContract(name: string, make: (resources: ReadonlyMap<string, Buffer>) => Promise<ResourceLoaderFixture>): void {
  describe(`ResourceLoader contract: ${name}`, () => {
    const policy = Buffer.from('{"default":[{"type":"reject"}]}');
    const key = randomBytes(32);
    const resources = new Map([['default/policy/1', policy], ['default/key/1', key]]);
    let f: ResourceLoaderFixture;
    let dir = '';
    before(async () => {
      f = await make(resources);
      dir = await mkdtemp(join(tmpdir(), 'image-ts-resources-'));
    });
    after(async () => {
      await f?.teardown();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('reads a bare path and a file:// URI byte for byte', async () => {
      const bytes = Buffer.concat([Buffer.from([0, 255, 10, 13]), randomBytes(100_000)]);
      const path = join(dir, 'a policy file.json'); // a space, percent-encoded in the URI
      await writeFile(path, bytes);
      assert.deepEqual(await f.loader.load(path), bytes);
      assert.deepEqual(await f.loader.load(pathToFileURL(path).href), bytes);
    });

    it('reads a file afresh on every call: a local edit takes effect at once', async () => {
      const path = join(dir, 'edited.json');
      await writeFile(path, 'one');
      assert.equal((await f.loader.load(path)).toString(), 'one');
      await writeFile(path, 'two');
      assert.equal((await f.loader.load(path)).toString(), 'two');
      assert.equal((await f.loader.load(pathToFileURL(path).href)).toString(), 'two');
    });

    it('refuses a file it cannot read with INVALID_ARGUMENT naming the path: missing, a directory, a remote file:// host', async () => {
      const missing = join(dir, 'missing.json');
      await assert.rejects(f.loader.load(missing), code('INVALID_ARGUMENT', missing));
      await assert.rejects(f.loader.load(pathToFileURL(missing).href), code('INVALID_ARGUMENT', 'missing.json'));
      const sub = join(dir, 'a-directory');
      await mkdir(sub, { recursive: true });
      await assert.rejects(f.loader.load(sub), code('INVALID_ARGUMENT', sub));
      await assert.rejects(f.loader.load('file://files.example.com/etc/policy.json'), code('INVALID_ARGUMENT'));
    });

    it(`bounds every read at ${MAX_RESOURCE_BYTES} bytes with INVALID_ARGUMENT, /dev/zero included`, async () => {
      const exact = join(dir, 'exact.bin');
      await writeFile(exact, Buffer.alloc(MAX_RESOURCE_BYTES, 1));
      assert.equal((await f.loader.load(exact)).length, MAX_RESOURCE_BYTES);
      const over = join(dir, 'over.bin');
      await writeFile(over, Buffer.alloc(MAX_RESOURCE_BYTES + 1, 1));
      await assert.rejects(f.loader.load(over), code('INVALID_ARGUMENT', over));
      // stat says 0 bytes; only counting what is read stops it.
      await assert.rejects(f.loader.load('/dev/zero'), code('INVALID_ARGUMENT', '/dev/zero'));
    });

    it('serves kbs:// resources through the key broker byte for byte, whatever the host part', async () => {
      assert.deepEqual(await f.loader.load('kbs:///default/policy/1'), policy);
      assert.deepEqual(await f.loader.load('kbs://kbs.example.com:8080/default/key/1'), key);
    });

    it('passes on the broker\'s refusal as KEY_BROKER_DENIED and an unreachable broker as KEY_BROKER_UNAVAILABLE', async () => {
      await assert.rejects(f.loader.load('kbs:///default/policy/missing'), code('KEY_BROKER_DENIED'));
      await assert.rejects(f.deadLoader.load('kbs:///default/policy/1'), code('KEY_BROKER_UNAVAILABLE'));
      // A failure is not remembered: the live loader still serves the resource.
      assert.deepEqual(await f.loader.load('kbs:///default/policy/1'), policy);
    });

    it('hands out copies: wiping what it returned does not change the next load', async () => {
      (await f.loader.load('kbs:///default/key/1')).fill(0);
      assert.deepEqual(await f.loader.load('kbs:///default/key/1'), key);
      const path = join(dir, 'wiped.bin');
      await writeFile(path, key);
      (await f.loader.load(path)).fill(0);
      assert.deepEqual(await f.loader.load(path), key);
    });

    it('refuses other URI schemes with INVALID_ARGUMENT, and malformed kbs:// URIs too', async () => {
      for (const uri of ['https://example.com/policy.json', 'http://127.0.0.1:1/policy.json', 's3://bucket/policy.json', 'kbs:///only/two']) {
        await assert.rejects(f.loader.load(uri), code('INVALID_ARGUMENT'), uri);
      }
    });

    it('stops a kbs:// load when the signal is aborted', async () => {
      const fresh = await make(resources);
      try {
        await assert.rejects(fresh.loader.load('kbs:///default/key/1', AbortSignal.abort(new Error('the caller gave up'))));
      } finally {
        await fresh.teardown();
      }
    });
  });
}
