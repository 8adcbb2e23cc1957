/**
 * Processes that pull into one store share the work: each layer is fetched
 * by one of them while the others wait for its commit (or fetch other
 * layers), and a waiter takes over from a holder killed with -9. Blob
 * fetches are counted at a fault proxy in front of a real docker-registry,
 * which trickles every blob so that the pulls overlap.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type StartedRegistry } from '../harness/registry.js';
import { cli } from '../helpers/cli.js';
import { buildImage, type BuiltImage } from '../helpers/image-builder.js';
import { unmountBelow } from '../helpers/mounts.js';
import { checkStore, spawnCli } from '../helpers/store-check.js';
import { tar } from '../helpers/tar-writer.js';
import { treeOf } from '../helpers/tree.js';

const MiB = 1024 * 1024;

let dir: string;
let registry: StartedRegistry;
let proxy: FaultProxy;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-e2e-flight-'));
  registry = await startRegistry('open');
  proxy = await startFaultProxy({ upstream: registry.host });
});

after(async () => {
  if (dir) unmountBelow(dir);
  await proxy?.stop();
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Incompressible layers, so that their blobs take a while through the trickle. */
function image(layers: number, size: number): BuiltImage {
  return buildImage({ layers: Array.from({ length: layers }, (_, i) => ({ tar: tar([{ name: `layer-${i}.bin`, content: randomBytes(size) }]) })) });
}

const pullArgs = (repo: string, bundle: string, work: string): string[] =>
  ['pull', `${proxy.host}/${repo}`, bundle, '--work-dir', work, '--plain-http', proxy.host, '--snapshotter', 'copy', '--quiet'];

/** Blob GETs the proxy forwarded for a digest (a resumed fetch would add a Range GET; none is expected here). */
const blobGets = (digest: string): number => proxy.requests().filter((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${digest}`)).length;

describe('processes pulling into one store share each layer', () => {
  it('three processes pulling one image download every layer once between them', async () => {
    const img = image(4, 4 * MiB);
    await registry.pushImage('flight/three', 'v1', img);
    proxy.clearRules();
    proxy.add({ method: 'GET', url: /\/blobs\//, fault: { kind: 'trickle', chunk: 256 * 1024, delayMs: 40 } });
    const work = join(dir, 'work-three');
    const pulls = [0, 1, 2].map((i) => spawnCli(pullArgs('flight/three:v1', join(dir, `three-${i}`), work)));
    const results = await Promise.all(pulls.map((p) => p.done));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    for (const l of img.layers) assert.equal(blobGets(l.digest), 1, `layer ${l.digest} was fetched ${blobGets(l.digest)} times`);
    const trees = await Promise.all([0, 1, 2].map((i) => treeOf(join(dir, `three-${i}`, 'rootfs'))));
    assert.deepEqual(trees[1], trees[0]);
    assert.deepEqual(trees[2], trees[0]);
    const store = await checkStore(work, { settled: true });
    assert.equal(store.committed.length, 4);
  });

  it('a waiter takes over the layer when its holder is killed with -9 midway', async () => {
    const img = image(1, 16 * MiB);
    const digest = img.layers[0]!.digest;
    await registry.pushImage('flight/kill', 'v1', img);
    proxy.clearRules();
    // About 1.6 MB/s: the holder is seconds into a 10-second blob when it dies.
    proxy.add({ method: 'GET', url: /\/blobs\//, fault: { kind: 'trickle', chunk: 32 * 1024, delayMs: 20 } });
    const work = join(dir, 'work-kill');
    const holder = spawnCli(pullArgs('flight/kill:v1', join(dir, 'kill-holder'), work));
    const bytesSent = (): number => proxy.requests().filter((r) => r.url.endsWith(`/blobs/${digest}`)).reduce((n, r) => n + r.bytes, 0);
    while (bytesSent() < 1 * MiB) {
      assert.equal(holder.exited(), false, 'the holder ended before the test could kill it');
      await sleep(50);
    }
    const manifests = (): number => proxy.requests().filter((r) => r.url.includes('/manifests/')).length;
    const before = manifests();
    const waiter = spawnCli(pullArgs('flight/kill:v1', join(dir, 'kill-waiter'), work));
    while (manifests() === before) await sleep(50);
    // The waiter has resolved the image; were it not waiting for the holder, its own blob GET would come now.
    await sleep(1500);
    assert.equal(blobGets(digest), 1, 'the waiter fetched the layer while its holder was alive');
    assert.equal(holder.kill9(), true);
    const r = await waiter.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(blobGets(digest), 2, 'the waiter fetched the layer itself once the holder died');
    // The dead holder's staging goes with the next gc; then the store is as a clean pull leaves it.
    const gc = await cli(['gc', '--work-dir', work]);
    assert.equal(gc.code, 0, gc.stderr);
    const store = await checkStore(work, { settled: true });
    assert.deepEqual(store.committed, [img.layers[0]!.diffId]);
  });
});
