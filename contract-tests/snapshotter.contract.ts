import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { Digest } from '../src/domain/image/digest.js';
import type { CommittedLayer, LayerStore } from '../src/ports/layer/layer-store.js';
import type { SnapshotRecord, Snapshotter } from '../src/ports/snapshot/snapshotter.js';
import { tar, type TarEntry } from '../test/helpers/tar-writer.js';

export interface SnapshotterFixture {
  snapshotter: Snapshotter;
  /** Where the tests unpack their layers (with the whiteout format under test). */
  layers: LayerStore;
  /** A scratch directory for rootfs dirs. */
  workDir: string;
  /**
   * A file of a committed layer as the layer store keeps it, to check that
   * the rootfs shares nothing writable with the store. Default: the file
   * under `layer.path`, for stores that keep layers on disk as trees; a
   * store of images (the `erofs` format) reads it out of the image.
   */
  readLayerFile?(layer: CommittedLayer, path: string): Promise<string | undefined>;
  /**
   * What this pair does not model (an in-memory double, say). For each, the
   * suite holds it to refusing such a layer with UNSUPPORTED, at staging or at
   * prepare, instead of making something else. Every shipped adapter refuses
   * nothing.
   */
  readonly refuses?: readonly RefusableFeature[];
  teardown(): Promise<void>;
}

/** `raw-names`: names and link targets that are not UTF-8; `sparse`: GNU sparse files; `special-files`: FIFOs and devices. */
export type RefusableFeature = 'raw-names' | 'sparse' | 'special-files';

const file = (name: string | Uint8Array, content = '', extra: Partial<TarEntry> = {}): TarEntry => ({ name, content, ...extra });
const dir = (name: string, extra: Partial<TarEntry> = {}): TarEntry => ({ name, type: 'dir', ...extra });

async function layer(store: LayerStore, entries: readonly TarEntry[]): Promise<CommittedLayer> {
  const bytes = tar(entries);
  const diffId = Digest.of(bytes);
  const existing = await store.get(diffId);
  if (existing) return existing;
  const writer = await store.stage(diffId);
  await pipeline(Readable.from([bytes]), writer.sink);
  return writer.commit();
}

function read(rootfs: string, p: string): string | undefined {
  try {
    return fs.readFileSync(join(rootfs, p), 'utf8');
  } catch {
    return undefined;
  }
}

function exists(rootfs: string, p: string): boolean {
  return fs.lstatSync(join(rootfs, p), { throwIfNoEntry: false }) !== undefined;
}

/** Union semantics every snapshotter must give a rootfs (OCI image-layer spec, "Applying Changesets"). */
export function snapshotterContract(name: string, makeFixture: () => Promise<SnapshotterFixture>): void {
  describe(`Snapshotter contract: ${name}`, () => {
    let seq = 0;
    /** Runs fn with a prepared rootfs; always removes the snapshot and the fixture. */
    const withRootfs =
      (layers: readonly (readonly TarEntry[])[], fn: (rootfs: string, f: SnapshotterFixture, record: SnapshotRecord) => Promise<void>) =>
      async () => {
        const f = await makeFixture();
        let record: SnapshotRecord | undefined;
        try {
          const committed: CommittedLayer[] = [];
          for (const entries of layers) committed.push(await layer(f.layers, entries));
          const rootfs = join(f.workDir, `bundle-${seq++}`, 'rootfs');
          fs.mkdirSync(rootfs, { recursive: true });
          record = await f.snapshotter.prepare(`snap-${seq}`, committed, rootfs);
          assert.equal(record.snapshotter, f.snapshotter.name);
          await fn(record.rootfs, f, record);
        } finally {
          // teardown even when remove throws: a leaked mount must not outlive the case.
          try {
            if (record) await f.snapshotter.remove(record);
          } finally {
            await f.teardown();
          }
        }
      };

    /** withRootfs for a case that needs `feature`: a fixture that refuses it must say UNSUPPORTED and leave the rootfs empty. */
    const needing =
      (feature: RefusableFeature, layers: readonly (readonly TarEntry[])[], fn: (rootfs: string, f: SnapshotterFixture, record: SnapshotRecord) => Promise<void>) =>
      async () => {
        const probe = await makeFixture();
        const refused = probe.refuses?.includes(feature) ?? false;
        await probe.teardown();
        if (!refused) return withRootfs(layers, fn)();
        const f = await makeFixture();
        const rootfs = join(f.workDir, `bundle-${seq++}`, 'rootfs');
        try {
          await assert.rejects(async () => {
            const committed: CommittedLayer[] = [];
            for (const entries of layers) committed.push(await layer(f.layers, entries));
            fs.mkdirSync(rootfs, { recursive: true });
            const record = await f.snapshotter.prepare(`snap-${seq}`, committed, rootfs);
            await f.snapshotter.remove(record);
          }, { code: 'UNSUPPORTED' }, `${feature} is refused`);
          assert.deepEqual(fs.existsSync(rootfs) ? fs.readdirSync(rootfs) : [], []);
        } finally {
          await f.teardown();
        }
      };

    it('is available here', async () => {
      const f = await makeFixture();
      try {
        assert.equal(await f.snapshotter.available(), true);
      } finally {
        await f.teardown();
      }
    });

    it('upper files win; directories merge', withRootfs(
      [
        [dir('etc/'), file('etc/a', 'lower'), file('etc/b', 'only lower'), file('bin/sh', 'sh')],
        [file('etc/a', 'upper'), file('etc/c', 'only upper')],
      ],
      async (rootfs) => {
        assert.equal(read(rootfs, 'etc/a'), 'upper');
        assert.equal(read(rootfs, 'etc/b'), 'only lower');
        assert.equal(read(rootfs, 'etc/c'), 'only upper');
        assert.equal(read(rootfs, 'bin/sh'), 'sh');
        assert.deepEqual(fs.readdirSync(join(rootfs, 'etc')).sort(), ['a', 'b', 'c']);
      },
    ));

    it('whiteouts delete files and whole directories; a later layer can bring them back', withRootfs(
      [
        [file('x', 'x'), file('d/y', 'y'), file('d/sub/z', 'z'), file('keep', 'k')],
        [file('.wh.x'), file('.wh.d'), file('.wh.never-existed')],
        [file('d/new', 'new')],
      ],
      async (rootfs) => {
        assert.equal(exists(rootfs, 'x'), false);
        assert.deepEqual(fs.readdirSync(join(rootfs, 'd')), ['new']);
        assert.equal(read(rootfs, 'keep'), 'k');
        assert.deepEqual(fs.readdirSync(rootfs).sort(), ['d', 'keep']);
      },
    ));

    it('an opaque directory hides what lower layers put in it', withRootfs(
      [
        [file('d/old', 'old'), file('d/sub/deep', 'deep'), file('other/o', 'o')],
        [dir('d/'), file('d/.wh..wh..opq'), file('d/new', 'new')],
      ],
      async (rootfs) => {
        assert.deepEqual(fs.readdirSync(join(rootfs, 'd')), ['new']);
        assert.equal(read(rootfs, 'other/o'), 'o');
      },
    ));

    it('a directory replaces a lower non-directory, and a non-directory replaces a lower directory', withRootfs(
      [
        [file('p', 'file'), file('q/x', 'x'), { name: 's', type: 'symlink', linkname: '/etc' }, file('t', 't')],
        [dir('p/'), file('p/in', 'in'), file('q', 'now a file'), dir('s/'), file('s/f', 'f'), { name: 't', type: 'symlink', linkname: 'p/in' }],
      ],
      async (rootfs) => {
        assert.ok(fs.lstatSync(join(rootfs, 'p')).isDirectory());
        assert.equal(read(rootfs, 'p/in'), 'in');
        assert.equal(read(rootfs, 'q'), 'now a file');
        assert.ok(fs.lstatSync(join(rootfs, 's')).isDirectory());
        assert.deepEqual(fs.readdirSync(join(rootfs, 's')), ['f']);
        assert.equal(fs.readlinkSync(join(rootfs, 't')), 'p/in');
      },
    ));

    // The rootfs applying the layers in order gives (umoci unpack): a whiteout or
    // opaque marker under a path that is not a directory there deletes nothing.
    it('markers under a path this layer made a file, a symlink or a deletion delete nothing more (umoci writes them)', withRootfs(
      [
        [file('d2f/child.txt', 'c'), file('d2s/x', 'x'), file('gone/y', 'y'), file('keep', 'k')],
        [
          file('d2f', 'now a file'), file('d2f/.wh.child.txt'), file('d2f/.wh..wh..opq'),
          { name: 'd2s', type: 'symlink', linkname: 'keep' }, file('d2s/.wh.x'), file('d2s/.wh..wh..opq'),
          file('.wh.gone'), file('gone/.wh.y'), file('gone/.wh..wh..opq'),
        ],
      ],
      async (rootfs) => {
        assert.equal(read(rootfs, 'd2f'), 'now a file');
        assert.equal(fs.readlinkSync(join(rootfs, 'd2s')), 'keep');
        assert.equal(exists(rootfs, 'gone'), false);
        assert.deepEqual(fs.readdirSync(rootfs).sort(), ['d2f', 'd2s', 'keep']);
      },
    ));

    it('markers under a path a lower layer made a file, a symlink or a deletion delete nothing', withRootfs(
      [
        [file('p/c', 'c'), file('q/z', 'z'), file('s/k', 'k'), file('target', 't')],
        [file('p', 'p is a file'), file('.wh.q'), { name: 's', type: 'symlink', linkname: 'target' }],
        [file('p/.wh.c'), file('q/.wh.z'), file('s/.wh.k'), file('s/.wh..wh..opq'), file('never/.wh.was')],
      ],
      async (rootfs) => {
        assert.equal(read(rootfs, 'p'), 'p is a file');
        assert.equal(exists(rootfs, 'q'), false);
        assert.equal(fs.readlinkSync(join(rootfs, 's')), 'target');
        assert.equal(exists(rootfs, 'never'), false);
        assert.deepEqual(fs.readdirSync(rootfs).sort(), ['p', 's', 'target']);
      },
    ));

    it('a path deleted and made again in one layer hides what lower layers had there, in either order', withRootfs(
      [
        [file('r/old', 'old'), file('t/old', 'old'), file('u/old', 'old')],
        [file('.wh.r'), dir('r/'), file('r/new', 'new'), file('.wh.t'), file('t/new', 'new'), file('u/own', 'own'), file('.wh.u')],
      ],
      async (rootfs) => {
        for (const [d, name] of [['r', 'new'], ['t', 'new'], ['u', 'own']] as const) {
          assert.deepEqual(fs.readdirSync(join(rootfs, d)), [name], d);
        }
      },
    ));

    it('a directory no entry declared keeps the lower directory\'s mode, owner and times', withRootfs(
      [
        [dir('m/', { mode: 0o750, mtime: 1_500_000_000 }), file('m/a', 'a'), dir('o/', { mode: 0o711, mtime: 1_400_000_000 }), file('o/old', 'old')],
        [file('m/b', 'b'), file('o/.wh..wh..opq'), file('o/new', 'new'), file('fresh/f', 'f')],
      ],
      async (rootfs) => {
        const m = fs.statSync(join(rootfs, 'm'));
        assert.equal(m.mode & 0o7777, 0o750);
        assert.equal(m.mtimeMs, 1_500_000_000_000);
        assert.deepEqual(fs.readdirSync(join(rootfs, 'm')).sort(), ['a', 'b']);
        const o = fs.statSync(join(rootfs, 'o'));
        assert.equal(o.mode & 0o7777, 0o711);
        assert.equal(o.mtimeMs, 1_400_000_000_000);
        assert.deepEqual(fs.readdirSync(join(rootfs, 'o')), ['new']);
        assert.equal(read(rootfs, 'fresh/f'), 'f');
      },
    ));

    it('keeps symlinks, hard links, modes and mtimes', withRootfs(
      [
        [
          dir('bin/', { mode: 0o750, mtime: 1_500_000_000 }),
          file('bin/tool', 'tool', { mode: 0o4755, mtime: 1_600_000_000 }),
          { name: 'bin/alias', type: 'hardlink', linkname: 'bin/tool' },
          { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
          file('usr/lib/libc.so', 'libc'),
        ],
      ],
      async (rootfs) => {
        const tool = fs.statSync(join(rootfs, 'bin/tool'));
        assert.equal(tool.mode & 0o7777, 0o4755);
        assert.equal(tool.mtimeMs, 1_600_000_000_000);
        assert.equal(fs.statSync(join(rootfs, 'bin/alias')).ino, tool.ino);
        const bin = fs.statSync(join(rootfs, 'bin'));
        assert.equal(bin.mode & 0o7777, 0o750);
        assert.equal(bin.mtimeMs, 1_500_000_000_000);
        assert.equal(fs.readlinkSync(join(rootfs, 'lib')), 'usr/lib');
        assert.equal(read(rootfs, 'lib/libc.so'), 'libc');
      },
    ));

    it('a hard link to a lower layer\'s file is a second name for it, as a sequential apply makes it', withRootfs(
      [
        [dir('lib/', { mode: 0o750, mtime: 1_500_000_000 }), file('lib/t', 'target', { mode: 0o640, mtime: 1_600_000_000 }), file('lib/other', 'o')],
        [{ name: 'bin/l', type: 'hardlink', linkname: 'lib/t' }, { name: 'l2', type: 'hardlink', linkname: 'bin/l' }, file('lib/new', 'n')],
      ],
      async (rootfs) => {
        const t = fs.statSync(join(rootfs, 'lib/t'));
        assert.equal(t.nlink, 3);
        assert.equal(fs.statSync(join(rootfs, 'bin/l')).ino, t.ino);
        assert.equal(fs.statSync(join(rootfs, 'l2')).ino, t.ino);
        assert.equal(read(rootfs, 'l2'), 'target');
        assert.equal(t.mode & 0o7777, 0o640);
        assert.equal(t.mtimeMs, 1_600_000_000_000);
        const lib = fs.statSync(join(rootfs, 'lib'));
        assert.equal(lib.mode & 0o7777, 0o750);
        assert.equal(lib.mtimeMs, 1_500_000_000_000);
        assert.deepEqual(fs.readdirSync(join(rootfs, 'lib')).sort(), ['new', 'other', 't']);
      },
    ));

    it('a hard link to a file no lower layer has fails the snapshot with UNSAFE_LAYER', async () => {
      const f = await makeFixture();
      try {
        const committed = [await layer(f.layers, [file('a', 'a')]), await layer(f.layers, [{ name: 'l', type: 'hardlink', linkname: 'nowhere' }])];
        const rootfs = join(f.workDir, 'bundle-nolink', 'rootfs');
        fs.mkdirSync(rootfs, { recursive: true });
        await assert.rejects(f.snapshotter.prepare('snap-nolink', committed, rootfs), { code: 'UNSAFE_LAYER' });
      } finally {
        await f.teardown();
      }
    });

    it('names that are not UTF-8 are made, deleted and replaced as their bytes', needing('raw-names',
      [
        [file(Buffer.from([0x63, 0x61, 0x66, 0xe9]), 'latin-1'), file(Buffer.from([0x64, 0xff, 0x2f, 0x61]), 'a'), file(Buffer.from([0x67, 0x80]), 'gone soon'),
          { name: 'link', type: 'symlink', linkname: Buffer.from([0x64, 0xff]) }],
        [file(Buffer.from([0x2e, 0x77, 0x68, 0x2e, 0x67, 0x80])), file(Buffer.from([0x64, 0xff, 0x2f, 0x62]), 'b'), file(Buffer.from('caf\u00e9'), 'utf-8')],
      ],
      async (rootfs) => {
        const names = fs.readdirSync(rootfs, { encoding: 'buffer' }).map((n) => n.toString('latin1')).sort();
        assert.deepEqual(names, ['caf\xc3\xa9', 'caf\xe9', 'd\xff', 'link']);
        const d = Buffer.concat([Buffer.from(`${rootfs}/`), Buffer.from([0x64, 0xff])]);
        assert.deepEqual(fs.readdirSync(d, { encoding: 'buffer' }).map((n) => n.toString()).sort(), ['a', 'b']);
        assert.deepEqual(fs.readlinkSync(join(rootfs, 'link'), { encoding: 'buffer' }), Buffer.from([0x64, 0xff]));
      },
    ));

    it('a sparse file keeps its holes', needing('sparse',
      [[file('sparse', 'abcdef', { pax: { 'GNU.sparse.size': String(64 << 20), 'GNU.sparse.map': `0,3,${32 << 20},3` } })]],
      async (rootfs) => {
        const st = fs.statSync(join(rootfs, 'sparse'));
        assert.equal(st.size, 64 << 20);
        assert.ok(st.blocks * 512 < 1 << 20, `${st.blocks} blocks`);
        const fd = fs.openSync(join(rootfs, 'sparse'), 'r');
        try {
          const buf = Buffer.alloc(3);
          fs.readSync(fd, buf, 0, 3, 32 << 20);
          assert.equal(buf.toString(), 'def');
        } finally {
          fs.closeSync(fd);
        }
      },
    ));

    it('times before 1970 stay, on directories, symlinks, files with xattrs and devices', needing('special-files',
      [[
        dir('old/', { mtime: -315_619_200 }),
        file('old/f', 'f', { mtime: -1_000_000 }),
        { name: 'old/link', type: 'symlink', linkname: 'f', mtime: -2_000_000 },
        file('old/x', 'x', { mtime: -3_000_000, xattrs: { 'user.k': 'v' } }),
        { name: 'old/fifo', type: 'fifo', mtime: -4_000_000 },
      ]],
      async (rootfs) => {
        const times = ['old', 'old/f', 'old/link', 'old/x', 'old/fifo'].map((p) => fs.lstatSync(join(rootfs, p)).mtimeMs / 1000);
        assert.deepEqual(times, [-315_619_200, -1_000_000, -2_000_000, -3_000_000, -4_000_000]);
      },
    ));

    it('writes to the rootfs do not reach the shared layers', withRootfs(
      [[file('etc/a', 'layer')]],
      async (rootfs, f) => {
        fs.writeFileSync(join(rootfs, 'etc/a'), 'changed');
        fs.rmSync(join(rootfs, 'etc'), { recursive: true });
        const committed = await layer(f.layers, [file('etc/a', 'layer')]);
        const readLayerFile = f.readLayerFile ?? (async (l: CommittedLayer, p: string) => read(l.path, p));
        assert.equal(await readLayerFile(committed, 'etc/a'), 'layer');
      },
    ));

    it('the same layer twice in one image (kept at its topmost place)', async () => {
      const f = await makeFixture();
      let record: SnapshotRecord | undefined;
      try {
        const a = await layer(f.layers, [file('a', 'from a'), file('shared', 'a')]);
        const b = await layer(f.layers, [file('.wh.a'), file('shared', 'b'), file('b', 'b')]);
        const rootfs = join(f.workDir, 'bundle-twice', 'rootfs');
        fs.mkdirSync(rootfs, { recursive: true });
        record = await f.snapshotter.prepare('snap-twice', [a, b, a], rootfs);
        assert.equal(read(rootfs, 'a'), 'from a');
        assert.equal(read(rootfs, 'shared'), 'a');
        assert.equal(read(rootfs, 'b'), 'b');
      } finally {
        try {
          if (record) await f.snapshotter.remove(record);
        } finally {
          await f.teardown();
        }
      }
    });

    it('no layers give an empty rootfs', withRootfs([], async (rootfs) => {
      assert.deepEqual(fs.readdirSync(rootfs), []);
    }));

    it('remove() cleans up and is safe to call twice', async () => {
      const f = await makeFixture();
      try {
        const rootfs = join(f.workDir, 'bundle-remove', 'rootfs');
        fs.mkdirSync(rootfs, { recursive: true });
        const record = await f.snapshotter.prepare('snap-remove', [await layer(f.layers, [file('a', 'a'), file('d/b', 'b')])], rootfs);
        assert.equal(read(rootfs, 'a'), 'a');
        await f.snapshotter.remove(record);
        await f.snapshotter.remove(record);
        assert.ok(!fs.existsSync(rootfs) || fs.readdirSync(rootfs).length === 0, 'rootfs is gone or empty');
        for (const p of [record.upperDir, record.workDir]) if (p) assert.equal(fs.existsSync(p), false, p);
      } finally {
        await f.teardown();
      }
    });
  });
}
