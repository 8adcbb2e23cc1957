import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { FsLayerStore } from '../../src/adapters/outbound/layer-store/fs-layer-store.js';
import { TarUnpacker } from '../../src/adapters/outbound/layer-store/tar-unpacker.js';
import { nativeSyscalls } from '../../src/adapters/outbound/native/syscalls.js';
import { Digest } from '../../src/domain/image/digest.js';
import type { CommittedLayer, WhiteoutFormat } from '../../src/ports/layer/layer-store.js';
import { tar, type TarEntry } from '../helpers/tar-writer.js';
import { treeOf } from '../helpers/tree.js';

/**
 * Tar formats as real writers produce them, unpacked by TarUnpacker and
 * compared with a reference extraction: GNU sparse files (old GNU, PAX 0.0,
 * 0.1, 1.0), names that are not UTF-8, PAX records with empty values,
 * libarchive's xattr records, and hard links to files of lower layers.
 */

/** The bounds on a sparse map (sparse.ts): regions, and bytes of a PAX 1.0 map. */
const MAX_SPARSE_REGIONS = 1 << 18;
const MAX_SPARSE_MAP_BYTES = 4 << 20;

let tmp: string;
let seq = 0;
before(async () => {
  assert.equal(process.getuid?.(), 0, 'owners, xattrs and GNU tar -p extraction need root');
  tmp = await mkdtemp(join(tmpdir(), 'image-ts-tar-formats-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const file = (name: string | Uint8Array, content: string | Uint8Array = '', extra: Partial<TarEntry> = {}): TarEntry => ({ name, content, ...extra });
const raw = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

function fresh(what: string): string {
  const dir = join(tmp, `${what}-${seq++}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Unpacks in odd-sized chunks (headers, maps and regions split across writes) into a fresh directory. */
async function unpack(bytes: Buffer, whiteoutFormat: WhiteoutFormat = 'overlay'): Promise<{ root: string; unpacker: TarUnpacker }> {
  const root = fresh('ours');
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 1001) chunks.push(bytes.subarray(i, i + 1001));
  const unpacker = new TarUnpacker({ root, whiteoutFormat, privileged: true });
  await pipeline(Readable.from(chunks), unpacker);
  return { root, unpacker };
}

async function rejects(bytes: Buffer, code: string, message: RegExp): Promise<void> {
  await assert.rejects(unpack(bytes), (err: { code?: string; message?: string }) => {
    assert.equal(err.code, code, err.message);
    assert.match(err.message ?? '', message);
    assert.doesNotMatch(err.message ?? '', /\n/);
    return true;
  });
}

/**
 * GNU tar's extraction of an archive: the reference for single layers.
 * --delay-directory-restore: without it GNU tar sets a directory's times
 * when it meets the first member outside it, so a member of that directory
 * further on (bsdtar writes such orders) leaves it with the time of the
 * extraction. Every other peer sets directory times last.
 */
function gnuExtract(archive: string): string {
  const dir = fresh('gnu');
  execFileSync('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--delay-directory-restore', '-xpf', archive, '-C', dir], { stdio: 'pipe' });
  return dir;
}

/** Whether any header of the archive is of this type (a scan of the 512-byte blocks that carry a tar magic). */
function hasType(archive: Buffer, type: string): boolean {
  for (let off = 0; off + 512 <= archive.length; off += 512) {
    if (archive.toString('latin1', off + 257, off + 262) === 'ustar' && archive[off + 156] === type.charCodeAt(0)) return true;
  }
  return false;
}

function writeAt(fd: number, offset: number, text: string): void {
  fs.writeSync(fd, Buffer.from(text), 0, text.length, offset);
}

/** Files with holes: many regions (old GNU needs extension blocks past 4), all hole, data only at the end, data only at the start. */
function sparseSource(): string {
  const src = fresh('sparse-src');
  const many = fs.openSync(join(src, 'many'), 'w');
  for (let i = 0; i < 60; i++) writeAt(many, i * 131_072, `region ${i} `.repeat(50));
  fs.ftruncateSync(many, 60 * 131_072 + 12_345);
  fs.closeSync(many);
  fs.closeSync(fs.openSync(join(src, 'allhole'), 'w'));
  fs.truncateSync(join(src, 'allhole'), 5_000_000);
  const tail = fs.openSync(join(src, 'tail'), 'w');
  writeAt(tail, 3_145_728, 'the end');
  fs.closeSync(tail);
  const head = fs.openSync(join(src, 'head'), 'w');
  writeAt(head, 0, 'the start');
  fs.ftruncateSync(head, 2_000_000);
  fs.closeSync(head);
  fs.writeFileSync(join(src, 'dense'), 'not sparse\n');
  for (const f of fs.readdirSync(src)) fs.utimesSync(join(src, f), 1_600_000_000, 1_600_000_000);
  return src;
}

describe('GNU sparse files unpack as GNU tar extracts them, holes kept', () => {
  let src: string;
  before(() => {
    src = sparseSource();
    assert.ok(fs.statSync(join(src, 'many')).blocks * 512 < fs.statSync(join(src, 'many')).size, 'this filesystem keeps holes');
  });

  const writers: Record<string, string[]> = {
    'old GNU (--format=gnu, extension blocks)': ['tar', '--format=gnu', '--sparse'],
    'old GNU (--format=oldgnu)': ['tar', '--format=oldgnu', '--sparse'],
    'PAX 0.0 (GNU.sparse.offset/numbytes)': ['tar', '--format=posix', '--sparse', '--sparse-version=0.0'],
    'PAX 0.1 (GNU.sparse.map)': ['tar', '--format=posix', '--sparse', '--sparse-version=0.1'],
    'PAX 1.0 (map in the data)': ['tar', '--format=posix', '--sparse', '--sparse-version=1.0'],
    'bsdtar (libarchive, PAX 1.0)': ['bsdtar', '--format=pax'],
  };
  for (const [label, argv] of Object.entries(writers)) {
    it(label, async () => {
      const archive = join(fresh('archive'), 'layer.tar');
      execFileSync(argv[0]!, [...argv.slice(1), '--numeric-owner', '-cf', archive, '-C', src, '.']);
      const bytes = fs.readFileSync(archive);
      assert.ok(hasType(bytes, 'S') || bytes.includes('GNU.sparse.'), `${label} wrote no sparse entry`);
      const { root, unpacker } = await unpack(bytes);
      const reference = await treeOf(gnuExtract(archive), { mtimes: true, blocks: true });
      assert.deepEqual(await treeOf(root, { mtimes: true, blocks: true }), reference);
      assert.equal(fs.statSync(join(root, 'allhole')).blocks, 0);
      assert.ok(fs.statSync(join(root, 'many')).blocks * 512 < 60 * 8192, 'holes are holes');
      assert.equal(unpacker.stats.entries, 6);
    });
  }
});

describe('a sparse file past 8 GiB: its real size in base-256 (old GNU) or a PAX record', () => {
  for (const format of ['gnu', 'posix'] as const) {
    it(`--format=${format}`, async () => {
      const src = fresh('huge-src');
      const fd = fs.openSync(join(src, 'huge'), 'w');
      writeAt(fd, 1_000_000, 'near the start');
      writeAt(fd, 9 * 2 ** 30, 'past 9 GiB');
      fs.closeSync(fd);
      const archive = join(fresh('huge-archive'), 'layer.tar');
      execFileSync('tar', [`--format=${format}`, '--sparse', '-cf', archive, '-C', src, 'huge']);
      const bytes = fs.readFileSync(archive);
      if (format === 'gnu') assert.equal(bytes[483], 0x80, 'the real size is in base-256');
      const { root } = await unpack(bytes);
      const ours = fs.statSync(join(root, 'huge'));
      const gnu = fs.statSync(join(gnuExtract(archive), 'huge'));
      assert.equal(ours.size, 9 * 2 ** 30 + 10);
      // Whole seconds, as the rest of the corpus compares them: a PAX time's last nanoseconds do not survive a double.
      const facts = (st: fs.Stats): number[] => [st.size, st.blocks, Math.floor(st.mtimeMs / 1000)];
      assert.deepEqual(facts(ours), facts(gnu));
      const read = (at: number, n: number): string => {
        const h = fs.openSync(join(root, 'huge'), 'r');
        try {
          const buf = Buffer.alloc(n);
          fs.readSync(h, buf, 0, n, at);
          return buf.toString('latin1');
        } finally {
          fs.closeSync(h);
        }
      };
      assert.equal(read(1_000_000, 14), 'near the start');
      assert.equal(read(9 * 2 ** 30, 10), 'past 9 GiB');
      assert.equal(read(5 * 2 ** 30, 4), '\0\0\0\0');
    });
  }
});

describe('GNU sparse maps that do not add up are INVALID_LAYER', () => {
  const sparse01 = (map: string, realSize: number, content: string, extra: Record<string, string> = {}): Buffer =>
    tar([file('s', content, { pax: { 'GNU.sparse.size': String(realSize), 'GNU.sparse.map': map, ...extra } })]);
  const sparse10 = (body: Buffer, realSize = 100): Buffer =>
    tar([file('GNUSparseFile.1/s', body, { pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.realsize': String(realSize), 'GNU.sparse.name': 's' } })]);

  it('a well-formed PAX 0.1 entry first, for contrast', async () => {
    const { root } = await unpack(sparse01('10,3,50,2', 60, 'abcde'));
    const data = fs.readFileSync(join(root, 's'));
    assert.equal(data.length, 60);
    assert.equal(data.subarray(10, 13).toString(), 'abc');
    assert.equal(data.subarray(50, 52).toString(), 'de');
    assert.equal(data.subarray(0, 10).every((b) => b === 0), true);
  });

  it('overlapping or unsorted regions, a region past the size, more or fewer stored bytes than mapped', async () => {
    await rejects(sparse01('0,10,5,10', 30, 'x'.repeat(20)), 'INVALID_LAYER', /overlap or are out of order/);
    await rejects(sparse01('20,5,0,5', 30, 'x'.repeat(10)), 'INVALID_LAYER', /overlap or are out of order/);
    await rejects(sparse01('0,10', 5, 'x'.repeat(10)), 'INVALID_LAYER', /past the end of the file/);
    await rejects(sparse01('0,10', 50, 'x'.repeat(5)), 'INVALID_LAYER', /covers 10 bytes, the entry stores 5/);
    await rejects(sparse01('0,10,20', 50, 'x'.repeat(10)), 'INVALID_LAYER', /odd number/);
    await rejects(sparse01('0,10', 50, 'x'.repeat(10), { 'GNU.sparse.numblocks': '2' }), 'INVALID_LAYER', /1 regions, 2 announced/);
  });

  it('PAX 0.0 records out of order, an unknown format, a 1.0 map cut short or too large', async () => {
    await rejects(tar([file('s', 'x', { paxList: [['GNU.sparse.size', '10'], ['GNU.sparse.numbytes', '1']] })]), 'INVALID_LAYER', /numbytes out of order/);
    await rejects(tar([file('s', 'x', { pax: { 'GNU.sparse.major': '2', 'GNU.sparse.minor': '0', 'GNU.sparse.realsize': '1' } })]), 'INVALID_LAYER', /unknown GNU sparse format 2\.0/);
    await rejects(sparse10(Buffer.from('2\n0\n5\n')), 'INVALID_LAYER', /map is truncated/);
    await rejects(sparse10(Buffer.from(`${MAX_SPARSE_REGIONS + 1}\n`)), 'INVALID_LAYER', /more than 262144 regions/);
    // A map that never ends is read only up to the bound: memory stays flat.
    await rejects(sparse10(Buffer.from(`${MAX_SPARSE_REGIONS}\n${'00000000000000000001\n'.repeat(MAX_SPARSE_MAP_BYTES / 16)}`)), 'INVALID_LAYER', /map over 4194304 bytes/);
  });

  it('GNU.sparse.name is a name like any other: it cannot climb out', async () => {
    await rejects(tar([file('GNUSparseFile.1/x', 'ab', { pax: { 'GNU.sparse.size': '2', 'GNU.sparse.map': '0,2', 'GNU.sparse.name': '../../escape' } })]), 'UNSAFE_LAYER', /climbs out/);
    assert.equal(fs.existsSync(join(tmp, '..', 'escape')), false);
  });

  it('an old GNU sparse header whose extension blocks the archive cuts off', async () => {
    const src = fresh('sparse-cut');
    const fd = fs.openSync(join(src, 'f'), 'w');
    for (let i = 0; i < 30; i++) writeAt(fd, i * 65_536, 'x');
    fs.closeSync(fd);
    const archive = join(src, '..', `cut-${seq++}.tar`);
    execFileSync('tar', ['--format=gnu', '--sparse', '-cf', archive, '-C', src, 'f']);
    await rejects(fs.readFileSync(archive).subarray(0, 1024), 'INVALID_LAYER', /truncated/);
  });
});

describe('PAX records with empty values delete the key (POSIX), so the ustar field applies', () => {
  it('path, linkpath, uid, gid, mtime and an xattr set earlier in the same header', async () => {
    const { root } = await unpack(tar([
      file('from-header', 'p', { pax: { path: '' } }),
      { name: 'link', type: 'symlink', linkname: 'from-header', pax: { linkpath: '' } },
      file('owned', 'o', { uid: 7, gid: 8, mtime: 1_500_000_000, paxList: [['uid', ''], ['gid', ''], ['mtime', '']] }),
      file('twice', 't', { paxList: [['path', 'elsewhere'], ['path', '']] }),
      file('x', 'x', { paxList: [['SCHILY.xattr.user.a', 'set'], ['SCHILY.xattr.user.a', ''], ['SCHILY.xattr.user.b', 'kept']] }),
    ]));
    assert.deepEqual(fs.readdirSync(root).sort(), ['from-header', 'link', 'owned', 'twice', 'x']);
    assert.equal(fs.readlinkSync(join(root, 'link')), 'from-header');
    const owned = fs.statSync(join(root, 'owned'));
    assert.equal(`${owned.uid}:${owned.gid} ${owned.mtimeMs}`, '7:8 1500000000000');
    assert.equal(nativeSyscalls().lgetxattr(join(root, 'x'), 'user.a'), null);
    assert.equal(nativeSyscalls().lgetxattr(join(root, 'x'), 'user.b')?.toString(), 'kept');
  });

  it('an empty path never names the layer root, and an empty GNU long name leaves the header name', async () => {
    const { root } = await unpack(tar([file('a', 'a', { pax: { path: '' } })]));
    assert.deepEqual(fs.readdirSync(root), ['a']);
    // A GNU 'L' record holding only its NUL, then the entry.
    const longEmpty = tar([file('b', 'b')]);
    const l = Buffer.from(tar([file('././@LongLink', '\0')]).subarray(0, 1024));
    l[156] = 'L'.charCodeAt(0);
    l.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of l.subarray(0, 512)) sum += byte;
    l.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const { root: root2 } = await unpack(Buffer.concat([l, longEmpty]));
    assert.deepEqual(fs.readdirSync(root2), ['b']);
  });

  it('global headers are skipped, as containerd, containers/storage, umoci and libarchive skip them', async () => {
    const { root } = await unpack(tar([
      { name: 'g', type: 'global', pax: { uid: '1234', mtime: '1000', 'SCHILY.xattr.user.g': 'global', path: 'renamed', comment: 'git archive writes these' } },
      file('plain', 'p', { uid: 5, mtime: 1_600_000_000 }),
    ]));
    assert.deepEqual(fs.readdirSync(root), ['plain']);
    const st = fs.statSync(join(root, 'plain'));
    assert.equal(`${st.uid} ${st.mtimeMs}`, '5 1600000000000');
    assert.equal(nativeSyscalls().lgetxattr(join(root, 'plain'), 'user.g'), null);
  });
});

describe('libarchive xattr records', () => {
  it('LIBARCHIVE.xattr.* (URL-encoded name, base64 value) unpack as bsdtar extracts them', async () => {
    const binary = Buffer.from([0, 1, 2, 0xff, 0x3d, 0x0a]);
    const archiveBytes = tar([
      file('only-libarchive', 'l', {
        paxList: [
          ['LIBARCHIVE.xattr.user.plain', Buffer.from('hello').toString('base64').replace(/=+$/, '')],
          ['LIBARCHIVE.xattr.user.a%3Db%25c', binary.toString('base64')],
        ],
      }),
      file('both', 'b', { paxList: [['LIBARCHIVE.xattr.user.x', Buffer.from('same').toString('base64')], ['SCHILY.xattr.user.x', 'same']] }),
    ]);
    const archive = join(fresh('libarchive'), 'layer.tar');
    fs.writeFileSync(archive, archiveBytes);
    const reference = fresh('bsdtar');
    execFileSync('bsdtar', ['--numeric-owner', '--xattrs', '-xpf', archive, '-C', reference]);
    const { root } = await unpack(archiveBytes);
    assert.equal(nativeSyscalls().lgetxattr(join(root, 'only-libarchive'), 'user.a=b%c')?.equals(binary), true);
    assert.deepEqual(await treeOf(root, { mtimes: true }), await treeOf(reference, { mtimes: true }));
  });
});

describe('names that are not UTF-8 are made as their bytes', () => {
  /** A tree with Latin-1 and broken UTF-8 names, a U+FFFD that is really there, and links to and from them. */
  function rawSource(): string {
    const src = fresh('raw-src');
    const b = Buffer.from(src);
    const at = (...parts: (string | number[])[]): Buffer => Buffer.concat([b, Buffer.from('/'), raw(...parts)]);
    fs.writeFileSync(at('caf', [0xe9]), 'latin-1\n');
    fs.writeFileSync(at('caf\u00e9'), 'utf-8, the same word\n');
    fs.mkdirSync(at([0xff, 0xfe], '-dir'));
    fs.writeFileSync(at([0xff, 0xfe], '-dir/', [0xc3, 0x28]), 'broken sequence\n');
    fs.writeFileSync(at('replacement-\uFFFD'), 'valid U+FFFD\n');
    fs.symlinkSync(raw('caf', [0xe9]), at('to-latin1'));
    fs.symlinkSync(raw([0xff, 0xfe], '-dir/', [0xc3, 0x28]), at('deep-', [0x80]));
    fs.linkSync(at('caf', [0xe9]), at('hard-', [0xe9]));
    execFileSync('setfattr', ['-n', 'user.tag', '-v', 'raw', at('caf', [0xe9]).toString('latin1')], { encoding: 'latin1' });
    return src;
  }

  for (const [label, argv] of [
    ['GNU tar --format=gnu', ['tar', '--format=gnu']],
    ['GNU tar --format=posix', ['tar', '--format=posix', '--xattrs']],
    ['bsdtar (PAX, hdrcharset=BINARY)', ['bsdtar', '--format=pax']],
  ] as const) {
    it(label, async () => {
      const src = rawSource();
      const archive = join(fresh('raw-archive'), 'layer.tar');
      execFileSync(argv[0], [...argv.slice(1), '--numeric-owner', '-cf', archive, '-C', src, '.'], { stdio: 'pipe' });
      const { root } = await unpack(fs.readFileSync(archive));
      const ours = await treeOf(root, { mtimes: true });
      assert.deepEqual(ours, await treeOf(gnuExtract(archive), { mtimes: true }));
      assert.ok(ours.some((l) => l.startsWith('caf\\xe9 ')) && ours.some((l) => l.startsWith('caf\\xc3\\xa9 ')), ours.join('\n'));
    });
  }

  it('a raw name in a whiteout, an opaque directory and the marker format', async () => {
    for (const format of ['overlay', 'marker'] as const) {
      const { root } = await unpack(tar([file(raw('.wh.', [0xe9])), file(raw('d', [0xff], '/.wh..wh..opq')), file(raw('d', [0xff], '/f'), 'f')]), format);
      const names = fs.readdirSync(root, { encoding: 'buffer' }).map((n) => n.toString('latin1')).sort();
      assert.deepEqual(names, format === 'overlay' ? ['d\xff', '\xe9'] : ['.wh.\xe9', 'd\xff'], format);
    }
  });
});

describe('hard links to files of lower layers are recorded for the snapshotter', () => {
  async function commit(entries: readonly TarEntry[], format: WhiteoutFormat = 'overlay'): Promise<CommittedLayer> {
    const store = new FsLayerStore(fresh('store'), { whiteoutFormat: format });
    const bytes = tar(entries);
    const writer = await store.stage(Digest.of(bytes));
    try {
      await pipeline(Readable.from([bytes]), writer.sink);
      await writer.commit();
    } catch (err) {
      await writer.abort();
      throw err;
    }
    const again = await store.get(Digest.of(bytes));
    assert.ok(again);
    return again;
  }

  it('in entry order, persisted in layer.json; nothing is made at the link', async () => {
    const layer = await commit([
      { name: 'b', type: 'hardlink', linkname: 'a' },
      file('d/own', 'own'),
      { name: 'd/l', type: 'hardlink', linkname: '/lib/t' },
      { name: 'd/l2', type: 'hardlink', linkname: 'd/l' },
      { name: 'd/in', type: 'hardlink', linkname: 'd/own' },
    ]);
    assert.deepEqual(layer.lowerLinks, [['b', 'a'], ['d/l', 'lib/t'], ['d/l2', 'd/l']]);
    assert.deepEqual(fs.readdirSync(layer.path), ['d']);
    assert.deepEqual(fs.readdirSync(join(layer.path, 'd')).sort(), ['in', 'own']);
    assert.equal(fs.statSync(join(layer.path, 'd/in')).nlink, 2);
  });

  it('a later entry at the link\'s path replaces it; a later link at it wins', async () => {
    const layer = await commit([
      { name: 'x', type: 'hardlink', linkname: 'a' }, file('x', 'now a file'),
      { name: 'y', type: 'hardlink', linkname: 'a' }, { name: 'y', type: 'hardlink', linkname: 'b' },
      { name: 'z/l', type: 'hardlink', linkname: 'a' }, file('z', 'z replaced its directory'),
    ]);
    assert.deepEqual(layer.lowerLinks, [['y', 'b']]);
    assert.equal(fs.readFileSync(join(layer.path, 'x'), 'utf8'), 'now a file');
  });

  it('refused where the layer also changes the target: which file the link names would depend on entry order', async () => {
    for (const format of ['overlay', 'marker'] as const) {
      for (const entries of [
        [{ name: 'l', type: 'hardlink', linkname: 'a' }, file('.wh.a')],
        [{ name: 'l', type: 'hardlink', linkname: 'd/a' }, file('d/.wh..wh..opq')],
        [{ name: 'l', type: 'hardlink', linkname: 'd/a' }, file('.wh.d')],
        [{ name: 'l', type: 'hardlink', linkname: 'a' }, file('a', 'new a')],
        [{ name: 'l', type: 'hardlink', linkname: 's/a' }, { name: 's', type: 'symlink', linkname: '/etc' }],
      ] as TarEntry[][]) {
        await assert.rejects(commit(entries, format), (err: { code?: string; message?: string }) => {
          assert.equal(err.code, 'INVALID_LAYER', `${format}: ${err.message}`);
          assert.match(err.message ?? '', /the target is in a lower layer, and this layer changes that path too/);
          return true;
        });
      }
    }
  });
});
