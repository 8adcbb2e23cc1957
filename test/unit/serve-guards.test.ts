import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BundleRoots } from '../../src/adapters/inbound/rpc/bundle-roots.js';
import { CallLimit } from '../../src/adapters/inbound/rpc/call-limit.js';
import { groupId, isLoopback, parseEndpoint } from '../../src/adapters/inbound/rpc/listeners.js';
import { loadConfigFile } from '../../src/adapters/wiring/settings-file.js';
import { ResourcePatterns } from '../../src/domain/encryption/resource-patterns.js';
import { ResourceUri } from '../../src/domain/encryption/resource-uri.js';
import { ImageTsError } from '../../src/domain/errors.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-guards-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const code = (c: string) => (e: unknown) => e instanceof ImageTsError && e.code === c;

describe('serve endpoints', () => {
  it('tells unix sockets from TCP, and loopback from the rest', () => {
    assert.deepEqual(parseEndpoint('unix:///run/cdh.sock'), { kind: 'unix', path: '/run/cdh.sock' });
    assert.deepEqual(parseEndpoint('/run/cdh.sock'), { kind: 'unix', path: '/run/cdh.sock' });
    for (const [t, loopback] of [['127.0.0.1:50000', true], ['127.9.9.9:1', true], ['[::1]:1', true], ['localhost:1', true], ['tcp://127.0.0.1:7', true],
      ['0.0.0.0:50000', false], ['[::]:1', false], ['10.0.0.2:1', false], ['example.com:443', false]] as const) {
      const e = parseEndpoint(t);
      assert.equal(e.kind, 'tcp', t);
      assert.equal(e.kind === 'tcp' && e.loopback, loopback, t);
    }
    assert.equal(isLoopback('::ffff:127.0.0.1'), true);
    assert.throws(() => parseEndpoint('nonsense'), code('INVALID_ARGUMENT'));
  });

  it('a group is a gid or a name from /etc/group', () => {
    const groups = 'root:x:0:\nkvm:x:104:\ncallers:x:1001:alice,bob\n';
    assert.equal(groupId('callers', groups), 1001);
    assert.equal(groupId('42', groups), 42);
    assert.throws(() => groupId('nobody-here', groups), code('INVALID_ARGUMENT'));
  });
});

describe('BundleRoots', () => {
  it('confines to the roots: absolute, no .., the resolved parent inside a resolved root', async () => {
    const root = join(dir, 'roots', 'kata');
    const outside = join(dir, 'outside');
    await mkdir(join(root, 'pod'), { recursive: true });
    await mkdir(outside);
    await symlink(outside, join(root, 'escape'));
    await symlink(join(dir, 'roots'), join(dir, 'via-link')); // a root given through a symlink still counts
    const roots = new BundleRoots([root, join(dir, 'via-link', 'other')]);
    assert.equal(await roots.check(join(root, 'pod', 'c1')), join(root, 'pod', 'c1'));
    assert.equal(await roots.check(join(root, 'new', 'deep', 'c2')), join(root, 'new', 'deep', 'c2'), 'parents that do not exist yet');
    assert.equal(await roots.check(join(dir, 'roots', 'other', 'c3')), join(dir, 'roots', 'other', 'c3'));
    for (const bad of [join(outside, 'c'), `${root}/pod/../../../outside/c`, join(root, 'escape', 'c'), join(root, 'escape', 'x', 'c'), 'rel/c', join(dir, 'roots', 'kata-not', 'c')]) {
      await assert.rejects(roots.check(bad), code('INVALID_ARGUMENT'), bad);
    }
    await symlink(join(dir, 'nowhere'), join(root, 'dangling'));
    await assert.rejects(roots.check(join(root, 'dangling', 'c')), code('INVALID_ARGUMENT'));
    assert.equal(await new BundleRoots([]).check('anywhere/at/all'), 'anywhere/at/all', 'no roots: no confinement');
  });
});

describe('ResourcePatterns', () => {
  it('matches repo/type/tag with * per segment; refuses the rest with KEY_BROKER_DENIED', () => {
    const p = new ResourcePatterns(['default/secret/*', '*/policy/latest']);
    assert.equal(p.allows(ResourceUri.parse('kbs:///default/secret/1')), true);
    assert.equal(p.allows(ResourceUri.parse('kbs:///team/policy/latest')), true);
    assert.equal(p.allows(ResourceUri.parse('kbs:///default/key/1')), false);
    assert.equal(p.allows(ResourceUri.parse('kbs:///team/policy/v1')), false);
    assert.throws(() => p.check(ResourceUri.parse('kbs:///default/key/1')), code('KEY_BROKER_DENIED'));
  });
});

describe('CallLimit', () => {
  it('runs at most N calls at once; the rest wait in order, and leave the queue when their signal aborts', async () => {
    const limit = new CallLimit(2);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const gates: (() => void)[] = [];
    const services = limit.wrap({ s: { m: async (payload) => {
      running++;
      peak = Math.max(peak, running);
      order.push(payload[0]!);
      await new Promise<void>((r) => gates.push(r));
      running--;
      return payload;
    } } });
    const call = (n: number, signal = new AbortController().signal) => services['s']!['m']!(Buffer.from([n]), { signal, metadata: new Map() });
    const calls = [call(1), call(2), call(3)];
    const controller = new AbortController();
    const abandoned = call(4, controller.signal);
    const last = call(5);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(order, [1, 2]);
    controller.abort(new Error('caller gone'));
    await assert.rejects(abandoned, /caller gone/);
    while (gates.length) {
      gates.shift()!();
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all([...calls, last]);
    assert.deepEqual(order, [1, 2, 3, 5]);
    assert.equal(peak, 2);
  });
});

describe('serve settings in the config file', () => {
  it('reads the trust settings and refuses malformed ones', async () => {
    const file = join(dir, 'serve.json');
    await writeFile(file, JSON.stringify({ serve: {
      socket_group: 'callers', allowed_uids: [0, 1001], bundle_roots: ['/run/kata-containers'], resources_allowed: ['default/*/*'],
      max_concurrent_calls: 8, tls: { cert_file: '/c.pem', key_file: '/k.pem', client_ca_file: '/ca.pem' },
    } }));
    const s = (await loadConfigFile(file, () => undefined)).serve!;
    assert.equal(s.socketGroup, 'callers');
    assert.deepEqual(s.allowedUids, [0, 1001]);
    assert.deepEqual(s.bundleRoots, ['/run/kata-containers']);
    assert.deepEqual(s.resourcesAllowed, ['default/*/*']);
    assert.equal(s.maxConcurrentCalls, 8);
    assert.deepEqual(s.tls, { certFile: '/c.pem', keyFile: '/k.pem', clientCaFile: '/ca.pem' });
    for (const bad of [{ allowed_uids: ['root'] }, { bundle_roots: ['relative'] }, { resources_allowed: ['a/b'] }, { tls: { cert_file: '/c' } }, { max_concurrent_calls: 0 }, { socket_grp: 'x' }]) {
      await writeFile(file, JSON.stringify({ serve: bad }));
      await assert.rejects(loadConfigFile(file, () => undefined), code('CONFIG_FILE_INVALID'), JSON.stringify(bad));
    }
  });
});
