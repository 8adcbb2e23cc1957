import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { ImageTsError } from '../../src/domain/errors.js';
import { Digest } from '../../src/domain/image/digest.js';
import { Platform } from '../../src/domain/image/platform.js';
import { PullImage } from '../../src/domain/pull/pull-image.js';
import { RegistriesConf } from '../../src/domain/registry/registries-conf.js';
import { ManageImages } from '../../src/domain/store/manage-images.js';
import type { ProgressEvent } from '../../src/ports/observability/progress.js';
import { counterIds } from '../helpers/ids.js';
import { buildImage, buildIndex, type BuiltImage } from '../helpers/image-builder.js';
import { tar as tarOf } from '../helpers/tar-writer.js';
import { MemoryDecompressor } from '../mocks/memory-decompressor.js';
import { MemoryImageSourceFactory } from '../mocks/memory-image-source.js';
import { MemoryLayerStore } from '../mocks/memory-layer-store.js';
import { MemoryMetadataStore } from '../mocks/memory-metadata-store.js';
import { MemoryBundleDirectory, MemorySnapshotter } from '../mocks/memory-snapshot.js';
import { silentLogger } from '../../src/adapters/outbound/silent-logger.js';

const code = (c: string) => (e: unknown) => e instanceof ImageTsError && e.code === c;

function file(name: string, content: string) {
  return { type: 'file' as const, name, content };
}

function setup() {
  const source = new MemoryImageSourceFactory();
  const layers = new MemoryLayerStore();
  const metadata = new MemoryMetadataStore();
  const snapshotter = new MemorySnapshotter();
  const bundles = new MemoryBundleDirectory();
  const deps = { sources: [source], decompressor: new MemoryDecompressor(), layers, snapshotters: [snapshotter], bundles, metadata, logger: silentLogger, clock: () => new Date(0), ids: counterIds() };
  const pull = new PullImage(deps, { hostPlatform: Platform.parse('linux/amd64'), maxConcurrentLayers: 2 });
  const manage = new ManageImages(deps);
  const publish = (name: string, tag: string, img: BuiltImage) =>
    source.put(name, tag, { bytes: img.manifest, digest: img.manifestDigest, mediaType: img.manifestMediaType }, img.blobs);
  return { source, layers, metadata, snapshotter, bundles, pull, manage, publish };
}

const base = tarOf([file('etc/passwd', 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n'), file('shared.txt', 'shared')]);
const top = tarOf([file('app/run', '#!/bin/sh\n')]);

describe('PullImage', () => {
  let t: ReturnType<typeof setup>;
  beforeEach(() => {
    t = setup();
  });

  it('verifies and commits every layer, records the image and writes config.json', async () => {
    const img = buildImage({ layers: [{ tar: base }, { tar: top, compression: 'zstd' }], config: { User: 'app', Cmd: ['/app/run'] } });
    t.publish('example.com/app', 'v1', img);
    t.bundles.rootfsFiles.set('/etc/passwd', 'app:x:1000:1000::/:/bin/sh\n');
    const events: ProgressEvent[] = [];
    const r = await t.pull.execute({ image: 'example.com/app:v1', bundle: '/b1', onProgress: (e) => events.push(e) });
    assert.equal(r.manifestDigest, img.manifestDigest);
    assert.equal(r.configDigest, img.configDigest);
    assert.deepEqual(r.layers.map((l) => [l.digest, l.diffId, l.fetched]), img.layers.map((l) => [l.digest, l.diffId, true]));
    for (const l of img.layers) assert.ok(await t.layers.get(Digest.parse(l.diffId)));
    const state = await t.metadata.read();
    assert.deepEqual(state.images[img.manifestDigest]?.names, ['example.com/app:v1']);
    assert.equal(state.bundles['/b1']?.layers.length, 2);
    assert.deepEqual(t.bundles.bundles.get('/b1')?.config?.process.user, { uid: 1000, gid: 1000 });
    assert.deepEqual(t.snapshotter.prepared.get('/b1/rootfs')?.map((l) => l.diffId.toString()), img.layers.map((l) => l.diffId));
    const states = events.filter((e) => e.type === 'layer-state').map((e) => e.type === 'layer-state' && e.state);
    assert.deepEqual(states.filter((s) => s === 'committed').length, 2);
    assert.equal(events.at(-1)?.type, 'done');
  });

  it('reuses committed layers: a second bundle fetches no blob', async () => {
    const img = buildImage({ layers: [{ tar: base }, { tar: top }] });
    t.publish('example.com/app', 'v1', img);
    await t.pull.execute({ image: 'example.com/app:v1', bundle: '/b1' });
    const before = [...t.source.blobFetches.values()].reduce((a, b) => a + b, 0);
    const r = await t.pull.execute({ image: 'example.com/app:v1', bundle: '/b2' });
    assert.deepEqual(r.layers.map((l) => l.fetched), [false, false]);
    assert.equal([...t.source.blobFetches.values()].reduce((a, b) => a + b, 0), before + 1, 'only the config blob');
  });

  it('fetches a layer shared by concurrent pulls once', async () => {
    const a = buildImage({ layers: [{ tar: base }, { tar: top }] });
    const b = buildImage({ layers: [{ tar: base }, { tar: tarOf([file('b', 'b')]) }] });
    t.publish('example.com/a', 'latest', a);
    t.publish('example.com/b', 'latest', b);
    await Promise.all([
      t.pull.execute({ image: 'example.com/a', bundle: '/a' }),
      t.pull.execute({ image: 'example.com/b', bundle: '/b' }),
      t.pull.execute({ image: 'example.com/a', bundle: '/a2' }),
    ]);
    assert.equal(t.source.blobFetches.get(a.layers[0]!.digest), 1);
    assert.equal(t.source.blobFetches.get(a.layers[1]!.digest), 1);
  });

  for (const [what, spec] of [
    ['a blob digest mismatch', { tar: top, digestOverride: `sha256:${'9'.repeat(64)}` }],
    ['a diff_id mismatch', { tar: top, diffIdOverride: `sha256:${'8'.repeat(64)}` }],
    ['an uncompressed blob digest mismatch', { tar: top, compression: 'none', digestOverride: `sha256:${'6'.repeat(64)}` }],
    ['an uncompressed diff_id mismatch', { tar: top, compression: 'none', diffIdOverride: `sha256:${'5'.repeat(64)}` }],
  ] as const) {
    it(`fails ${what} with DIGEST_MISMATCH and leaves nothing behind`, async () => {
      const img = buildImage({ layers: [{ tar: base }, spec] });
      // The lying descriptor must still find bytes: store the real blob under the claimed digest.
      if ('digestOverride' in spec) img.blobs.set(spec.digestOverride, img.layers[1]!.bytes);
      t.publish('example.com/bad', 'latest', img);
      await assert.rejects(t.pull.execute({ image: 'example.com/bad', bundle: '/bad' }), code('DIGEST_MISMATCH'));
      assert.equal(await t.layers.get(Digest.parse(img.layers[1]!.diffId)), undefined);
      const state = await t.metadata.read();
      assert.deepEqual([Object.keys(state.images), Object.keys(state.bundles)], [[], []]);
      assert.equal(t.bundles.bundles.has('/bad'), false);
    });
  }

  it('refuses an existing bundle before fetching anything', async () => {
    const img = buildImage({ layers: [{ tar: base }] });
    t.publish('example.com/app', 'v1', img);
    t.bundles.bundles.set('/taken', {});
    await assert.rejects(t.pull.execute({ image: 'example.com/app:v1', bundle: '/taken' }), code('BUNDLE_EXISTS'));
    assert.equal(t.source.blobFetches.size, 0);
    assert.equal(t.bundles.bundles.has('/taken'), true, 'the existing bundle is not removed');
  });

  it('picks the platform from an index and names the options when none fits', async () => {
    const amd = buildImage({ architecture: 'amd64', layers: [{ tar: base }] });
    const arm = buildImage({ architecture: 'arm64', variant: 'v8', layers: [{ tar: top }] });
    const idx = buildIndex([{ image: amd, platform: { os: 'linux', architecture: 'amd64' } }, { image: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }]);
    t.source.put('example.com/multi', 'latest', { bytes: idx.bytes, digest: idx.digest, mediaType: idx.mediaType }, idx.blobs);
    const r = await t.pull.execute({ image: 'example.com/multi', bundle: '/m1', platform: Platform.parse('linux/arm64') });
    assert.equal(r.manifestDigest, arm.manifestDigest);
    assert.equal(r.indexDigest, idx.digest);
    await assert.rejects(t.pull.execute({ image: 'example.com/multi', bundle: '/m2', platform: Platform.parse('linux/ppc64le') }),
      (e: unknown) => code('PLATFORM_NOT_FOUND')(e) && /linux\/amd64, linux\/arm64\/v8/.test((e as Error).message));
  });

  it('checks the manifest digest of a pull by digest', async () => {
    const img = buildImage({ layers: [{ tar: base }] });
    const other = buildImage({ layers: [{ tar: top }] });
    t.source.put('example.com/app', undefined, { bytes: other.manifest, digest: img.manifestDigest, mediaType: other.manifestMediaType }, other.blobs);
    await assert.rejects(t.pull.execute({ image: `example.com/app@${img.manifestDigest}`, bundle: '/d' }), code('DIGEST_MISMATCH'));
  });

  it('refuses a config whose diff_ids do not match the layers', async () => {
    const img = buildImage({ layers: [{ tar: base }] });
    const doc = JSON.parse(img.manifest.toString());
    doc.layers.push(doc.layers[0]);
    const bytes = Buffer.from(JSON.stringify(doc));
    t.source.put('example.com/app', 'x', { bytes, digest: `sha256:${'0'.repeat(64)}`, mediaType: img.manifestMediaType }, img.blobs);
    await assert.rejects(t.pull.execute({ image: 'example.com/app:x', bundle: '/x' }), code('INVALID_MANIFEST'));
  });

  it('undoes the bundle when the snapshot fails, but keeps the verified layers', async () => {
    const img = buildImage({ layers: [{ tar: base }] });
    t.publish('example.com/app', 'v1', img);
    t.snapshotter.failNext = true;
    await assert.rejects(t.pull.execute({ image: 'example.com/app:v1', bundle: '/s' }), code('INTERNAL'));
    assert.equal(t.bundles.bundles.has('/s'), false);
    assert.equal((await t.metadata.read()).bundles['/s'], undefined);
    assert.ok(await t.layers.get(Digest.parse(img.layers[0]!.diffId)));
  });

  it('leaves no lease behind, whether the pull succeeds or fails', async () => {
    const good = buildImage({ layers: [{ tar: base }] });
    const bad = buildImage({ layers: [{ tar: top, diffIdOverride: `sha256:${'7'.repeat(64)}` }] });
    t.publish('example.com/good', 'latest', good);
    t.publish('example.com/bad', 'latest', bad);
    await t.pull.execute({ image: 'example.com/good', bundle: '/g' });
    await assert.rejects(t.pull.execute({ image: 'example.com/bad', bundle: '/b' }), code('DIGEST_MISMATCH'));
    assert.deepEqual((await t.metadata.read()).leases, {});
  });

  it('gc spares layers under a live lease and takes them once it expires', async () => {
    const img = buildImage({ layers: [{ tar: base }] });
    t.publish('example.com/app', 'v1', img);
    await t.pull.execute({ image: 'example.com/app:v1', bundle: '/l' });
    await t.manage.removeBundle('/l');
    await t.manage.remove('example.com/app:v1');
    const diffId = img.layers[0]!.diffId;
    // As a running pull would hold it: clock is at the epoch, so this lease is live and the next one is not.
    await t.metadata.update((s) => {
      s.leases['running'] = { layers: [diffId], expiresAt: new Date(60_000).toISOString() };
    });
    assert.deepEqual((await t.manage.gc()).removedLayers, []);
    assert.ok(await t.layers.get(Digest.parse(diffId)));
    await t.metadata.update((s) => {
      s.leases['running'] = { layers: [diffId], expiresAt: new Date(0).toISOString() };
    });
    assert.deepEqual((await t.manage.gc()).removedLayers, [diffId]);
    assert.deepEqual((await t.metadata.read()).leases, {});
  });

  it('rm drops the name and gc removes only unreferenced layers', async () => {
    const a = buildImage({ layers: [{ tar: base }, { tar: top }] });
    t.publish('example.com/a', 'latest', a);
    await t.pull.execute({ image: 'example.com/a', bundle: '/a' });
    await t.manage.remove('example.com/a');
    assert.equal((await t.manage.list()).length, 0);
    assert.deepEqual((await t.manage.gc()).removedLayers, [], 'the bundle still uses both layers');
    await t.manage.removeBundle('/a');
    const gc = await t.manage.gc();
    assert.deepEqual(gc.removedLayers.sort(), a.layers.map((l) => l.diffId).sort());
    assert.equal(await t.layers.get(Digest.parse(a.layers[0]!.diffId)), undefined);
  });
});

describe('pulls killed midway', () => {
  /** A store as a pull killed by pid 999 leaves it: a lease naming its half-made bundle, the snapshot prepared. */
  async function crashedPull(t: ReturnType<typeof setup>, path: string): Promise<void> {
    await t.bundles.create(path);
    const snapshot = await t.snapshotter.prepare('dead', [], `${path}/rootfs`);
    await t.metadata.update((state) => {
      state.leases['dead-lease'] = { layers: [], expiresAt: new Date(3_600_000).toISOString(), owner: 999, bundle: { path, createdDir: true, snapshot } };
    });
  }
  const alive = (pid: number): boolean => pid !== 999;

  it('the next pull undoes the dead pull\'s bundle and ends its lease; its own lease names its owner while it runs', async () => {
    const t = setup();
    const pull = new PullImage(
      { sources: [t.source], decompressor: new MemoryDecompressor(), layers: t.layers, snapshotters: [t.snapshotter], bundles: t.bundles, metadata: t.metadata, logger: silentLogger, clock: () => new Date(0), ids: counterIds(), owner: 4242, isOwnerAlive: alive },
      { hostPlatform: Platform.parse('linux/amd64'), maxConcurrentLayers: 2 },
    );
    await crashedPull(t, '/dead');
    const img = buildImage({ layers: [{ tar: base }] });
    t.publish('example.com/app', 'v1', img);
    const seen: unknown[] = [];
    await pull.execute({ image: 'example.com/app:v1', bundle: '/b1', onProgress: (e) => {
      if (e.type === 'layer-state') void t.metadata.read().then((s) => seen.push(...Object.values(s.leases).map((l) => [l.owner, l.bundle?.path])));
    } });
    assert.equal(t.bundles.bundles.has('/dead'), false, 'the half-made bundle is removed');
    // And pulling into the dead pull's own path again works: its leftovers are undone first.
    await crashedPull(t, '/again');
    await pull.execute({ image: 'example.com/app:v1', bundle: '/again' });
    assert.ok(t.bundles.bundles.get('/again')?.config);
    assert.equal(t.snapshotter.prepared.has('/dead/rootfs'), false, 'its snapshot is undone');
    assert.deepEqual((await t.metadata.read()).leases, {});
    assert.ok(seen.some((x) => JSON.stringify(x) === JSON.stringify([4242, '/b1'])), `the running pull's lease: ${JSON.stringify(seen)}`);
    // Whatever the pull made itself is untouched.
    assert.ok(t.bundles.bundles.get('/b1')?.config);
  });

  it('gc reclaims it too, but never a bundle that a live lease or a record now names', async () => {
    const t = setup();
    const manage = new ManageImages({ metadata: t.metadata, layers: t.layers, snapshotters: [t.snapshotter], bundles: t.bundles, logger: silentLogger, clock: () => new Date(0), isOwnerAlive: alive });
    await crashedPull(t, '/dead');
    await t.metadata.update((state) => {
      state.leases['live'] = { layers: [], expiresAt: new Date(3_600_000).toISOString(), owner: 1, bundle: { path: '/dead', createdDir: true, snapshot: { snapshotter: 'copy', rootfs: '/dead/rootfs', id: 'x' } } };
    });
    await manage.gc();
    assert.equal(t.bundles.bundles.has('/dead'), true, 'a live pull now owns the path');
    assert.deepEqual(Object.keys((await t.metadata.read()).leases), ['live']);
    await assert.rejects(new PullImage(
      { sources: [t.source], decompressor: new MemoryDecompressor(), layers: t.layers, snapshotters: [t.snapshotter], bundles: t.bundles, metadata: t.metadata, logger: silentLogger, clock: () => new Date(0), ids: counterIds(), isOwnerAlive: alive },
      { hostPlatform: Platform.parse('linux/amd64'), maxConcurrentLayers: 2 },
    ).execute({ image: 'example.com/app:v1', bundle: '/dead' }), code('BUNDLE_EXISTS'));

    const u = setup();
    const gc = new ManageImages({ metadata: u.metadata, layers: u.layers, snapshotters: [u.snapshotter], bundles: u.bundles, logger: silentLogger, clock: () => new Date(0), isOwnerAlive: alive });
    await crashedPull(u, '/dead');
    await gc.gc();
    assert.equal(u.bundles.bundles.has('/dead'), false);
    assert.deepEqual((await u.metadata.read()).leases, {});
  });
});

describe('PullImage short names', () => {
  function withSearch(search: string[], aliases: Record<string, string> = {}) {
    const t = setup();
    const conf = RegistriesConf.fromObject({ 'unqualified-search-registries': search, aliases }, 'test.conf');
    const pull = new PullImage(
      { sources: [t.source], decompressor: new MemoryDecompressor(), layers: t.layers, snapshotters: [t.snapshotter], bundles: t.bundles, metadata: t.metadata, logger: silentLogger, clock: () => new Date(0), ids: counterIds(), registries: async () => conf },
      { hostPlatform: Platform.parse('linux/amd64'), maxConcurrentLayers: 2 },
    );
    return { ...t, pull };
  }
  const img = buildImage({ layers: [{ tar: base }] });

  it('tries each search registry in order and records the name it was found under', async () => {
    const t = withSearch(['one.example', 'two.example', 'three.example']);
    t.publish('two.example/app', 'v1', img);
    t.publish('three.example/app', 'v1', buildImage({ layers: [{ tar: top }] }));
    const r = await t.pull.execute({ image: 'app:v1', bundle: '/b1' });
    assert.equal(r.reference, 'two.example/app:v1');
    assert.equal(r.manifestDigest, img.manifestDigest);
    assert.deepEqual((await t.metadata.read()).images[img.manifestDigest]?.names, ['two.example/app:v1']);
    const stored = await t.pull.pullToStore({ image: 'app:v1' });
    assert.equal(stored.reference, 'two.example/app:v1');
  });

  it('an alias wins; a qualified name is never searched', async () => {
    const t = withSearch(['one.example'], { app: 'alias.example/team/app' });
    t.publish('alias.example/team/app', 'v1', img);
    t.publish('one.example/app', 'v1', buildImage({ layers: [{ tar: top }] }));
    assert.equal((await t.pull.execute({ image: 'app:v1', bundle: '/b1' })).reference, 'alias.example/team/app:v1');
    await assert.rejects(t.pull.execute({ image: 'elsewhere.example/app:v1', bundle: '/b2' }), code('NOT_FOUND'));
  });

  it('found nowhere: every registry is named, nothing is left behind', async () => {
    const t = withSearch(['one.example', 'two.example']);
    await assert.rejects(t.pull.execute({ image: 'app', bundle: '/b1' }), (e: unknown) =>
      e instanceof ImageTsError && e.code === 'NOT_FOUND' && /short name app resolved nowhere: one\.example\/app:latest: .*; two\.example\/app:latest: /.test(e.message));
    assert.equal(t.bundles.bundles.has('/b1'), false);
    assert.deepEqual((await t.metadata.read()).leases, {});
  });
});

describe('PullImage global download bound', () => {
  it('maxConcurrentDownloads bounds layer downloads across concurrent pulls', async () => {
    const t = setup();
    const bounded = new PullImage(
      { sources: [t.source], decompressor: new MemoryDecompressor(), layers: t.layers, snapshotters: [t.snapshotter], bundles: t.bundles, metadata: t.metadata, logger: silentLogger, clock: () => new Date(0), ids: counterIds() },
      { hostPlatform: Platform.parse('linux/amd64'), maxConcurrentLayers: 3, maxConcurrentDownloads: 1 },
    );
    let active = 0;
    let peak = 0;
    const stage = t.layers.stage.bind(t.layers);
    t.layers.stage = async (diffId) => {
      const w = await stage(diffId);
      active++;
      peak = Math.max(peak, active);
      const done = <T>(p: Promise<T>): Promise<T> => p.finally(() => active--);
      return { sink: w.sink, commit: () => done(w.commit()), abort: () => done(w.abort()) };
    };
    const a = buildImage({ layers: [{ tar: tarOf([file('a1', '1')]) }, { tar: tarOf([file('a2', '2')]) }] });
    const b = buildImage({ layers: [{ tar: tarOf([file('b1', '1')]) }, { tar: tarOf([file('b2', '2')]) }] });
    t.publish('example.com/a', 'v1', a);
    t.publish('example.com/b', 'v1', b);
    await Promise.all([bounded.execute({ image: 'example.com/a:v1', bundle: '/ba' }), bounded.execute({ image: 'example.com/b:v1', bundle: '/bb' })]);
    assert.equal(peak, 1);
    for (const l of [...a.layers, ...b.layers]) assert.ok(await t.layers.get(Digest.parse(l.diffId)));
  });
});

describe('PullImage unpack limits', () => {
  const limited = (t: ReturnType<typeof setup>, limits: import('../../src/domain/layer/unpack-limits.js').UnpackLimits) => new PullImage(
    { sources: [t.source], decompressor: new MemoryDecompressor(), layers: t.layers, snapshotters: [t.snapshotter], bundles: t.bundles, metadata: t.metadata, logger: silentLogger, clock: () => new Date(0), ids: counterIds() },
    { hostPlatform: Platform.parse('linux/amd64'), maxConcurrentLayers: 1, limits },
  );
  const kib = (name: string, n: number) => tarOf([file(name, 'x'.repeat(n * 1024))]);
  const limitError = (name: string) => (e: unknown) => e instanceof ImageTsError && e.code === 'LIMIT_EXCEEDED' && e.message.endsWith(`(${name})`);

  it('a layer past max_unpacked_bytes_per_layer stops the pull; layers under it pass', async () => {
    const t = setup();
    const img = buildImage({ layers: [{ tar: kib('small', 4) }, { tar: kib('big', 64) }] });
    t.publish('example.com/app', 'v1', img);
    await assert.rejects(limited(t, { maxUnpackedBytesPerLayer: 32 * 1024 }).execute({ image: 'example.com/app:v1', bundle: '/b' }), limitError('max_unpacked_bytes_per_layer'));
    assert.deepEqual(await t.layers.list(), [], 'the small layer it committed is taken back');
    assert.equal(t.bundles.bundles.size, 0);
    assert.deepEqual((await t.metadata.read()).leases, {});
    await limited(t, { maxUnpackedBytesPerLayer: 128 * 1024 }).execute({ image: 'example.com/app:v1', bundle: '/b' });
  });

  it('max_unpacked_bytes_per_image sums layers from the store, from other pulls and from this one', async () => {
    const t = setup();
    const shared = kib('shared', 20);
    t.publish('example.com/base', 'v1', buildImage({ layers: [{ tar: shared }] }));
    await t.pull.execute({ image: 'example.com/base:v1', bundle: '/base' });
    t.publish('example.com/app', 'v1', buildImage({ layers: [{ tar: shared }, { tar: kib('own', 20) }] }));
    await assert.rejects(limited(t, { maxUnpackedBytesPerImage: 30 * 1024 }).execute({ image: 'example.com/app:v1', bundle: '/b' }), limitError('max_unpacked_bytes_per_image'));
    assert.equal((await t.layers.list()).length, 1, 'the shared layer stays; it is the base image\'s');
    await limited(t, { maxUnpackedBytesPerImage: 50 * 1024 }).execute({ image: 'example.com/app:v1', bundle: '/b' });
  });

  it('entry and path limits reach the layer store', async () => {
    const t = setup();
    t.publish('example.com/app', 'v1', buildImage({ layers: [{ tar: tarOf([file('a', '1'), file('b', '2'), file('c', '3')]) }] }));
    await assert.rejects(limited(t, { maxEntriesPerLayer: 2 }).pullToStore({ image: 'example.com/app:v1' }), limitError('max_entries_per_layer'));
    await assert.rejects(limited(t, { maxPathBytes: 0 }).pullToStore({ image: 'example.com/app:v1' }), limitError('max_path_bytes'));
    assert.deepEqual(await t.layers.list(), []);
  });
});

describe('PullImage across processes sharing a store', () => {
  it('waits while another process produces a layer, then reuses its commit without fetching', async () => {
    const t = setup();
    const img = buildImage({ layers: [{ tar: base }] });
    t.publish('example.com/app', 'v1', img);
    const diffId = Digest.parse(img.layers[0]!.diffId);
    const other = await t.layers.tryIngest(diffId);
    assert.ok(other);
    const pulling = t.pull.execute({ image: 'example.com/app:v1', bundle: '/b' });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(t.source.blobFetches.get(img.layers[0]!.digest) ?? 0, 0, 'no fetch while the other process holds the layer');
    // The other process commits it, then lets go.
    const writer = await t.layers.stage(diffId);
    const { Readable } = await import('node:stream');
    const { pipeline } = await import('node:stream/promises');
    await pipeline(Readable.from([base]), writer.sink);
    await writer.commit();
    other.release();
    const r = await pulling;
    assert.deepEqual(r.layers.map((l) => l.fetched), [false]);
    assert.equal(t.source.blobFetches.get(img.layers[0]!.digest) ?? 0, 0);
  });

  it('fetches the layer itself when the other process gives up without committing', async () => {
    const t = setup();
    const img = buildImage({ layers: [{ tar: base }] });
    t.publish('example.com/app', 'v1', img);
    const other = await t.layers.tryIngest(Digest.parse(img.layers[0]!.diffId));
    const pulling = t.pull.execute({ image: 'example.com/app:v1', bundle: '/b' });
    await new Promise((r) => setTimeout(r, 100));
    other!.release();
    const r = await pulling;
    assert.deepEqual(r.layers.map((l) => l.fetched), [true]);
    assert.equal(t.source.blobFetches.get(img.layers[0]!.digest), 1);
  });
});
