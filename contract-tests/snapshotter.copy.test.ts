import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { FsLayerStore } from '../src/adapters/outbound/layer-store/fs-layer-store.js';
import { CopySnapshotter } from '../src/adapters/outbound/snapshot/copy-snapshotter.js';
import { Digest } from '../src/domain/image/digest.js';
import { tar } from '../test/helpers/tar-writer.js';
import { snapshotterContract } from './snapshotter.contract.js';

for (const whiteoutFormat of ['overlay', 'marker'] as const) {
  snapshotterContract(`CopySnapshotter (${whiteoutFormat} whiteouts)`, async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'image-ts-copy-'));
    return {
      snapshotter: new CopySnapshotter(),
      layers: new FsLayerStore(workDir, { whiteoutFormat }),
      workDir,
      teardown: () => rm(workDir, { recursive: true, force: true }),
    };
  });
}

describe('CopySnapshotter', () => {
  it('keeps owners, xattrs (not trusted.overlay.*), devices, and hard links within a layer', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'image-ts-copy-'));
    try {
      const store = new FsLayerStore(workDir, { whiteoutFormat: 'overlay' });
      const bytes = tar([
        { name: 'd/', type: 'dir' },
        { name: 'd/.wh..wh..opq', content: '' },
        { name: 'd/f', content: 'f', uid: 1234, gid: 5678, xattrs: { 'user.k': 'v' } },
        { name: 'd/g', type: 'hardlink', linkname: 'd/f' },
        { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      ]);
      const writer = await store.stage(Digest.of(bytes));
      await pipeline(Readable.from([bytes]), writer.sink);
      const committed = await writer.commit();
      const rootfs = join(workDir, 'rootfs');
      const snapshotter = new CopySnapshotter();
      const record = await snapshotter.prepare('x', [committed], rootfs);
      const f = fs.statSync(join(rootfs, 'd/f'));
      if (process.getuid?.() === 0) {
        assert.equal(`${f.uid}:${f.gid}`, '1234:5678');
        const nul = fs.lstatSync(join(rootfs, 'dev/null'));
        assert.ok(nul.isCharacterDevice());
        assert.equal(nul.rdev, fs.statSync('/dev/null').rdev);
      }
      assert.equal(fs.statSync(join(rootfs, 'd/g')).ino, f.ino);
      const { nativeSyscalls } = await import('../src/adapters/outbound/native/syscalls.js');
      assert.equal(nativeSyscalls().lgetxattr(join(rootfs, 'd/f'), 'user.k')?.toString(), 'v');
      assert.equal(nativeSyscalls().lgetxattr(join(rootfs, 'd'), 'trusted.overlay.opaque'), null);
      await snapshotter.remove(record);
      assert.equal(fs.existsSync(rootfs), false);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
