import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { Digest } from '../src/domain/image/digest.js';
import type { LayerStore, LayerWriter } from '../src/ports/layer/layer-store.js';
import { tar } from '../test/helpers/tar-writer.js';

export interface LayerStoreFixture {
  store: LayerStore;
  teardown(): Promise<void>;
}

const tarA = tar([
  { name: 'etc/', type: 'dir' },
  { name: 'etc/hostname', content: 'a\n' },
  { name: 'bin/sh', content: '#!x' },
]);
const tarB = tar([{ name: 'b.txt', content: 'bbbb' }]);
const diffA = Digest.of(tarA);
const diffB = Digest.of(tarB);

async function fill(writer: LayerWriter, bytes: Buffer): Promise<void> {
  await pipeline(Readable.from([bytes]), writer.sink);
}

async function stageAndCommit(store: LayerStore, diffId: Digest, bytes: Buffer) {
  const writer = await store.stage(diffId);
  await fill(writer, bytes);
  return writer.commit();
}

/** What every LayerStore must do; the pull use case relies on exactly this. */
export function layerStoreContract(name: string, makeStore: () => Promise<LayerStoreFixture>): void {
  describe(`LayerStore contract: ${name}`, () => {
    const withStore = (fn: (store: LayerStore) => Promise<void>) => async () => {
      const f = await makeStore();
      try {
        await fn(f.store);
      } finally {
        await f.teardown();
      }
    };

    it('stage + commit makes get() return the layer', withStore(async (store) => {
      assert.equal(await store.get(diffA), undefined);
      const committed = await stageAndCommit(store, diffA, tarA);
      assert.ok(committed.diffId.equals(diffA));
      assert.equal(committed.entries, 3);
      assert.equal(committed.size, 5);
      assert.equal(committed.whiteoutFormat, store.whiteoutFormat);
      const got = await store.get(diffA);
      assert.ok(got);
      assert.ok(got.diffId.equals(diffA));
      assert.equal(got.path, committed.path);
      assert.equal(got.entries, 3);
      assert.equal(got.size, 5);
      assert.equal(got.whiteoutFormat, committed.whiteoutFormat);
    }));

    it('a layer past its entry or path limit fails with LIMIT_EXCEEDED naming the limit, and abort leaves nothing', withStore(async (store) => {
      const cases = [
        { limits: { maxEntriesPerLayer: 2 }, name: 'max_entries_per_layer' },
        { limits: { maxPathBytes: 8 }, name: 'max_path_bytes' },
      ];
      for (const { limits, name } of cases) {
        const writer = await store.stage(diffA, { limits });
        await assert.rejects(fill(writer, tarA), (err: { code?: string; message?: string }) => {
          assert.equal(err.code, 'LIMIT_EXCEEDED');
          assert.match(err.message ?? '', new RegExp(name));
          return true;
        });
        await writer.abort();
        assert.equal(await store.get(diffA), undefined);
        assert.deepEqual(await store.list(), []);
      }
      // At the limit is within it.
      const writer = await store.stage(diffA, { limits: { maxEntriesPerLayer: 3, maxPathBytes: 'etc/hostname'.length } });
      await fill(writer, tarA);
      assert.equal((await writer.commit()).entries, 3);
    }));

    it('records the uncompressed stream length of a layer', withStore(async (store) => {
      const committed = await stageAndCommit(store, diffB, tarB);
      assert.equal(committed.unpackedBytes, tarB.length);
      assert.equal((await store.get(diffB))?.unpackedBytes, tarB.length);
    }));

    it('one ingest of a layer at a time: waitIngest ends when it is released, or rejects when its signal aborts', withStore(async (store) => {
      const held = await store.tryIngest(diffA);
      assert.ok(held);
      assert.equal(await store.tryIngest(diffA), undefined);
      const other = await store.tryIngest(diffB);
      assert.ok(other, 'another layer is not held up');
      other.release();
      let ended = false;
      const waiting = store.waitIngest(diffA).then(() => {
        ended = true;
      });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(ended, false);
      const controller = new AbortController();
      const aborted = store.waitIngest(diffA, controller.signal);
      controller.abort(new Error('gave up'));
      await assert.rejects(aborted, /gave up/);
      held.release();
      held.release(); // twice is harmless
      await waiting;
      const again = await store.tryIngest(diffA);
      assert.ok(again);
      again.release();
    }));

    it('abort leaves nothing behind', withStore(async (store) => {
      const writer = await store.stage(diffA);
      await fill(writer, tarA);
      await writer.abort();
      await writer.abort(); // twice is fine
      assert.equal(await store.get(diffA), undefined);
      assert.deepEqual(await store.list(), []);
      assert.equal(await store.cleanStaging(), 0);
    }));

    it('abort of a half-written layer leaves nothing behind', withStore(async (store) => {
      const writer = await store.stage(diffA);
      writer.sink.write(tarA.subarray(0, 700));
      await writer.abort();
      assert.equal(await store.get(diffA), undefined);
      assert.equal(await store.cleanStaging(), 0);
    }));

    it('a staged but uncommitted layer is invisible', withStore(async (store) => {
      const writer = await store.stage(diffA);
      await fill(writer, tarA);
      assert.equal(await store.get(diffA), undefined);
      assert.deepEqual(await store.list(), []);
      await writer.abort();
    }));

    it('commit before the stream ended fails', withStore(async (store) => {
      const writer = await store.stage(diffA);
      writer.sink.write(tarA.subarray(0, 512));
      await assert.rejects(writer.commit(), (err: { code?: string }) => typeof err.code === 'string');
      await writer.abort();
      assert.equal(await store.get(diffA), undefined);
    }));

    it('committing an already committed diff_id returns the existing layer', withStore(async (store) => {
      const first = await store.stage(diffA);
      const second = await store.stage(diffA);
      await fill(first, tarA);
      // Different bytes under the same diff_id: whoever commits first wins.
      await fill(second, tarB);
      const a = await first.commit();
      const b = await second.commit();
      assert.equal(b.path, a.path);
      assert.equal(b.entries, 3);
      assert.deepEqual((await store.list()).map(String), [diffA.toString()]);
      assert.equal(await store.cleanStaging(), 0, 'the loser left no staging behind');
    }));

    it('remove() deletes a layer; removing an absent one is a no-op', withStore(async (store) => {
      await stageAndCommit(store, diffA, tarA);
      await stageAndCommit(store, diffB, tarB);
      await store.remove(diffA);
      assert.equal(await store.get(diffA), undefined);
      assert.ok(await store.get(diffB));
      await store.remove(diffA);
      assert.deepEqual((await store.list()).map(String), [diffB.toString()]);
    }));

    it('list() returns every committed layer', withStore(async (store) => {
      assert.deepEqual(await store.list(), []);
      await stageAndCommit(store, diffA, tarA);
      await stageAndCommit(store, diffB, tarB);
      const pending = await store.stage(Digest.of('pending'));
      await fill(pending, tarB);
      assert.deepEqual((await store.list()).map(String).sort(), [diffA.toString(), diffB.toString()].sort());
      await pending.abort();
    }));

    it('cleanStaging() leaves the staging of a pull that is still running', withStore(async (store) => {
      const w1 = await store.stage(diffA);
      await fill(w1, tarA);
      assert.equal(await store.cleanStaging(), 0);
      const committed = await w1.commit();
      assert.equal(committed.diffId.toString(), diffA.toString());
      assert.ok(await store.get(diffA));
    }));
  });
}
