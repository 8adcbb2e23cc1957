import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FsLayerStore } from '../src/adapters/outbound/layer-store/fs-layer-store.js';
import { UmountFlags, nativeSyscalls } from '../src/adapters/outbound/native/syscalls.js';
import { OverlaySnapshotter } from '../src/adapters/outbound/snapshot/overlay-snapshotter.js';
import { Digest } from '../src/domain/image/digest.js';
import { snapshotterContract } from './snapshotter.contract.js';

// Not skipped anywhere: CI runs as root on a kernel with overlayfs, and a
// missing prerequisite must fail loudly rather than pass quietly.
function assertPrerequisites(): void {
  assert.equal(process.getuid?.(), 0, 'the overlay snapshotter tests need root');
  assert.match(fs.readFileSync('/proc/filesystems', 'utf8'), /\toverlay$/m, 'the kernel has no overlayfs');
}

/** Detaches anything a failed test left mounted under dir, so rm -rf cannot reach through a mount. */
function unmountBelow(dir: string): void {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  for (const m of mounts.filter((m) => m.startsWith(`${dir}/`)).reverse()) nativeSyscalls().umount2(m, UmountFlags.MNT_DETACH);
}

snapshotterContract('OverlaySnapshotter', async () => {
  assertPrerequisites();
  const workDir = await mkdtemp(join(tmpdir(), 'image-ts-overlay-'));
  return {
    snapshotter: new OverlaySnapshotter(workDir),
    layers: new FsLayerStore(workDir, { whiteoutFormat: 'overlay' }),
    workDir,
    teardown: async () => {
      unmountBelow(workDir);
      await rm(workDir, { recursive: true, force: true });
    },
  };
});

describe('OverlaySnapshotter', () => {
  it('mounts, keeps per-bundle writes in upper/, and unmounts', async () => {
    assertPrerequisites();
    const workDir = await mkdtemp(join(tmpdir(), 'image-ts-overlay-'));
    try {
      const store = new FsLayerStore(workDir, { whiteoutFormat: 'overlay' });
      const { tar } = await import('../test/helpers/tar-writer.js');
      const { Readable } = await import('node:stream');
      const { pipeline } = await import('node:stream/promises');
      const bytes = tar([{ name: 'a', content: 'a' }]);
      const writer = await store.stage(Digest.of(bytes));
      await pipeline(Readable.from([bytes]), writer.sink);
      const layer = await writer.commit();
      const rootfs = join(workDir, 'rootfs');
      fs.mkdirSync(rootfs);
      const snapshotter = new OverlaySnapshotter(workDir);
      const record = await snapshotter.prepare('one', [layer], rootfs);
      assert.ok(fs.readFileSync('/proc/self/mounts', 'utf8').includes(` ${rootfs} overlay `));
      assert.equal(record.upperDir, join(workDir, 'overlay', 'one', 'upper'));
      fs.writeFileSync(join(rootfs, 'b'), 'b');
      assert.equal(fs.readFileSync(join(record.upperDir!, 'b'), 'utf8'), 'b');
      await snapshotter.remove(record);
      assert.ok(!fs.readFileSync('/proc/self/mounts', 'utf8').includes(` ${rootfs} `));
      assert.equal(fs.existsSync(join(workDir, 'overlay', 'one')), false);
    } finally {
      unmountBelow(workDir);
      await rm(workDir, { recursive: true, force: true });
    }
  });

  it('refuses marker-format layers and too many layers with UNSUPPORTED', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'image-ts-overlay-'));
    try {
      const snapshotter = new OverlaySnapshotter(workDir);
      const fake = (i: number, whiteoutFormat: 'overlay' | 'marker') => ({
        diffId: Digest.of(String(i)),
        path: join(workDir, 'layers', 'sha256', Digest.of(String(i)).encoded, 'diff'),
        whiteoutFormat,
        size: 0,
        entries: 0,
      });
      await assert.rejects(snapshotter.prepare('m', [fake(0, 'marker')], join(workDir, 'r')), { code: 'UNSUPPORTED' });
      const many = Array.from({ length: 60 }, (_, i) => fake(i, 'overlay'));
      await assert.rejects(snapshotter.prepare('many', many, join(workDir, 'r')), { code: 'UNSUPPORTED' });
      assert.equal(fs.existsSync(join(workDir, 'overlay', 'many')), false);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  });

  it('a failed mount is MOUNT_FAILED and leaves no per-bundle dirs', async () => {
    assertPrerequisites();
    const workDir = await mkdtemp(join(tmpdir(), 'image-ts-overlay-'));
    try {
      const snapshotter = new OverlaySnapshotter(workDir);
      const missing = { diffId: Digest.of('x'), path: join(workDir, 'missing'), whiteoutFormat: 'overlay' as const, size: 0, entries: 0 };
      fs.mkdirSync(join(workDir, 'r'));
      await assert.rejects(snapshotter.prepare('bad', [missing], join(workDir, 'r')), { code: 'MOUNT_FAILED' });
      assert.equal(fs.existsSync(join(workDir, 'overlay', 'bad')), false);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
