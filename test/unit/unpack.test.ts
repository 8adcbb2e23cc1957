import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { FsLayerStore } from '../../src/adapters/outbound/layer-store/fs-layer-store.js';
import { TarUnpacker } from '../../src/adapters/outbound/layer-store/tar-unpacker.js';
import { nativeSyscalls } from '../../src/adapters/outbound/native/syscalls.js';
import { Digest } from '../../src/domain/image/digest.js';
import type { CommittedLayer, WhiteoutFormat } from '../../src/ports/layer/layer-store.js';
import type { LogLevel } from '../../src/ports/observability/logger.js';
import { tar, type TarEntry } from '../helpers/tar-writer.js';

const isRoot = process.getuid?.() === 0;
let tmp: string;
let outside: string;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'image-ts-unpack-'));
  outside = join(tmp, 'outside');
  fs.mkdirSync(outside);
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let seq = 0;
function newStore(whiteoutFormat: WhiteoutFormat = 'overlay') {
  const root = join(tmp, `store-${seq++}`);
  const logs: { level: LogLevel; event: string }[] = [];
  const store = new FsLayerStore(root, { whiteoutFormat, logger: { log: (level, event) => logs.push({ level, event }) } });
  return { root, store, logs };
}

async function commit(entries: readonly TarEntry[], whiteoutFormat: WhiteoutFormat = 'overlay'): Promise<CommittedLayer> {
  const { store } = newStore(whiteoutFormat);
  const bytes = tar(entries);
  const writer = await store.stage(Digest.of(bytes));
  try {
    await pipeline(Readable.from([bytes]), writer.sink);
    return await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** Unpacks through the store, expects `code`, and checks that abort left nothing anywhere in the store. */
async function expectRejected(entries: readonly TarEntry[], code: string, whiteoutFormat: WhiteoutFormat = 'overlay'): Promise<string> {
  const { root, store } = newStore(whiteoutFormat);
  const bytes = tar(entries);
  const writer = await store.stage(Digest.of(bytes));
  const stagingDir = join(root, 'staging', fs.readdirSync(join(root, 'staging'))[0]!);
  await assert.rejects(pipeline(Readable.from([bytes]), writer.sink), (err: { code?: string; message?: string }) => {
    assert.equal(err.code, code, err.message);
    return true;
  });
  await writer.abort();
  assert.deepEqual(await readdir(join(root, 'staging')), []);
  assert.deepEqual(fs.existsSync(join(root, 'layers', 'sha256')) ? await readdir(join(root, 'layers', 'sha256')) : [], []);
  assert.deepEqual(await store.list(), []);
  return join(stagingDir, 'diff');
}

const file = (name: string, content = '', extra: Partial<TarEntry> = {}): TarEntry => ({ name, content, ...extra });

describe('unpack: hostile layers fail with UNSAFE_LAYER and leave nothing behind', () => {
  it('../escape', async () => {
    await expectRejected([file('../escape', 'x')], 'UNSAFE_LAYER');
    assert.equal(fs.existsSync(join(tmp, 'escape')), false);
  });

  it('a/../../escape', async () => {
    await expectRejected([file('a/x'), file('a/../../escape', 'x')], 'UNSAFE_LAYER');
  });

  it('symlink evil -> <outside dir> then evil/passwd', async () => {
    await expectRejected([{ name: 'evil', type: 'symlink', linkname: outside }, file('evil/passwd', 'pwned')], 'UNSAFE_LAYER');
    assert.equal(fs.existsSync(join(outside, 'passwd')), false);
  });

  it('symlink evil -> /etc then evil/passwd does not touch /etc/passwd', async () => {
    // The payload is /etc/passwd's own content and metadata, so even a broken unpacker could not damage the host.
    const before = fs.statSync('/etc/passwd');
    const content = fs.readFileSync('/etc/passwd');
    await expectRejected(
      [
        { name: 'evil', type: 'symlink', linkname: '/etc' },
        file('evil/passwd', '', { content, mode: before.mode & 0o7777, uid: before.uid, gid: before.gid, mtime: before.mtimeMs / 1000 }),
      ],
      'UNSAFE_LAYER',
    );
    const now = fs.statSync('/etc/passwd');
    assert.equal(now.ino, before.ino);
    assert.equal(now.ctimeMs, before.ctimeMs);
  });

  it('symlink up -> ../../.. then up/x', async () => {
    const diff = await expectRejected([{ name: 'up', type: 'symlink', linkname: '../../..' }, file('up/x', 'x')], 'UNSAFE_LAYER');
    assert.equal(fs.existsSync(join(diff, '../../../x')), false);
  });

  it('a directory entry below a symlink', async () => {
    await expectRejected([{ name: 'evil', type: 'symlink', linkname: outside }, { name: 'evil/sub/', type: 'dir' }], 'UNSAFE_LAYER');
    assert.equal(fs.existsSync(join(outside, 'sub')), false);
  });

  it('a whiteout or opaque marker below a symlink is dropped, never applied through it', async () => {
    fs.writeFileSync(join(outside, 'victim'), 'keep');
    for (const format of ['overlay', 'marker'] as const) {
      const layer = await commit([{ name: 'evil', type: 'symlink', linkname: outside }, file('evil/.wh.victim'), file('evil/.wh..wh..opq')], format);
      assert.equal(fs.readlinkSync(join(layer.path, 'evil')), outside);
      assert.deepEqual(fs.readdirSync(layer.path), ['evil']);
    }
    assert.equal(fs.readFileSync(join(outside, 'victim'), 'utf8'), 'keep');
    assert.equal(nativeSyscalls().lgetxattr(outside, 'trusted.overlay.opaque'), null);
  });

  it('hard link to ../../etc/passwd', async () => {
    await expectRejected([{ name: 'h', type: 'hardlink', linkname: '../../etc/passwd' }], 'UNSAFE_LAYER');
  });

  it('hard link through a symlinked directory to outside', async () => {
    fs.writeFileSync(join(outside, 'secret'), 's');
    await expectRejected(
      [{ name: 'd', type: 'symlink', linkname: outside }, { name: 'h', type: 'hardlink', linkname: 'd/secret' }],
      'UNSAFE_LAYER',
    );
    assert.equal(fs.statSync(join(outside, 'secret')).nlink, 1);
  });

  it('hard link to a directory, to itself, to a file the layer deleted', async () => {
    await expectRejected([{ name: 'd/', type: 'dir' }, { name: 'h', type: 'hardlink', linkname: 'd' }], 'UNSAFE_LAYER');
    await expectRejected([file('.wh.gone'), { name: 'h', type: 'hardlink', linkname: 'gone' }], 'UNSAFE_LAYER');
    await expectRejected([file('h'), { name: 'h', type: 'hardlink', linkname: 'h' }], 'UNSAFE_LAYER');
  });

  it('an entry that would replace the layer root', async () => {
    await expectRejected([{ name: './', type: 'symlink', linkname: outside }], 'UNSAFE_LAYER');
  });

  it('malformed tars fail with INVALID_LAYER', async () => {
    const { store } = newStore();
    const good = tar([file('a', 'x'.repeat(1000))]);
    for (const bytes of [good.subarray(0, 700), Buffer.concat([good.subarray(0, 512 + 511)]), corruptChecksum(good)]) {
      const writer = await store.stage(Digest.of(bytes));
      await assert.rejects(pipeline(Readable.from([bytes]), writer.sink), { code: 'INVALID_LAYER' });
      await writer.abort();
    }
  });
});

function corruptChecksum(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy[0] = copy[0]! ^ 1;
  return copy;
}

describe('unpack: good layers', () => {
  it('absolute names are confined to the layer', async () => {
    const layer = await commit([file('/abs/path', 'x')]);
    assert.equal(fs.readFileSync(join(layer.path, 'abs/path'), 'utf8'), 'x');
  });

  it('overlay whiteouts: 0:0 char devices and the opaque xattr', async () => {
    const layer = await commit([file('.wh.gone'), { name: 'dir/', type: 'dir' }, file('dir/.wh..wh..opq'), file('dir/keep', 'k'), file('sub/.wh.x')]);
    for (const p of ['gone', 'sub/x']) {
      const st = fs.lstatSync(join(layer.path, p));
      assert.ok(st.isCharacterDevice(), p);
      assert.equal(st.rdev, 0);
    }
    assert.equal(nativeSyscalls().lgetxattr(join(layer.path, 'dir'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(fs.readFileSync(join(layer.path, 'dir/keep'), 'utf8'), 'k');
    assert.deepEqual(fs.readdirSync(join(layer.path, 'dir')), ['keep']);
    assert.equal(layer.whiteoutFormat, 'overlay');
  });

  it('overlay whiteouts do not delete an entry of the same layer', async () => {
    const layer = await commit([file('a', 'kept'), file('.wh.a'), file('.wh.b'), file('b', 'replaces the whiteout')]);
    assert.equal(fs.readFileSync(join(layer.path, 'a'), 'utf8'), 'kept');
    assert.equal(fs.readFileSync(join(layer.path, 'b'), 'utf8'), 'replaces the whiteout');
  });

  it('marker whiteouts are kept as empty regular files', async () => {
    const layer = await commit([file('.wh.gone'), file('dir/.wh..wh..opq'), file('dir/keep', 'k')], 'marker');
    for (const p of ['.wh.gone', 'dir/.wh..wh..opq']) {
      const st = fs.lstatSync(join(layer.path, p));
      assert.ok(st.isFile(), p);
      assert.equal(st.size, 0);
    }
    assert.equal(nativeSyscalls().lgetxattr(join(layer.path, 'dir'), 'trusted.overlay.opaque'), null);
    assert.equal(layer.whiteoutFormat, 'marker');
  });

  it('markers under a path this layer made a file, a symlink or a deletion are dropped, in either order', async () => {
    const entries = [
      file('d2f', 'file'), file('d2f/.wh.child.txt'), file('d2f/.wh..wh..opq'),
      { name: 'd2s', type: 'symlink', linkname: '/etc' } as TarEntry, file('d2s/.wh.passwd'), file('d2s/.wh..wh..opq'),
      file('.wh.gone'), file('gone/.wh.child'), file('gone/.wh..wh..opq'),
      file('late/.wh.child'), file('late', 'the file comes after the marker'),
    ];
    const overlay = await commit(entries);
    assert.deepEqual(fs.readdirSync(overlay.path).sort(), ['d2f', 'd2s', 'gone', 'late']);
    assert.equal(fs.readFileSync(join(overlay.path, 'd2f'), 'utf8'), 'file');
    assert.equal(fs.readFileSync(join(overlay.path, 'late'), 'utf8'), 'the file comes after the marker');
    assert.ok(fs.lstatSync(join(overlay.path, 'gone')).isCharacterDevice());
    assert.equal(overlay.implicitDirs, undefined);
    const marker = await commit(entries, 'marker');
    assert.deepEqual(fs.readdirSync(marker.path).sort(), ['.wh.gone', 'd2f', 'd2s', 'late']);
    assert.equal(marker.implicitDirs, undefined);
  });

  it('a path deleted and made again in one layer is an opaque directory (overlay format)', async () => {
    const layer = await commit([
      file('.wh.r'), { name: 'r/', type: 'dir' }, file('r/new', 'n'),
      file('.wh.t'), file('t/new', 'n'),
      file('u/own', 'o'), file('.wh.u'),
      file('h/.wh.x'), file('.wh.h'),
    ]);
    for (const d of ['r', 't', 'u']) {
      assert.ok(fs.lstatSync(join(layer.path, d)).isDirectory(), d);
      assert.equal(nativeSyscalls().lgetxattr(join(layer.path, d), 'trusted.overlay.opaque')?.toString(), 'y', d);
    }
    // h held nothing of this layer's own: it is simply deleted.
    const h = fs.lstatSync(join(layer.path, 'h'));
    assert.ok(h.isCharacterDevice() && h.rdev === 0);
  });

  it('records the directories no entry declared, and which of them hold only markers', async () => {
    for (const format of ['overlay', 'marker'] as const) {
      const layer = await commit([
        file('a/b/f', 'f'), file('w/.wh.x'), file('w/v/.wh..wh..opq'), file('declared/.wh.y'), { name: 'declared/', type: 'dir' }, file('mixed/.wh.z'), file('mixed/real', 'r'),
      ], format);
      assert.deepEqual(layer.implicitDirs, ['a', 'a/b', 'mixed', 'w', 'w/v'], format);
      assert.deepEqual(layer.whiteoutOnlyDirs, ['w', 'w/v'], format);
    }
  });

  it('hard links share an inode', async () => {
    const layer = await commit([file('a', 'data'), { name: 'b', type: 'hardlink', linkname: 'a' }, { name: 'c/d', type: 'hardlink', linkname: '/a' }]);
    const a = fs.statSync(join(layer.path, 'a'));
    assert.equal(fs.statSync(join(layer.path, 'b')).ino, a.ino);
    assert.equal(fs.statSync(join(layer.path, 'c/d')).ino, a.ino);
    assert.equal(a.nlink, 3);
  });

  it('keeps setuid modes, owners and mtimes', { skip: !isRoot && 'needs root' }, async () => {
    const layer = await commit([
      { name: 'bin/', type: 'dir', mode: 0o750, uid: 10, gid: 20, mtime: 1_500_000_000 },
      file('bin/su', 'x', { mode: 0o4755, uid: 1234, gid: 5678, mtime: 1_600_000_000 }),
      file('bin/sg', 'x', { mode: 0o2711, uid: 1, gid: 2 }),
      { name: 'tmp/', type: 'dir', mode: 0o1777 },
      { name: 'ro/', type: 'dir', mode: 0o555 },
      file('ro/inside', 'x'),
    ]);
    const su = fs.statSync(join(layer.path, 'bin/su'));
    assert.equal(su.mode & 0o7777, 0o4755);
    assert.equal(su.uid, 1234);
    assert.equal(su.gid, 5678);
    assert.equal(su.mtimeMs, 1_600_000_000_000);
    assert.equal(fs.statSync(join(layer.path, 'bin/sg')).mode & 0o7777, 0o2711);
    const bin = fs.statSync(join(layer.path, 'bin'));
    assert.equal(bin.mode & 0o7777, 0o750);
    assert.equal([bin.uid, bin.gid].join(':'), '10:20');
    assert.equal(bin.mtimeMs, 1_500_000_000_000, 'directory mtime survives later entries');
    assert.equal(fs.statSync(join(layer.path, 'tmp')).mode & 0o7777, 0o1777);
    assert.equal(fs.statSync(join(layer.path, 'ro')).mode & 0o7777, 0o555);
  });

  it('a directory declared twice takes the second owner, even when that is our own', { skip: !isRoot && 'needs root' }, async () => {
    const layer = await commit([
      { name: 'd/', type: 'dir', uid: 1000, gid: 1000 },
      file('d/f', 'x'),
      { name: 'd/', type: 'dir', uid: 0, gid: 0 },
    ]);
    const st = fs.statSync(join(layer.path, 'd'));
    assert.equal(`${st.uid}:${st.gid}`, '0:0');
  });

  it('owners stay exact when the layer root is setgid to another group (new entries would inherit it)', { skip: !isRoot && 'needs root' }, async () => {
    const root = join(tmp, `setgid-root-${seq++}`);
    fs.mkdirSync(root);
    fs.chownSync(root, 0, 4321);
    fs.chmodSync(root, 0o2775);
    const bytes = tar([file('a', 'x'), { name: 'd/', type: 'dir', mode: 0o755 }, file('d/b', 'y'), { name: 'l', type: 'symlink', linkname: 'a' }, file('e/f', 'z')]);
    await pipeline(Readable.from([bytes]), new TarUnpacker({ root, whiteoutFormat: 'overlay', privileged: true }));
    for (const path of ['a', 'd', 'd/b', 'l', 'e/f']) {
      const st = fs.lstatSync(join(root, path));
      assert.equal(`${st.uid}:${st.gid}`, '0:0', path);
    }
  });

  it('the ./ entry sets the layer root metadata', async () => {
    const layer = await commit([{ name: './', type: 'dir', mode: 0o711, mtime: 1_234_567_890 }, file('a')]);
    const st = fs.statSync(layer.path);
    assert.equal(st.mode & 0o7777, 0o711);
    assert.equal(st.mtimeMs, 1_234_567_890_000);
  });

  it('PAX long names, long link names and xattrs (binary-safe); trusted.overlay.* from the tar is dropped', async () => {
    const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(90)}.txt`;
    const binary = Buffer.from([0x01, 0x00, 0xff, 0x80, 0x0a, 0x3d]);
    const layer = await commit([
      file(long, 'long', { xattrs: { 'user.foo': 'bar', 'user.bin': binary, 'trusted.overlay.redirect': '/x' } }),
      { name: 'ln', type: 'symlink', linkname: `/${long}` },
    ]);
    const p = join(layer.path, long);
    assert.equal(fs.readFileSync(p, 'utf8'), 'long');
    const native = nativeSyscalls();
    assert.equal(native.lgetxattr(p, 'user.foo')?.toString(), 'bar');
    assert.deepEqual(native.lgetxattr(p, 'user.bin'), binary);
    assert.equal(native.lgetxattr(p, 'trusted.overlay.redirect'), null);
    assert.equal(fs.readlinkSync(join(layer.path, 'ln')), `/${long}`);
  });

  it('symlinks are kept verbatim, with their mtime', async () => {
    const layer = await commit([{ name: 'etc/alt', type: 'symlink', linkname: '../../../../nowhere', mtime: 1_111_111_111 }]);
    const st = fs.lstatSync(join(layer.path, 'etc/alt'));
    assert.ok(st.isSymbolicLink());
    assert.equal(st.mtimeMs, 1_111_111_111_000);
    assert.equal(fs.readlinkSync(join(layer.path, 'etc/alt')), '../../../../nowhere');
  });

  it('a file replacing a symlink of the same layer replaces the link, not its target', async () => {
    const target = join(outside, 'target');
    fs.writeFileSync(target, 'original');
    const layer = await commit([{ name: 'link', type: 'symlink', linkname: target }, file('link', 'new')]);
    assert.equal(fs.readFileSync(target, 'utf8'), 'original');
    assert.ok(fs.lstatSync(join(layer.path, 'link')).isFile());
    assert.equal(fs.readFileSync(join(layer.path, 'link'), 'utf8'), 'new');
  });

  it('later entries replace earlier ones: dir by file, file by dir, symlink by dir', async () => {
    const layer = await commit([
      file('a/inner', 'x'),
      file('a', 'now a file'),
      file('b', 'x'),
      { name: 'b/', type: 'dir' },
      file('b/c', 'c'),
      { name: 's', type: 'symlink', linkname: outside },
      { name: 's/', type: 'dir' },
      file('s/f', 'inside'),
    ]);
    assert.equal(fs.readFileSync(join(layer.path, 'a'), 'utf8'), 'now a file');
    assert.equal(fs.readFileSync(join(layer.path, 'b/c'), 'utf8'), 'c');
    assert.ok(fs.lstatSync(join(layer.path, 's')).isDirectory());
    assert.equal(fs.existsSync(join(outside, 'f')), false);
  });

  it('devices and fifos', { skip: !isRoot && 'needs root' }, async () => {
    const layer = await commit([
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop0', type: 'block', devmajor: 7, devminor: 0, mode: 0o660 },
      { name: 'run/fifo', type: 'fifo', mode: 0o600 },
    ]);
    const nul = fs.lstatSync(join(layer.path, 'dev/null'));
    assert.ok(nul.isCharacterDevice());
    assert.equal(nul.rdev, fs.statSync('/dev/null').rdev);
    assert.equal(nul.mode & 0o7777, 0o666);
    assert.ok(fs.lstatSync(join(layer.path, 'dev/loop0')).isBlockDevice());
    assert.ok(fs.lstatSync(join(layer.path, 'run/fifo')).isFIFO());
  });

  it('counts entries and content bytes', async () => {
    const layer = await commit([{ name: 'd/', type: 'dir' }, file('d/a', '12345'), file('d/b', 'x'.repeat(70_000)), { name: 'l', type: 'symlink', linkname: 'd' }]);
    assert.equal(layer.entries, 4);
    assert.equal(layer.size, 70_005);
  });

  it('consumes every input byte, including bytes after the end-of-archive blocks', async () => {
    const { store } = newStore();
    const bytes = tar([file('a', 'x'.repeat(3000))], { trailer: Buffer.alloc(10_000, 7) });
    let seen = 0;
    const counter = new PassThrough();
    counter.on('data', (c: Buffer) => (seen += c.length));
    const writer = await store.stage(Digest.of(bytes));
    // Odd chunk sizes exercise headers and bodies split across writes.
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 333) chunks.push(bytes.subarray(i, i + 333));
    await pipeline(Readable.from(chunks), counter, writer.sink);
    assert.equal(seen, bytes.length);
    const layer = await writer.commit();
    assert.equal(fs.readFileSync(join(layer.path, 'a'), 'utf8'), 'x'.repeat(3000));
  });

  it('a tar without end-of-archive blocks, and an empty stream, are accepted', async () => {
    assert.equal((await commit([])).entries, 0);
    const { store } = newStore();
    const bytes = tar([file('a', 'x')], { noEndBlocks: true });
    const writer = await store.stage(Digest.of(bytes));
    await pipeline(Readable.from([bytes]), writer.sink);
    assert.equal((await writer.commit()).entries, 1);
  });
});

describe('unpack: degraded and failing environments', () => {
  it('unprivileged: owners and devices are skipped and reported, the rest is unpacked', async () => {
    const dir = join(tmp, `unpriv-${seq++}`);
    fs.mkdirSync(dir);
    const reported: string[] = [];
    const sink = new TarUnpacker({
      root: dir,
      whiteoutFormat: 'marker',
      privileged: false,
      onDegraded: (what, entry) => reported.push(`${what}:${entry}`),
    });
    const layer = tar([
      file('a', 'a', { uid: 1234, gid: 5678 }),
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3 },
      file('x', 'x', { xattrs: { 'security.capability': Buffer.from([1, 2, 3]) } }),
      { name: 'ro/', type: 'dir', mode: 0o555 },
      file('ro/f', 'f'),
    ]);
    await pipeline(Readable.from([layer]), sink);
    assert.equal(fs.readFileSync(join(dir, 'a'), 'utf8'), 'a');
    assert.equal(fs.existsSync(join(dir, 'dev/null')), false);
    assert.equal(fs.statSync(join(dir, 'ro')).mode & 0o777, 0o555);
    assert.deepEqual(reported, ['ownership:a', 'device:dev/null', 'xattr:x']);
    assert.deepEqual(sink.stats, { entries: 5, bytes: 3, streamBytes: layer.length, implicitDirs: ['dev'], whiteoutOnlyDirs: [] });
  });

  it('the store warns once per kind of degradation', async () => {
    const { store, logs } = newStore('marker');
    const degraded = (store as unknown as { degraded(what: string, entry: string): void }).degraded.bind(store);
    degraded('ownership', 'a');
    degraded('ownership', 'b');
    degraded('device', 'c');
    assert.deepEqual(logs.map((l) => `${l.level}:${l.event}`), ['warn:layer-unpack-degraded', 'warn:layer-unpack-degraded']);
  });

  it('a full disk is NO_SPACE, and abort still cleans up', { skip: !isRoot && 'needs root to mount a tmpfs' }, async () => {
    const mnt = join(tmp, `small-${seq++}`);
    fs.mkdirSync(mnt);
    nativeSyscalls().mount('tmpfs', mnt, 'tmpfs', 0, 'size=256k');
    try {
      const store = new FsLayerStore(mnt, { whiteoutFormat: 'marker' });
      const bytes = tar([file('big', Buffer.alloc(1024 * 1024, 1).toString())]);
      const writer = await store.stage(Digest.of(bytes));
      await assert.rejects(pipeline(Readable.from([bytes]), writer.sink), { code: 'NO_SPACE' });
      await writer.abort();
      assert.deepEqual(fs.readdirSync(join(mnt, 'staging')), []);
    } finally {
      nativeSyscalls().umount2(mnt, 0);
    }
  });

  it('removeTree copes with read-only directories without root', { skip: !isRoot && 'needs root to switch to nobody' }, async () => {
    const parent = join(tmp, `ro-tree-${seq++}`);
    const dir = join(parent, 'layer');
    fs.mkdirSync(join(dir, 'a/b'), { recursive: true });
    fs.writeFileSync(join(dir, 'a/b/f'), 'f');
    fs.chmodSync(join(dir, 'a/b'), 0o555);
    fs.chmodSync(join(dir, 'a'), 0o555);
    fs.chmodSync(tmp, 0o755);
    execFileSync('chown', ['-R', '65534:65534', parent]);
    const script = `import { removeTree } from ${JSON.stringify(new URL('../../src/adapters/outbound/layer-store/fs-layer-store.ts', import.meta.url).pathname)};\nawait removeTree(${JSON.stringify(dir)});`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      uid: 65534,
      gid: 65534,
      cwd: new URL('../..', import.meta.url).pathname,
      encoding: 'utf8',
    });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(fs.existsSync(dir), false);
  });
});
