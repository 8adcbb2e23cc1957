/**
 * Wrong on purpose: a snapshotter whose remove() fails the second time,
 * so a retried cleanup (after a crash half way) can never finish.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageTsError } from '../../src/domain/errors.js';
import type { SnapshotRecord } from '../../src/ports/snapshot/snapshotter.js';
import { MemoryLayerStore } from '../../test/mocks/memory-layer-store.js';
import { MemorySnapshotter } from '../../test/mocks/memory-snapshot.js';
import { snapshotterRecordContract } from '../snapshotter-record.contract.js';

class RemoveOnce extends MemorySnapshotter {
  override async remove(record: SnapshotRecord): Promise<void> {
    if (!this.prepared.has(record.rootfs)) throw new ImageTsError('STORE', `snapshot ${record.id} does not exist`);
    await super.remove(record);
  }
}

snapshotterRecordContract('wrong: a snapshotter whose remove is not idempotent', async () => {
  const workDir = await mkdtemp(join(tmpdir(), 'image-ts-wrong-snaprec-'));
  return { snapshotter: new RemoveOnce(), layers: new MemoryLayerStore(), workDir, teardown: () => rm(workDir, { recursive: true, force: true }) };
});
