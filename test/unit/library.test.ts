import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createImageService, ImageTsError, type ImageService, type KeyBroker, type ProgressEvent, ResourceUri } from '../../src/index.js';
import { TtrpcClient } from '../../src/adapters/outbound/rpc/ttrpc.js';
import { ProtoReader, singleString } from '../../src/adapters/outbound/rpc/protobuf.js';
import { buildImage } from '../helpers/image-builder.js';
import { tar } from '../helpers/tar-writer.js';
import { MemoryImageSourceFactory } from '../mocks/memory-image-source.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-library-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const img = buildImage({ layers: [{ tar: tar([{ name: 'etc/', type: 'dir' }, { name: 'etc/hello', content: 'from the library\n' }]) }, { tar: tar([{ name: 'app', content: 'v1' }]) }] });

function source(): MemoryImageSourceFactory {
  const s = new MemoryImageSourceFactory();
  s.put('example.com/app', 'v1', { bytes: img.manifest, digest: img.manifestDigest, mediaType: img.manifestMediaType }, img.blobs);
  return s;
}

/** A broker of the embedding program's own: what serve's GetResource must answer with. */
class MapBroker implements KeyBroker {
  readonly description = 'the embedder\'s broker';
  async getResource(uri: ResourceUri): Promise<Buffer> {
    return Buffer.from(`resource ${uri.path}`);
  }
}

describe('createImageService', () => {
  let service: ImageService;
  before(async () => {
    service = await createImageService({
      config: { work_dir: join(dir, 'work'), snapshotter: 'copy' },
      adapters: { imageSources: [source()], keyBroker: new MapBroker() },
    });
  });
  after(async () => {
    await service.close();
  });

  it('pull resolves to what pull --json prints, with typed progress events', async () => {
    const events: ProgressEvent[] = [];
    const bundle = join(dir, 'b1');
    const r = await service.pull('example.com/app:v1', bundle, { onProgress: (e) => events.push(e) });
    assert.deepEqual(Object.keys(r).sort(), ['bundle', 'configDigest', 'layers', 'manifestDigest', 'reference']);
    assert.equal(r.manifestDigest, img.manifestDigest);
    assert.deepEqual(r.layers, img.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.bytes.length })));
    assert.ok(existsSync(join(bundle, 'rootfs', 'etc', 'hello')) && existsSync(join(bundle, 'config.json')));
    for (const l of img.layers) {
      const states = events.filter((e) => e.type === 'layer-state' && e.digest === l.digest).map((e) => e.type === 'layer-state' && e.state);
      assert.deepEqual(states, ['fetching', 'verifying', 'committed'], l.digest);
    }
    assert.equal(events.at(-1)?.type, 'done');
  });

  it('list, inspect, removeBundle, remove and gc', async () => {
    assert.deepEqual((await service.list()).map((i) => i.manifestDigest), [img.manifestDigest]);
    assert.equal((await service.inspect('example.com/app:v1')).image.manifestDigest, img.manifestDigest);
    await service.removeBundle(join(dir, 'b1'));
    assert.equal(existsSync(join(dir, 'b1', 'rootfs', 'etc')), false);
    await service.remove('example.com/app:v1');
    assert.equal((await service.gc()).removedLayers.length, 2);
  });

  it('an aborted pull rejects with an ImageTsError and leaves nothing behind', async () => {
    const controller = new AbortController();
    const bundle = join(dir, 'aborted');
    const pulling = service.pull('example.com/app:v1', bundle, {
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type === 'layer-state' && e.state === 'fetching') controller.abort(new Error('the embedder gave up'));
      },
    });
    await assert.rejects(pulling, (e: unknown) => e instanceof ImageTsError);
    assert.equal(existsSync(bundle), false);
    assert.deepEqual(readdirSync(join(dir, 'work', 'staging')), []);
    assert.deepEqual(await service.list(), []);
  });

  it('failures are ImageTsError with the README\'s codes', async () => {
    await assert.rejects(service.pull('example.com/app:missing', join(dir, 'nf')), (e: unknown) => e instanceof ImageTsError && e.code === 'NOT_FOUND');
    await assert.rejects(service.pull('UPPER/case', join(dir, 'bad')), (e: unknown) => e instanceof ImageTsError && e.code === 'INVALID_REFERENCE');
    await assert.rejects(service.inspect('nothing:here'), (e: unknown) => e instanceof ImageTsError && e.code === 'NOT_FOUND');
  });

  it('serve answers GetResource from the embedder\'s broker, and close() stops it', async () => {
    const sock = join(dir, 'srv', 'cdh.sock');
    const handle = await service.serve({ cdhTtrpc: [`unix://${sock}`] });
    const client = new TtrpcClient(`unix://${sock}`);
    try {
      const out = await client.unary('api.GetResourceService', 'GetResource', singleString('kbs:///default/thing/1'));
      assert.equal(ProtoReader.decode(out).bytes(1).toString(), 'resource default/thing/1');
    } finally {
      client.close();
      await handle.close();
    }
    assert.equal(existsSync(sock), false);
  });

  it('refuses a malformed config with CONFIG_FILE_INVALID', async () => {
    await assert.rejects(createImageService({ config: { snapshotter: 'zfs' } }), (e: unknown) => e instanceof ImageTsError && e.code === 'CONFIG_FILE_INVALID');
    await assert.rejects(createImageService({ config: { profile: 'nowhere' } }), (e: unknown) => e instanceof ImageTsError && e.code === 'CONFIG_FILE_INVALID');
  });
});
