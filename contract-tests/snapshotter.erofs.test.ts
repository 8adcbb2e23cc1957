import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { loopDevicesBackedBy, mountErofsImage, unmountErofsImage } from '../src/adapters/outbound/erofs/loop-mount.js';
import { FsLayerStore } from '../src/adapters/outbound/layer-store/fs-layer-store.js';
import { nativeSyscalls } from '../src/adapters/outbound/native/syscalls.js';
import { ErofsSnapshotter } from '../src/adapters/outbound/snapshot/erofs-snapshotter.js';
import { Digest } from '../src/domain/image/digest.js';
import type { CommittedLayer, LayerFormat, LayerStore } from '../src/ports/layer/layer-store.js';
import type { SnapshotRecord } from '../src/ports/snapshot/snapshotter.js';
import { erofsOnly } from '../test/helpers/erofs-only-store.js';
import { unmountBelow } from '../test/helpers/mounts.js';
import { tar, type TarEntry } from '../test/helpers/tar-writer.js';
import { snapshotterContract } from './snapshotter.contract.js';

// Not skipped anywhere: CI runs as root on a kernel with overlayfs, EROFS and
// loop devices, and a missing prerequisite must fail loudly rather than pass quietly.
function assertPrerequisites(): void {
  assert.equal(process.getuid?.(), 0, 'the erofs snapshotter tests need root');
  const filesystems = fs.readFileSync('/proc/filesystems', 'utf8');
  assert.match(filesystems, /\toverlay$/m, 'the kernel has no overlayfs');
  assert.match(filesystems, /\terofs$/m, 'the kernel has no erofs');
  assert.ok(fs.existsSync('/dev/loop-control'), 'no /dev/loop-control: the kernel has no loop devices');
  execFileSync('mkfs.erofs', ['--help'], { stdio: 'pipe' }); // throws ENOENT without erofs-utils
  assert.equal(typeof nativeSyscalls().loopAttach, 'function', 'the native helper lacks loopAttach: rebuild it (npm run build:native)');
}

/** The mounts at or below dir with their filesystem types, from the kernel. */
function mountTypes(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, point, type] = line.split(' ');
    if (point && type && (point === dir || point.startsWith(`${dir}/`))) out.set(point, type);
  }
  return out;
}

const mountsUnder = (dir: string): string[] => [...mountTypes(dir).keys()];

/** The loop devices backed by files under dir, once autoclear has had its moment (it may detach just after the unmount returns). */
async function loopsSettled(dir: string): Promise<string[]> {
  let left = await loopDevicesBackedBy(dir);
  for (let i = 0; left.length > 0 && i < 500; i++) {
    await new Promise((r) => setTimeout(r, 10));
    left = await loopDevicesBackedBy(dir);
  }
  return left;
}

/**
 * A file of a committed layer as the store keeps it: an erofs layer's path is
 * its image, so the image is mounted read-only on a scratch dir for the read.
 */
async function readLayerFile(workDir: string, layer: CommittedLayer, path: string): Promise<string | undefined> {
  if (layer.format !== 'erofs') {
    try {
      return fs.readFileSync(join(layer.path, path), 'utf8');
    } catch {
      return undefined;
    }
  }
  const mnt = fs.mkdtempSync(join(workDir, 'read-layer-'));
  mountErofsImage(layer.path, mnt);
  try {
    return fs.readFileSync(join(mnt, path), 'utf8');
  } catch {
    return undefined;
  } finally {
    unmountErofsImage(mnt);
    fs.rmdirSync(mnt);
  }
}

async function freshWorkDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'image-ts-erofs-'));
}

async function teardownWorkDir(workDir: string): Promise<void> {
  unmountBelow(workDir);
  await rm(workDir, { recursive: true, force: true });
}

snapshotterContract('ErofsSnapshotter', async () => {
  assertPrerequisites();
  const workDir = await freshWorkDir();
  return {
    snapshotter: new ErofsSnapshotter(workDir),
    layers: erofsOnly(new FsLayerStore(workDir, { whiteoutFormat: 'overlay', defaultFormat: 'erofs' })),
    workDir,
    readLayerFile: (layer, path) => readLayerFile(workDir, layer, path),
    // Every case removes what it prepared (or its prepare failed): then nothing may stay mounted or bound.
    teardown: async () => {
      const mounts = mountsUnder(workDir);
      const loops = await loopsSettled(workDir);
      await teardownWorkDir(workDir);
      assert.deepEqual({ mounts, loops }, { mounts: [], loops: [] }, 'mounts or loop devices left after the case');
    },
  };
});

async function commit(store: LayerStore, entries: readonly TarEntry[], format?: LayerFormat): Promise<CommittedLayer> {
  const bytes = tar(entries);
  const writer = await store.stage(Digest.of(bytes), format ? { format } : {});
  await pipeline(Readable.from([bytes]), writer.sink);
  return writer.commit();
}

/** Flips one byte in the middle of a layer's image: same size, different content. */
function tamper(layer: CommittedLayer): void {
  const fd = fs.openSync(layer.path, 'r+');
  try {
    const at = Math.floor(fs.fstatSync(fd).size / 2);
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

interface Erofs {
  readonly workDir: string;
  readonly store: FsLayerStore;
  readonly snapshotter: ErofsSnapshotter;
  /** <work>/layers: every image the store holds lies under it. */
  readonly layersDir: string;
  /** <work>/overlay/<id>: the per-bundle dir of snapshot id. */
  bundleDir(id: string): string;
  /** A fresh, empty rootfs dir outside the snapshotter's own dirs, as a bundle has. */
  rootfs(name: string): string;
  /** Asserts that snapshot id holds nothing any more: no mount, no loop device, no per-bundle dir. */
  assertReleased(id: string, rootfs: string): Promise<void>;
}

async function withErofs(fn: (e: Erofs) => Promise<void>, options: ConstructorParameters<typeof ErofsSnapshotter>[1] = {}): Promise<void> {
  assertPrerequisites();
  const workDir = await freshWorkDir();
  const bundleDir = (id: string): string => join(workDir, 'overlay', id);
  const layersDir = join(workDir, 'layers');
  try {
    await fn({
      workDir,
      store: new FsLayerStore(workDir, { whiteoutFormat: 'overlay', defaultFormat: 'erofs' }),
      snapshotter: new ErofsSnapshotter(workDir, options),
      layersDir,
      bundleDir,
      rootfs: (name) => {
        const dir = join(workDir, 'bundles', name, 'rootfs');
        fs.mkdirSync(dir, { recursive: true });
        return dir;
      },
      assertReleased: async (id, rootfs) => {
        assert.deepEqual(mountsUnder(bundleDir(id)), [], 'no mount under the per-bundle dir');
        assert.deepEqual(mountsUnder(rootfs), [], 'the rootfs is not mounted');
        assert.deepEqual(await loopsSettled(layersDir), [], 'no loop device backed by a store image');
        assert.equal(fs.existsSync(bundleDir(id)), false, 'the per-bundle dir is gone');
      },
    });
  } finally {
    await teardownWorkDir(workDir);
  }
}

const layerA: readonly TarEntry[] = [{ name: 'etc/', type: 'dir' }, { name: 'etc/a', content: 'a' }, { name: 'etc/shared', content: 'from a' }];
const layerB: readonly TarEntry[] = [{ name: 'etc/b', content: 'b' }, { name: 'etc/shared', content: 'from b' }];
const layerC: readonly TarEntry[] = [{ name: 'etc/.wh.a', content: '' }, { name: 'c', content: 'c' }];

describe('ErofsSnapshotter', () => {
  it('mounts each image through its own loop device and releases them all at remove()', () => withErofs(async (e) => {
    const layers = [await commit(e.store, layerA), await commit(e.store, layerB), await commit(e.store, layerC)];
    for (const l of layers) assert.equal(l.format, 'erofs');
    const rootfs = e.rootfs('one');
    const record = await e.snapshotter.prepare('one', layers, rootfs);
    assert.equal(record.snapshotter, 'erofs');
    assert.equal(fs.readFileSync(join(rootfs, 'etc/shared'), 'utf8'), 'from b');
    assert.deepEqual(fs.readdirSync(join(rootfs, 'etc')).sort(), ['b', 'shared']);
    const mounts = mountTypes(e.bundleDir('one'));
    assert.deepEqual([0, 1, 2].map((n) => mounts.get(join(e.bundleDir('one'), 'layers', String(n)))), ['erofs', 'erofs', 'erofs']);
    assert.equal(mountTypes(rootfs).get(rootfs), 'overlay');
    assert.equal((await loopDevicesBackedBy(e.layersDir)).length, 3, 'one loop device per image');
    await e.snapshotter.remove(record);
    await e.assertReleased('one', rootfs);
    assert.deepEqual(fs.readdirSync(rootfs), []);
  }));

  it('a prepare that fails at the second of three images is MOUNT_FAILED and leaves no mount, loop device or per-bundle dir', () => withErofs(async (e) => {
    const layers = [await commit(e.store, layerA), await commit(e.store, layerB), await commit(e.store, layerC)];
    fs.writeFileSync(layers[1]!.path, Buffer.alloc(fs.statSync(layers[1]!.path).size)); // zeros: no EROFS superblock
    const rootfs = e.rootfs('half');
    await assert.rejects(e.snapshotter.prepare('half', layers, rootfs), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'MOUNT_FAILED', err.message);
      // The first image was mounted (mounts go in order) before the second failed.
      assert.ok(err.message?.includes(`${join(e.bundleDir('half'), 'layers', '1')}`), err.message);
      return true;
    });
    await e.assertReleased('half', rootfs);
    assert.deepEqual(fs.readdirSync(rootfs), []);
  }));

  it('remove() on a fresh instance, with only the record, releases what a process killed after prepare left', () => withErofs(async (e) => {
    const layers = [await commit(e.store, layerA), await commit(e.store, layerB), await commit(e.store, layerC)];
    const rootfs = e.rootfs('crash');
    const mod = (p: string): string => JSON.stringify(new URL(`../src/${p}`, import.meta.url).href);
    const script =
      `import { FsLayerStore } from ${mod('adapters/outbound/layer-store/fs-layer-store.ts')};\n` +
      `import { ErofsSnapshotter } from ${mod('adapters/outbound/snapshot/erofs-snapshotter.ts')};\n` +
      `import { Digest } from ${mod('domain/image/digest.ts')};\n` +
      `const store = new FsLayerStore(${JSON.stringify(e.workDir)}, { whiteoutFormat: 'overlay', defaultFormat: 'erofs' });\n` +
      `const layers = [];\nfor (const d of ${JSON.stringify(layers.map((l) => l.diffId.toString()))}) layers.push(await store.get(Digest.parse(d)));\n` +
      `const record = await new ErofsSnapshotter(${JSON.stringify(e.workDir)}).prepare('crash', layers, ${JSON.stringify(rootfs)});\n` +
      `process.stdout.write(JSON.stringify(record) + '\\n');\nsetInterval(() => {}, 1000);`;
    const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(proc, 'exit');
    let err = '';
    proc.stderr.on('data', (b: Buffer) => (err += b.toString()));
    let line: string;
    try {
      line = await new Promise<string>((resolve, reject) => {
        let out = '';
        proc.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
        });
        void exited.then(() => reject(new Error(`the child exited before it prepared: ${err}`)));
      });
    } finally {
      proc.kill('SIGKILL');
      await exited;
    }
    const record = JSON.parse(line) as SnapshotRecord;
    // What the dead process left: three image mounts, their loop devices, the overlay.
    assert.equal(mountTypes(e.bundleDir('crash')).size, 3);
    assert.equal(mountTypes(rootfs).get(rootfs), 'overlay');
    assert.equal((await loopDevicesBackedBy(e.layersDir)).length, 3);
    await new ErofsSnapshotter(e.workDir).remove(record);
    await e.assertReleased('crash', rootfs);
  }));

  it('remove() on a fresh instance releases the image mounts of a prepare that died before its overlay mount', () => withErofs(async (e) => {
    const layers = [await commit(e.store, layerA), await commit(e.store, layerB)];
    const rootfs = e.rootfs('early');
    // Where prepare puts them, as it had got that far: the images mounted, no overlay, no upper dir yet.
    layers.forEach((l, n) => {
      const target = join(e.bundleDir('early'), 'layers', String(n));
      fs.mkdirSync(target, { recursive: true });
      mountErofsImage(l.path, target);
    });
    assert.equal((await loopDevicesBackedBy(e.layersDir)).length, 2);
    const record: SnapshotRecord = {
      snapshotter: 'erofs', rootfs, id: 'early', upperDir: join(e.bundleDir('early'), 'upper'), workDir: join(e.bundleDir('early'), 'work'),
    };
    await new ErofsSnapshotter(e.workDir).remove(record);
    await e.assertReleased('early', rootfs);
  }));

  for (const erofsCheck of ['sha256', 'verity'] as const) {
    it(`with erofsCheck '${erofsCheck}' a tampered image is refused with STORE before any mount`, () => withErofs(async (e) => {
      const layers = [await commit(e.store, layerA), await commit(e.store, layerB)];
      // Untampered, the check passes and the stack mounts.
      const good = e.rootfs('good');
      const record = await e.snapshotter.prepare('good', layers, good);
      assert.equal(fs.readFileSync(join(good, 'etc/shared'), 'utf8'), 'from b');
      await e.snapshotter.remove(record);

      tamper(layers[1]!);
      const base = join(e.workDir, 'overlay');
      fs.mkdirSync(base, { recursive: true });
      // Mount points live in the per-bundle dir: if it never appears, nothing was mounted.
      const created: string[] = [];
      const watcher = fs.watch(base, (_event, name) => created.push(String(name)));
      const rootfs = e.rootfs('tampered');
      try {
        await assert.rejects(e.snapshotter.prepare('tampered', layers, rootfs), (err: { code?: string; message?: string }) => {
          assert.equal(err.code, 'STORE', err.message);
          assert.match(err.message ?? '', new RegExp(`${layers[1]!.diffId.encoded}.*${erofsCheck === 'verity' ? 'dm-verity' : 'sha256'}`));
          return true;
        });
        await new Promise((r) => setTimeout(r, 100)); // inotify events arrive asynchronously
      } finally {
        watcher.close();
      }
      assert.deepEqual(created, [], 'the per-bundle dir was never made');
      await e.assertReleased('tampered', rootfs);
      assert.deepEqual(fs.readdirSync(rootfs), []);
    }, { erofsCheck }));
  }

  it('stacks a directory layer under an erofs layer', () => withErofs(async (e) => {
    const lower = await commit(e.store, [
      { name: 'a', content: 'a' }, { name: 'keep', content: 'k' }, { name: 'd/x', content: 'x' }, { name: 'o/old', content: 'old' },
    ], 'directory');
    const upper = await commit(e.store, [
      { name: '.wh.a', content: '' }, { name: 'd/y', content: 'y' }, { name: 'o/', type: 'dir' }, { name: 'o/.wh..wh..opq', content: '' }, { name: 'o/new', content: 'new' },
    ]);
    assert.equal(lower.format ?? 'directory', 'directory');
    assert.ok(fs.statSync(lower.path).isDirectory());
    assert.equal(upper.format, 'erofs');
    const rootfs = e.rootfs('mixed');
    const record = await e.snapshotter.prepare('mixed', [lower, upper], rootfs);
    try {
      assert.deepEqual(fs.readdirSync(rootfs).sort(), ['d', 'keep', 'o']);
      assert.deepEqual(fs.readdirSync(join(rootfs, 'd')).sort(), ['x', 'y']);
      assert.deepEqual(fs.readdirSync(join(rootfs, 'o')), ['new']);
      assert.equal(fs.readFileSync(join(rootfs, 'keep'), 'utf8'), 'k');
      // Only the image is mounted; the directory layer is a lower dir as it is.
      assert.deepEqual([...mountTypes(e.bundleDir('mixed'))], [[join(e.bundleDir('mixed'), 'layers', '1'), 'erofs']]);
      fs.writeFileSync(join(rootfs, 'keep'), 'changed');
      assert.equal(fs.readFileSync(join(lower.path, 'keep'), 'utf8'), 'k', 'the directory layer is untouched');
    } finally {
      await e.snapshotter.remove(record);
    }
    await e.assertReleased('mixed', rootfs);
  }));
});
