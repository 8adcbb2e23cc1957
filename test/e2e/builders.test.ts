import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { Buildah, layerListings, manifestMediaType, pushLayout, umociImage, umociUnpack, type BuildahStep } from '../harness/builders.js';
import { startRegistry, type StartedRegistry } from '../harness/registry.js';
import { pythonEntries } from '../harness/tar-writers.js';
import { buildCli, type BuiltCli } from '../helpers/built-cli.js';
import { buildImage, imageManifestEntry, writeOciLayout } from '../helpers/image-builder.js';
import { unmountBelow } from '../helpers/mounts.js';
import { pseudoRandomBytes } from '../helpers/seeded-random.js';
import { treeOf } from '../helpers/tree.js';

let dir: string;
let registry: StartedRegistry;
let cli: BuiltCli;

before(async () => {
  assert.equal(process.getuid?.(), 0, 'umoci unpack, buildah and the overlay snapshotter need root');
  dir = await mkdtemp(join(tmpdir(), 'image-ts-e2e-builders-'));
  registry = await startRegistry('open');
  cli = await buildCli(dir);
});

after(async () => {
  if (dir) unmountBelow(dir);
  await registry?.stop();
  await cli?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Pulls host/repo into a fresh bundle with the snapshotter; the rootfs path. */
async function pull(repo: string, snapshotter: 'overlay' | 'copy'): Promise<string> {
  const bundle = join(dir, `bundle-${repo.replace(/[/:]/g, '-')}-${snapshotter}`);
  const r = await cli.run(['pull', `${registry.host}/${repo}`, bundle, '--work-dir', join(dir, 'work'), '--plain-http', registry.host, '--snapshotter', snapshotter]);
  assert.equal(r.code, 0, r.stderr);
  return join(bundle, 'rootfs');
}

/**
 * Both snapshotters give umoci's tree for the image at host/repo. Under
 * overlay, the files in `overlayLinks` may show more links than umoci's:
 * an upper layer deleted another name of their inode, and overlayfs counts
 * the lower inode's links (so does containerd's overlayfs snapshotter),
 * where umoci unlinks the name on one tree. Everything else must match.
 */
async function assertLikeUmoci(repo: string, reference: readonly string[], overlayLinks: readonly string[] = []): Promise<void> {
  for (const snapshotter of ['overlay', 'copy'] as const) {
    const tree = await treeOf(await pull(repo, snapshotter), { mtimes: true });
    const loose = (lines: readonly string[]): string[] =>
      snapshotter === 'copy' ? [...lines] : lines.map((l) => (overlayLinks.some((p) => l.startsWith(`${p} `)) ? l.replace(/ n\d+ /, ' n? ') : l));
    assert.deepEqual(loose(tree), loose(reference), snapshotter);
  }
}

const sh = (cmd: string, ...args: string[]): void => void execFileSync(cmd, args, { stdio: 'pipe' });
const at = (root: string, ...parts: (string | number[])[]): Buffer =>
  Buffer.concat([Buffer.from(`${root}/`), ...parts.map((p) => Buffer.from(p as string))]);

describe('images umoci builds pull into the rootfs umoci unpacks', () => {
  it('directories replaced by a file, a symlink or nothing (umoci writes a whiteout for each deleted child), then made again', async () => {
    const layout = join(dir, 'umoci-replace');
    await umociImage(layout, 'v1', [
      (r) => {
        fs.mkdirSync(join(r, 'd2f'));
        fs.writeFileSync(join(r, 'd2f/child.txt'), 'child\n');
        fs.mkdirSync(join(r, 'd2s/deep'), { recursive: true });
        fs.writeFileSync(join(r, 'd2s/deep/x'), 'x\n');
        fs.mkdirSync(join(r, 'gone/sub'), { recursive: true });
        fs.writeFileSync(join(r, 'gone/sub/y'), 'y\n');
        fs.writeFileSync(join(r, 'f2d'), 'a file first\n');
        fs.mkdirSync(join(r, 'keep'), { mode: 0o750 });
        fs.writeFileSync(join(r, 'keep/a'), 'a\n');
      },
      (r) => {
        fs.rmSync(join(r, 'd2f'), { recursive: true });
        fs.writeFileSync(join(r, 'd2f'), 'now a file\n');
        fs.rmSync(join(r, 'd2s'), { recursive: true });
        fs.symlinkSync('/etc', join(r, 'd2s'));
        fs.rmSync(join(r, 'gone'), { recursive: true });
        fs.rmSync(join(r, 'f2d'));
        fs.mkdirSync(join(r, 'f2d'));
        fs.writeFileSync(join(r, 'f2d/inner'), 'inner\n');
        fs.writeFileSync(join(r, 'keep/b'), 'b\n');
      },
      (r) => {
        fs.mkdirSync(join(r, 'gone'));
        fs.writeFileSync(join(r, 'gone/again'), 'again\n');
        fs.rmSync(join(r, 'd2f'));
        fs.mkdirSync(join(r, 'd2f'));
        fs.writeFileSync(join(r, 'd2f/new.txt'), 'new\n');
        fs.rmSync(join(r, 'keep/a'));
      },
    ], dir);
    // The case at hand: umoci's second layer has the file, then a whiteout below it.
    const listings = await layerListings(layout, 'v1');
    assert.ok(listings[1]!.includes('d2f') && listings[1]!.includes('d2f/.wh.child.txt'), listings[1]!.join(' '));
    assert.ok(listings[1]!.some((n) => n.startsWith('d2s/') && n.includes('.wh.')), listings[1]!.join(' '));

    await pushLayout(layout, 'v1', registry.host, 'umoci/replace:v1');
    const reference = await treeOf(await umociUnpack(layout, 'v1', join(dir, 'ref-replace')), { mtimes: true });
    for (const snapshotter of ['overlay', 'copy'] as const) {
      assert.deepEqual(await treeOf(await pull('umoci/replace:v1', snapshotter), { mtimes: true }), reference, snapshotter);
    }
  });
});

/**
 * Three buildah layers (Go's archive/tar over overlay diffs): the first a
 * COPY of a prepared tree then owners, modes, xattrs and devices set in the
 * rootfs; the next two delete, replace (directory, file, symlink, each into
 * the others), make opaque directories, hard link across layers, and
 * change contents and metadata.
 */
const BUILDAH_STEPS: readonly BuildahStep[] = [
  async ({ rootfs, copy }) => {
    const prep = join(dir, 'buildah-prep');
    fs.mkdirSync(join(prep, 'etc'), { recursive: true });
    fs.writeFileSync(join(prep, 'etc/hostname'), 'box\n');
    fs.mkdirSync(join(prep, 'data'));
    fs.writeFileSync(join(prep, 'data/big'), pseudoRandomBytes(21, 150_000));
    fs.writeFileSync(join(prep, 'data/empty'), '');
    fs.writeFileSync(join(prep, 'data/x'), 'with xattrs\n');
    const sparse = fs.openSync(join(prep, 'data/sparse'), 'w');
    fs.writeSync(sparse, Buffer.from('far out'), 0, 7, 3_000_000);
    fs.closeSync(sparse);
    fs.writeFileSync(at(prep, 'caf', [0xe9]), 'latin-1\n');
    fs.mkdirSync(at(prep, 'd', [0xff]));
    fs.writeFileSync(at(prep, 'd', [0xff], '/x'), 'in a raw-named directory\n');
    const long = `${'l'.repeat(120)}/${'m'.repeat(120)}/${'n'.repeat(100)}`;
    fs.mkdirSync(join(prep, long, '..'), { recursive: true });
    fs.writeFileSync(join(prep, long), 'long path\n');
    fs.symlinkSync(long, join(prep, 'long-link'));
    for (const d of ['gone/sub', 'd2f', 'd2s/deep', 'opaque', 'keep', 'usr/lib']) fs.mkdirSync(join(prep, d), { recursive: true });
    for (const f of ['gone/sub/y', 'd2f/child.txt', 'd2s/deep/x', 'opaque/a', 'opaque/b', 'keep/a', 'keep/b', 'f2d', 'usr/lib/libc.so']) fs.writeFileSync(join(prep, f), `${f}\n`);
    fs.symlinkSync('usr/lib', join(prep, 'lib'));
    fs.symlinkSync('etc', join(prep, 's2d'));
    await copy(prep, '/');
    // What COPY cannot give: owners, special modes, xattrs, devices, hard links, old times.
    fs.mkdirSync(join(rootfs, 'bin'));
    fs.writeFileSync(join(rootfs, 'bin/app'), '#!/bin/true\n');
    fs.linkSync(join(rootfs, 'bin/app'), join(rootfs, 'bin/app2'));
    sh('chown', '1000:1000', join(rootfs, 'bin/app'));
    fs.chmodSync(join(rootfs, 'bin/app'), 0o4755);
    fs.mkdirSync(join(rootfs, 'home/user'), { recursive: true, mode: 0o700 });
    sh('chown', '1000:1000', join(rootfs, 'home/user'));
    fs.mkdirSync(join(rootfs, 'srv'));
    sh('chown', '0:50', join(rootfs, 'srv'));
    fs.chmodSync(join(rootfs, 'srv'), 0o2775);
    fs.mkdirSync(join(rootfs, 'tmp'));
    fs.chmodSync(join(rootfs, 'tmp'), 0o1777);
    fs.writeFileSync(join(rootfs, 'owned'), 'large owner\n');
    sh('chown', '3000000:70000', join(rootfs, 'owned'));
    sh('setfattr', '-n', 'user.comment', '-v', 'plain', join(rootfs, 'data/x'));
    sh('setfattr', '-n', 'security.capability', '-v', '0sAQAAAgAEAAAAAAAAAAAAAAAAAAA=', join(rootfs, 'bin/app'));
    fs.mkdirSync(join(rootfs, 'dev'));
    sh('mknod', join(rootfs, 'dev/null'), 'c', '1', '3');
    sh('mkfifo', join(rootfs, 'fifo'));
    fs.writeFileSync(join(rootfs, 'old'), 'before 1970\n');
    sh('touch', '-h', '-d', '1960-01-01T00:00:00Z', join(rootfs, 'old'));
  },
  ({ rootfs }) => {
    fs.rmSync(join(rootfs, 'gone'), { recursive: true });
    fs.rmSync(join(rootfs, 'd2f'), { recursive: true });
    fs.writeFileSync(join(rootfs, 'd2f'), 'now a file\n');
    fs.rmSync(join(rootfs, 'f2d'));
    fs.mkdirSync(join(rootfs, 'f2d'));
    fs.writeFileSync(join(rootfs, 'f2d/inner'), 'inner\n');
    fs.rmSync(join(rootfs, 'd2s'), { recursive: true });
    fs.symlinkSync('/etc', join(rootfs, 'd2s'));
    fs.rmSync(join(rootfs, 's2d'));
    fs.mkdirSync(join(rootfs, 's2d'));
    fs.writeFileSync(join(rootfs, 's2d/file'), 'was a symlink\n');
    fs.rmSync(join(rootfs, 'opaque'), { recursive: true });
    fs.mkdirSync(join(rootfs, 'opaque'));
    fs.writeFileSync(join(rootfs, 'opaque/c'), 'c\n');
    fs.linkSync(join(rootfs, 'data/big'), join(rootfs, 'data/big-link'));
    fs.chmodSync(join(rootfs, 'etc/hostname'), 0o600);
    sh('chown', '123:456', join(rootfs, 'etc/hostname'));
    sh('setfattr', '-n', 'user.comment', '-v', 'changed', join(rootfs, 'data/x'));
    fs.writeFileSync(join(rootfs, 'keep/a'), 'rewritten\n');
    fs.rmSync(join(rootfs, 'keep/b'));
    fs.rmSync(at(rootfs, 'caf', [0xe9]));
  },
  ({ rootfs }) => {
    fs.mkdirSync(join(rootfs, 'gone'));
    fs.writeFileSync(join(rootfs, 'gone/again'), 'again\n');
    fs.rmSync(join(rootfs, 'd2f'));
    fs.mkdirSync(join(rootfs, 'd2f'));
    fs.writeFileSync(join(rootfs, 'd2f/new.txt'), 'new\n');
    fs.rmSync(join(rootfs, 'bin/app2'));
    fs.renameSync(join(rootfs, 'data/empty'), join(rootfs, 'data/moved'));
    fs.rmSync(at(rootfs, 'd', [0xff]), { recursive: true });
    fs.writeFileSync(at(rootfs, 'caf', [0xe9]), 'back again\n');
  },
];

describe('images buildah builds pull into the rootfs umoci unpacks', () => {
  it('docker v2s2 and OCI, three layers: deletes, replacements, opaque directories, hard links across layers, sparse files, xattrs', async () => {
    const buildah = new Buildah(join(dir, 'buildah'));
    try {
      await buildah.image({ docker: 'corpus-docker', oci: 'corpus-oci' }, BUILDAH_STEPS);
      for (const [format, image, mediaType] of [
        ['v2s2', 'corpus-docker', 'application/vnd.docker.distribution.manifest.v2+json'],
        ['oci', 'corpus-oci', 'application/vnd.oci.image.manifest.v1+json'],
      ] as const) {
        const repo = `buildah/${format}:v1`;
        await buildah.push(image, registry.host, repo, format);
        assert.equal(await manifestMediaType(registry.host, repo), mediaType);
        const layout = join(dir, `buildah-${format}`);
        await buildah.layout(image, layout, 'v1');
        // The cases at hand are in the layers buildah wrote.
        const [, second, third] = await layerListings(layout, 'v1');
        for (const name of ['.wh.gone', 'opaque/.wh..wh..opq', 'keep/.wh.b', 'data/big-link', 'd2f']) assert.ok(second!.includes(name), `${name} in ${second!.join(' ')}`);
        assert.ok(second!.includes('data/big') && third!.includes('bin/.wh.app2'), third!.join(' '));
        const reference = await treeOf(await umociUnpack(layout, 'v1', join(dir, `ref-buildah-${format}`)), { mtimes: true });
        assert.ok(reference.some((l) => l.startsWith('data/big-link ') && / n2 /.test(l)), reference.join('\n'));
        // bin/app2 went in the third layer: bin/app keeps 2 links under overlay, 1 in umoci's tree and the copy.
        await assertLikeUmoci(repo, reference, ['bin/app']);
      }
    } finally {
      await buildah.cleanup();
    }
  });
});

describe('layers of different writers, stacked, pull into the rootfs umoci unpacks', () => {
  it('hard links to a lower layer\'s file, PAX records with empty values, names that are not UTF-8 (GNU tar, then Python)', async () => {
    const src = join(dir, 'stack-src');
    fs.mkdirSync(join(src, 'lib'), { recursive: true });
    fs.writeFileSync(join(src, 'lib/t'), 'the target\n');
    fs.chmodSync(join(src, 'lib/t'), 0o640);
    fs.writeFileSync(join(src, 'lib/u'), 'deleted above\n');
    fs.writeFileSync(at(src, 'caf', [0xe9]), 'latin-1\n');
    const sparse = fs.openSync(join(src, 'sparse'), 'w');
    fs.writeSync(sparse, Buffer.from('tail'), 0, 4, 2_000_000);
    fs.closeSync(sparse);
    sh('touch', '-d', '@1500000000', join(src, 'lib/t'), join(src, 'lib/u'), at(src, 'caf', [0xe9]).toString('latin1'), join(src, 'sparse'), join(src, 'lib'));
    const lower = join(dir, 'stack-lower.tar');
    sh('tar', '--format=posix', '--sparse', '--numeric-owner', '-cf', lower, '-C', src, '.');
    const upper = join(dir, 'stack-upper.tar');
    pythonEntries([
      { name: 'bin', type: 'dir', mtime: 1_600_000_000 },
      { name: 'bin/t-link', type: 'hardlink', linkname: 'lib/t' },
      { name: 'bin/raw-link', type: 'hardlink', linkname: 'caf\udce9' },
      { name: 'bin/l2', type: 'hardlink', linkname: 'bin/t-link' },
      { name: 'lib/.wh.u', mtime: 1_600_000_000 },
      { name: 'from-header', content: 'path=\n', pax: { path: '' } },
      { name: 'owned', content: 'uid=\n', uid: 77, gid: 88, pax: { uid: '', gid: '' } },
      { name: 'dated', content: 'mtime=\n', mtime: 1_400_000_000, pax: { mtime: '' } },
      { name: 'unset', content: 'SCHILY.xattr.user.e=\n', pax: { 'SCHILY.xattr.user.e': '', 'SCHILY.xattr.user.f': 'kept' } },
      { name: 'link', type: 'symlink', linkname: 'lib/t', pax: { linkpath: '' } },
    ], upper);
    const image = buildImage({ layers: [{ tar: fs.readFileSync(lower) }, { tar: fs.readFileSync(upper) }] });
    const layout = join(dir, 'stack-layout');
    await writeOciLayout(layout, [imageManifestEntry(image, 'v1')]);
    await pushLayout(layout, 'v1', registry.host, 'stack/writers:v1');
    const reference = await treeOf(await umociUnpack(layout, 'v1', join(dir, 'ref-stack')), { mtimes: true });
    assert.ok(reference.some((l) => l.startsWith('bin/t-link ') && / n3 /.test(l)), reference.join('\n'));
    assert.ok(reference.some((l) => l.startsWith('owned ') && / 77:88 /.test(l)), reference.join('\n'));
    await assertLikeUmoci('stack/writers:v1', reference);
  });
});
