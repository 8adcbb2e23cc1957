import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { Digest } from '../src/domain/image/digest.js';
import type { CommittedLayer, LayerStore } from '../src/ports/layer/layer-store.js';
import type { Snapshotter } from '../src/ports/snapshot/snapshotter.js';
import { tar } from '../test/helpers/tar-writer.js';

export interface SnapshotterRecordFixture {
  readonly snapshotter: Snapshotter;
  /** Where the test commits its layers. */
  readonly layers: LayerStore;
  /** A scratch directory for the rootfs. */
  readonly workDir: string;
  teardown(): Promise<void>;
}

/**
 * The part of the Snapshotter contract the pull use case relies on, which a
 * record-only mock can keep too: what a record says and how remove behaves.
 * (Union semantics on disk are snapshotter.contract.ts.)
 */
export function snapshotterRecordContract(name: string, make: () => Promise<SnapshotterRecordFixture>): void {
  describe(`Snapshotter record contract: ${name}`, () => {
    async function committed(store: LayerStore, name: string): Promise<CommittedLayer> {
      const bytes = tar([{ name, content: name, mtime: 1 }]);
      const writer = await store.stage(Digest.of(bytes));
      await pipeline(Readable.from([bytes]), writer.sink);
      return writer.commit();
    }

    it('says which snapshotter and rootfs it made, and is removable twice', async () => {
      const f = await make();
      try {
        assert.equal(await f.snapshotter.available(), true);
        const rootfs = join(f.workDir, 'rec', 'rootfs');
        mkdirSync(rootfs, { recursive: true });
        const layers = [await committed(f.layers, 'a'), await committed(f.layers, 'b')];
        const record = await f.snapshotter.prepare('rec-1', layers, rootfs);
        assert.equal(record.snapshotter, f.snapshotter.name);
        assert.equal(record.rootfs, rootfs);
        assert.equal(record.id, 'rec-1');
        assert.deepEqual(JSON.parse(JSON.stringify(record)), record, 'a record survives the metadata store (JSON)');
        await f.snapshotter.remove(record);
        await f.snapshotter.remove(record);
      } finally {
        await f.teardown();
      }
    });
  });
}
