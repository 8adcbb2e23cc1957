import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ImageRecord, MetadataStore } from '../src/ports/store/metadata-store.js';

const image = (digest: string, names: string[]): ImageRecord => ({
  names,
  manifestDigest: digest,
  configDigest: `sha256:${'c'.repeat(64)}`,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  platform: 'linux/amd64',
  layers: [{ digest: `sha256:${'d'.repeat(64)}`, diffId: `sha256:${'e'.repeat(64)}`, mediaType: 'x', size: 1 }],
  size: 10,
  pulledAt: new Date(0).toISOString(),
});

export interface MetadataStoreFixture {
  /** An empty store. */
  readonly store: MetadataStore;
  /** The same store opened afresh (a new process), or the same object for one that lives in memory. */
  reopen(): Promise<MetadataStore>;
  teardown(): Promise<void>;
}

/** What every MetadataStore must do: start empty, persist updates, serialize them, and roll back failures. */
export function metadataStoreContract(name: string, make: () => Promise<MetadataStoreFixture>): void {
  describe(`MetadataStore contract: ${name}`, () => {
    it('starts empty', async () => {
      const { store, teardown } = await make();
      const s = await store.read();
      assert.deepEqual([s.images, s.layers, s.bundles], [{}, {}, {}]);
      await teardown();
    });
    it('keeps what an update wrote, also when reopened', async () => {
      const { store, reopen, teardown } = await make();
      const d = `sha256:${'1'.repeat(64)}`;
      const result = await store.update((s) => {
        s.images[d] = image(d, ['a:1']);
        return 'ok';
      });
      assert.equal(result, 'ok');
      assert.deepEqual((await store.read()).images[d]?.names, ['a:1']);
      assert.deepEqual((await (await reopen()).read()).images[d]?.names, ['a:1']);
      await teardown();
    });
    it('serializes concurrent updates so none is lost', async () => {
      const { store, teardown } = await make();
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.update(async (s) => {
        const d = `sha256:${i.toString(16).padStart(64, '0')}`;
        await new Promise((r) => setTimeout(r, 1));
        s.images[d] = image(d, [`n${i}`]);
      })));
      assert.equal(Object.keys((await store.read()).images).length, 20);
      await teardown();
    });
    it('leaves the state untouched when a mutation throws', async () => {
      const { store, teardown } = await make();
      const d = `sha256:${'2'.repeat(64)}`;
      await assert.rejects(store.update((s) => {
        s.images[d] = image(d, ['x']);
        throw new Error('boom');
      }), /boom/);
      assert.equal((await store.read()).images[d], undefined);
      await store.update((s) => {
        s.images[d] = image(d, ['y']);
      });
      assert.deepEqual((await store.read()).images[d]?.names, ['y']);
      await teardown();
    });
    it('hands out copies: changing a read result changes nothing', async () => {
      const { store, teardown } = await make();
      const s = await store.read();
      s.images['x'] = image('x', ['z']);
      assert.equal((await store.read()).images['x'], undefined);
      await teardown();
    });
  });
}
