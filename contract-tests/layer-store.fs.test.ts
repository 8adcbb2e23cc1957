import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { FsLayerStore } from '../src/adapters/outbound/layer-store/fs-layer-store.js';
import { Digest } from '../src/domain/image/digest.js';
import type { WhiteoutFormat } from '../src/ports/layer/layer-store.js';
import { erofsOnly } from '../test/helpers/erofs-only-store.js';
import { tar } from '../test/helpers/tar-writer.js';
import { layerStoreContract } from './layer-store.contract.js';

for (const whiteoutFormat of ['overlay', 'marker'] as const satisfies readonly WhiteoutFormat[]) {
  for (const unpackIn of ['worker', 'main'] as const) {
    layerStoreContract(`FsLayerStore (${whiteoutFormat}, unpack in ${unpackIn})`, async () => {
      const root = await mkdtemp(join(tmpdir(), 'image-ts-ls-'));
      return {
        store: new FsLayerStore(root, { whiteoutFormat, unpackIn }),
        teardown: () => rm(root, { recursive: true, force: true }),
      };
    });
  }
}

// Layers committed as EROFS images (what the erofs snapshotter asks for), each
// checked to be one. The suite reads nothing through layer.path, so an image
// needs no reader here.
layerStoreContract('FsLayerStore (erofs)', async () => {
  assert.equal(process.getuid?.(), 0, 'erofs layers need root (overlay whiteouts in the image)');
  const root = await mkdtemp(join(tmpdir(), 'image-ts-ls-'));
  return {
    store: erofsOnly(new FsLayerStore(root, { whiteoutFormat: 'overlay', defaultFormat: 'erofs' })),
    teardown: () => rm(root, { recursive: true, force: true }),
  };
});

describe('FsLayerStore on disk', () => {
  it('cleanStaging() removes what dead processes left and keeps what live ones stage', async () => {
    const root = await mkdtemp(join(tmpdir(), 'image-ts-ls-'));
    try {
      const store = new FsLayerStore(root, { whiteoutFormat: 'marker' });
      const live = await store.stage(Digest.of('live'));
      // pid 999999999 cannot exist (pid_max is at most 2^22); an unnamed entry has no owner at all.
      for (const stale of ['999999999-deadbeef', '999999999-cafe.rm', 'garbage']) {
        await mkdir(join(root, 'staging', stale, 'diff', 'etc'), { recursive: true });
        await writeFile(join(root, 'staging', stale, 'diff', 'etc', 'f'), 'x');
      }
      assert.equal(await store.cleanStaging(), 3);
      assert.equal((await readdir(join(root, 'staging'))).length, 1, 'the live staging stays');
      await live.abort();
      assert.deepEqual(await readdir(join(root, 'staging')), []);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('commits to layers/sha256/<hex>/ with diff/ and layer.json, and leaves staging empty', async () => {
    const root = await mkdtemp(join(tmpdir(), 'image-ts-ls-'));
    try {
      const store = new FsLayerStore(root, { whiteoutFormat: 'marker' });
      const bytes = tar([{ name: 'x', content: 'x' }]);
      const diffId = Digest.of(bytes);
      const writer = await store.stage(diffId);
      await pipeline(Readable.from([bytes]), writer.sink);
      const layer = await writer.commit();
      assert.equal(layer.path, join(root, 'layers', 'sha256', diffId.encoded, 'diff'));
      assert.deepEqual((await readdir(join(root, 'layers', 'sha256', diffId.encoded))).sort(), ['diff', 'layer.json']);
      assert.deepEqual(await readdir(join(root, 'staging')), []);
      // A directory without layer.json is not a committed layer.
      await rm(join(root, 'layers', 'sha256', diffId.encoded, 'layer.json'));
      assert.equal(await store.get(diffId), undefined);
      assert.deepEqual(await store.list(), []);
      // ... and a later commit replaces it.
      const again = await store.stage(diffId);
      await pipeline(Readable.from([bytes]), again.sink);
      assert.equal((await again.commit()).entries, 1);
      assert.ok(await store.get(diffId));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('probes overlay whiteouts when running as root', async () => {
    const root = await mkdtemp(join(tmpdir(), 'image-ts-ls-'));
    try {
      const store = new FsLayerStore(root);
      assert.equal(store.whiteoutFormat, process.getuid?.() === 0 ? 'overlay' : 'marker');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('FsLayerStore, erofs format', () => {
  it('commits one EROFS image with its sha256 and a dm-verity tree that veritysetup accepts, and no tree', async () => {
    assert.equal(process.getuid?.(), 0, 'erofs layers need root');
    const { createHash } = await import('node:crypto');
    const { readFile } = await import('node:fs/promises');
    const { veritysetupVerify } = await import('../src/adapters/outbound/erofs/verity.js');
    const root = await mkdtemp(join(tmpdir(), 'image-ts-ls-'));
    try {
      const store = new FsLayerStore(root, { whiteoutFormat: 'overlay' });
      const bytes = tar([{ name: 'etc/', type: 'dir' }, { name: 'etc/os-release', content: 'ID=test\n'.repeat(500) }, { name: '.wh.gone', content: '' }]);
      const diffId = Digest.of(bytes);
      const writer = await store.stage(diffId, { format: 'erofs' });
      await pipeline(Readable.from([bytes]), writer.sink);
      const layer = await writer.commit();
      const dir = join(root, 'layers', 'sha256', diffId.encoded);
      assert.equal(layer.format, 'erofs');
      assert.equal(layer.path, join(dir, 'layer.erofs'));
      assert.deepEqual((await readdir(dir)).sort(), ['layer.erofs', 'layer.json', 'layer.verity']);
      assert.deepEqual(await readdir(join(root, 'staging')), []);
      const image = await readFile(layer.path);
      assert.equal(layer.image?.sha256, createHash('sha256').update(image).digest('hex'));
      assert.equal(layer.image?.bytes, image.length);
      assert.equal(layer.image?.compression, 'lz4');
      const verity = layer.image?.verity;
      assert.ok(verity);
      assert.equal(verity.dataBlocks * 4096, image.length);
      assert.equal(await veritysetupVerify(layer.path, verity.hashPath, verity.rootHash), true);
      // What get() reads back from layer.json is what commit returned.
      assert.deepEqual(await store.get(diffId), layer);
      const footprint = await store.footprint(diffId);
      assert.equal(footprint?.format, 'erofs');
      assert.ok(footprint.bytes >= image.length && footprint.bytes < image.length + 64 * 1024, `${footprint.bytes} bytes for a ${image.length}-byte image`);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('refuses the erofs format without root-made whiteouts, before any byte', async () => {
    const root = await mkdtemp(join(tmpdir(), 'image-ts-ls-'));
    try {
      const store = new FsLayerStore(root, { whiteoutFormat: 'marker' });
      await assert.rejects(store.stage(Digest.of('x'), { format: 'erofs' }), { code: 'UNSUPPORTED' });
      assert.deepEqual(await store.list(), []);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
