import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { assertCliError, cli } from '../helpers/cli.js';
import { unmountBelow } from '../helpers/mounts.js';
import { buildImage, imageManifestEntry, sha256, writeOciLayout, type BuiltImage } from '../helpers/image-builder.js';
import { MTIME, base, upper } from '../helpers/fixture-layers.js';
import { tar, type TarEntry } from '../helpers/tar-writer.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) throw new Error('the end-to-end tests run as root (overlay mounts, owners, devices); run npm test as root');

let dir: string;
let layout: string;
let image: BuiltImage;

function ociImage(layers: TarEntry[][], config?: Record<string, unknown>, compression: 'gzip' | 'zstd' | 'none' = 'gzip'): BuiltImage {
  return buildImage({ layers: layers.map((entries) => ({ tar: tar(entries), compression })), config });
}

async function storeIsEmpty(work: string): Promise<void> {
  const layers = existsSync(join(work, 'layers', 'sha256')) ? await readdir(join(work, 'layers', 'sha256')) : [];
  const staging = existsSync(join(work, 'staging')) ? await readdir(join(work, 'staging')) : [];
  assert.deepEqual({ layers, staging }, { layers: [], staging: [] });
  if (existsSync(join(work, 'metadata.json'))) {
    const meta = JSON.parse(await readFile(join(work, 'metadata.json'), 'utf8')) as { images: object; bundles: object };
    assert.deepEqual([meta.images, meta.bundles], [{}, {}]);
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-e2e-'));
  layout = join(dir, 'layout');
  image = ociImage([base, upper], { User: 'app', Entrypoint: ['/bin/sh'], Cmd: ['-c', 'true'], WorkingDir: '/data', Env: ['A=1'] });
  const zstdImage = ociImage([base, upper], undefined, 'zstd');
  const plainImage = ociImage([base], undefined, 'none');
  const hostile = (name: string, entries: TarEntry[]) => imageManifestEntry(ociImage([base, entries]), name);
  const diffIdLie = buildImage({ layers: [{ tar: tar(base) }, { tar: tar(upper), diffIdOverride: sha256('not this') }] });
  // A blob whose bytes are not the ones the manifest's digest names (same size, so only the digest can tell).
  const blobLie = buildImage({ layers: [{ tar: tar([...upper, { name: 'only-in-blob-lie', content: 'x' }]) }] });
  const realBytes = blobLie.layers[0]!.bytes;
  const forged = Buffer.from(realBytes);
  forged[forged.length - 5] ^= 0xff;
  blobLie.blobs.set(blobLie.layers[0]!.digest, forged);
  const busybox = await readFile('/bin/busybox');
  const bb = buildImage({ layers: [{ tar: tar([
    { name: 'bin/', type: 'dir' },
    { name: 'bin/busybox', content: busybox, mode: 0o755 },
    { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
  ]) }], config: { Cmd: ['/bin/sh'] } });
  await writeOciLayout(layout, [
    imageManifestEntry(image, 'multi'),
    imageManifestEntry(zstdImage, 'zstd'),
    imageManifestEntry(plainImage, 'plain'),
    imageManifestEntry(bb, 'busybox'),
    hostile('traversal', [{ name: '../../escape', content: 'x' }]),
    hostile('symlink-escape', [{ name: 'evil', type: 'symlink', linkname: '/' }, { name: 'evil/tmp/image-ts-pwned', content: 'x' }]),
    hostile('symlink-up', [{ name: 'up', type: 'symlink', linkname: '../../../../..' }, { name: 'up/tmp/image-ts-pwned', content: 'x' }]),
    hostile('hardlink-escape', [{ name: 'h', type: 'hardlink', linkname: '../../../../etc/passwd' }]),
    imageManifestEntry(diffIdLie, 'diffid-lie'),
    imageManifestEntry(blobLie, 'blob-lie'),
  ]);
});

after(async () => {
  for (const b of (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith('bundle'))) {
    await cli(['bundle', 'rm', join(dir, b), '--work-dir', join(dir, 'work')]).catch(() => undefined);
  }
  unmountBelow(dir);
  await rm(dir, { recursive: true, force: true });
});

async function checkRootfs(rootfs: string, snapshotter: string): Promise<void> {
  assert.equal(await readFile(join(rootfs, 'keep.txt'), 'utf8'), 'v2', 'upper file wins');
  assert.equal(existsSync(join(rootfs, 'gone.txt')), false, 'whiteout deletes');
  assert.deepEqual((await readdir(join(rootfs, 'cache'))).sort(), ['new'], 'opaque dir hides lower entries');
  assert.equal((await stat(join(rootfs, 'bin/suid'))).mode & 0o7777, 0o4755, 'setuid kept');
  assert.equal((await stat(join(rootfs, 'tmp'))).mode & 0o7777, 0o1777, 'sticky kept');
  const owned = await stat(join(rootfs, 'data/owned'));
  assert.deepEqual([owned.uid, owned.gid, owned.mode & 0o777], [1234, 5678, 0o640], 'owner and mode kept');
  assert.equal(Math.floor(owned.mtimeMs / 1000), MTIME, 'mtime kept');
  const [a, b] = [await stat(join(rootfs, 'a.txt')), await stat(join(rootfs, 'b.txt'))];
  assert.equal(a.ino, b.ino, `hard link shares the inode (${snapshotter})`);
  assert.equal(await readlink(join(rootfs, 'link')), 'keep.txt');
  assert.equal(await readFile(join(rootfs, 'deep', 'n'.repeat(120), 'file-with-a-long-path'), 'utf8'), 'long');
  const xattr = execFileSync('getfattr', ['--only-values', '-n', 'user.origin', join(rootfs, 'xattr.txt')]).toString();
  assert.equal(xattr, 'image-ts', 'PAX xattr kept');
  assert.equal(existsSync(join(rootfs, '.wh.gone.txt')), false);
}

describe('image-ts pull from an OCI layout', () => {
  for (const snapshotter of ['overlay', 'copy'] as const) {
    it(`unpacks whiteouts, opaque dirs, hard links, owners and modes (${snapshotter})`, async () => {
      const bundle = join(dir, `bundle-${snapshotter}`);
      const r = await cli(['pull', `oci:${layout}:multi`, bundle, '--work-dir', join(dir, 'work'), '--snapshotter', snapshotter, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.deepEqual(Object.keys(out), ['reference', 'manifestDigest', 'configDigest', 'bundle', 'layers']);
      assert.equal(out['manifestDigest'], image.manifestDigest);
      assert.equal(out['configDigest'], image.configDigest);
      assert.deepEqual(out['layers'], image.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.bytes.length })));
      await checkRootfs(join(bundle, 'rootfs'), snapshotter);
      const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { user: unknown; args: string[]; cwd: string; env: string[] } };
      assert.deepEqual(spec.process.user, { uid: 1000, gid: 1000, additionalGids: [50] });
      assert.deepEqual(spec.process.args, ['/bin/sh', '-c', 'true']);
      assert.equal(spec.process.cwd, '/data');
      assert.ok(spec.process.env.includes('A=1') && spec.process.env.some((e) => e.startsWith('PATH=')));
      if (snapshotter === 'overlay') {
        const mounts = await readFile('/proc/mounts', 'utf8');
        assert.ok(mounts.includes(`${bundle}/rootfs overlay`), 'rootfs is an overlay mount');
      }
    });
  }

  it('pulls zstd and uncompressed layers', async () => {
    for (const ref of ['zstd', 'plain']) {
      const bundle = join(dir, `bundle-${ref}`);
      const r = await cli(['pull', `oci:${layout}:${ref}`, bundle, '--work-dir', join(dir, 'work'), '--quiet']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await readFile(join(bundle, 'rootfs', 'keep.txt'), 'utf8'), ref === 'zstd' ? 'v2' : 'v1');
    }
  });

  it('makes a bundle whose busybox runs under chroot', async () => {
    const bundle = join(dir, 'bundle-busybox');
    const r = await cli(['pull', `oci:${layout}:busybox`, bundle, '--work-dir', join(dir, 'work')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(execFileSync('chroot', [join(bundle, 'rootfs'), '/bin/busybox', 'echo', 'hello']).toString(), 'hello\n');
    execFileSync('chroot', [join(bundle, 'rootfs'), '/bin/busybox', 'true']);
  });

  it('reuses the store for a second bundle and keeps one copy of each layer', async () => {
    const bundle = join(dir, 'bundle-again');
    const r = await cli(['pull', `oci:${layout}:multi`, bundle, '--work-dir', join(dir, 'work')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /layers {3}2 \(0 fetched, 2 from the store\)/);
    const layerDirs = await readdir(join(dir, 'work', 'layers', 'sha256'));
    assert.equal(new Set(layerDirs).size, layerDirs.length);
    assert.ok(image.layers.every((l) => layerDirs.includes(l.diffId.slice(7))));
  });

  it('refuses an existing bundle with BUNDLE_EXISTS and leaves it alone', async () => {
    const bundle = join(dir, 'bundle-copy');
    const before = await readFile(join(bundle, 'config.json'), 'utf8');
    assertCliError(await cli(['pull', `oci:${layout}:multi`, bundle, '--work-dir', join(dir, 'work')]), 'BUNDLE_EXISTS');
    assert.equal(await readFile(join(bundle, 'config.json'), 'utf8'), before);
  });

  it('lists, inspects, removes bundles, images, and collects garbage', async () => {
    const work = join(dir, 'work');
    const list = await cli(['list', '--work-dir', work, '--json']);
    const images = JSON.parse(list.stdout) as { names: string[]; manifestDigest: string }[];
    assert.ok(images.some((i) => i.manifestDigest === image.manifestDigest && i.names.includes(`oci:${layout}:multi`)));
    const inspect = await cli(['inspect', image.manifestDigest, '--work-dir', work, '--json']);
    assert.equal(inspect.code, 0, inspect.stderr);
    const info = JSON.parse(inspect.stdout) as { bundles: string[]; layers: { refs: number }[] };
    assert.ok(info.bundles.length >= 3);
    assertCliError(await cli(['inspect', 'example.com/nothing:here', '--work-dir', work]), 'NOT_FOUND');

    const bundle = join(dir, 'bundle-overlay');
    assert.equal((await cli(['bundle', 'rm', bundle, '--work-dir', work])).code, 0);
    assert.equal(existsSync(bundle), false);
    assert.ok(!(await readFile('/proc/mounts', 'utf8')).includes(`${bundle}/rootfs`), 'unmounted');
    assertCliError(await cli(['bundle', 'rm', bundle, '--work-dir', work]), 'BUNDLE_NOT_FOUND');

    for (const b of (await readdir(dir)).filter((n) => n.startsWith('bundle'))) {
      assert.equal((await cli(['bundle', 'rm', join(dir, b), '--work-dir', work])).code, 0);
    }
    for (const i of images) assert.equal((await cli(['rm', i.manifestDigest, '--work-dir', work])).code, 0);
    const gc = await cli(['gc', '--work-dir', work, '--json']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.ok((JSON.parse(gc.stdout) as { removedLayers: string[] }).removedLayers.length >= 3);
    await storeIsEmpty(work);
  });
});

describe('image-ts pull refuses bad input and leaves nothing behind', () => {
  const cases: [string, string][] = [
    ['traversal', 'UNSAFE_LAYER'],
    ['symlink-escape', 'UNSAFE_LAYER'],
    ['symlink-up', 'UNSAFE_LAYER'],
    ['hardlink-escape', 'UNSAFE_LAYER'],
    ['diffid-lie', 'DIGEST_MISMATCH'],
    ['blob-lie', 'DIGEST_MISMATCH'],
  ];
  for (const [ref, code] of cases) {
    for (const snapshotter of ['overlay', 'copy']) {
      it(`${ref} gives ${code} (${snapshotter})`, async () => {
        const work = join(dir, `work-${ref}-${snapshotter}`);
        const bundle = join(dir, `hostile-${ref}-${snapshotter}`);
        assertCliError(await cli(['pull', `oci:${layout}:${ref}`, bundle, '--work-dir', work, '--snapshotter', snapshotter]), code);
        assert.equal(existsSync(bundle), false, 'no bundle');
        assert.equal(existsSync('/tmp/image-ts-pwned'), false, 'nothing written outside');
        // The good base layer may be committed; the bad layer, the image and the bundle must not be.
        const meta = existsSync(join(work, 'metadata.json'))
          ? JSON.parse(await readFile(join(work, 'metadata.json'), 'utf8')) as { images: object; bundles: object }
          : { images: {}, bundles: {} };
        assert.deepEqual([meta.images, meta.bundles], [{}, {}]);
        const staging = existsSync(join(work, 'staging')) ? await readdir(join(work, 'staging')) : [];
        assert.deepEqual(staging, []);
        const layers = existsSync(join(work, 'layers', 'sha256')) ? await readdir(join(work, 'layers', 'sha256')) : [];
        assert.ok(layers.length <= 1, `only the base layer may be committed, found ${layers.length}`);
        if (layers.length === 1) assert.equal(`sha256:${layers[0]}`, sha256(tar(base)));
      });
    }
  }

  it('names malformed references, missing refs and usage errors', async () => {
    const work = join(dir, 'work-errors');
    assertCliError(await cli(['pull', 'Not/A:Ref:', join(dir, 'x'), '--work-dir', work]), 'INVALID_REFERENCE');
    assertCliError(await cli(['pull', `oci:${layout}:nope`, join(dir, 'x'), '--work-dir', work]), 'NOT_FOUND');
    assertCliError(await cli(['pull', `oci:${layout}`, join(dir, 'x'), '--work-dir', work]), 'INVALID_REFERENCE');
    assertCliError(await cli(['pull', `oci:${join(dir, 'no-such-layout')}`, join(dir, 'x'), '--work-dir', work]), 'NOT_FOUND');
    assertCliError(await cli(['pull', 'busybox']), 'INVALID_ARGUMENT', 2);
    assertCliError(await cli(['pull', 'a', 'b', '--snapshotter', 'zfs']), 'INVALID_ARGUMENT', 2);
    assertCliError(await cli(['pull', 'a', 'b', '--platform', 'linux']), 'INVALID_ARGUMENT', 2);
    assertCliError(await cli(['list', '--creds', 'a:b']), 'INVALID_ARGUMENT', 2);
    assertCliError(await cli(['frobnicate']), 'INVALID_ARGUMENT', 2);
    assert.equal(existsSync(join(dir, 'x')), false);
  });

  it('rejects a corrupt gzip layer with INVALID_LAYER', async () => {
    const work = join(dir, 'work-corrupt');
    const good = gzipSync(tar(upper));
    const bad = Buffer.from(good);
    bad.fill(0, 30, 60);
    const img = buildImage({ layers: [{ tar: tar(upper) }] });
    // Keep the manifest honest about the bytes it names, so only decompression can fail.
    const doc = JSON.parse(img.manifest.toString()) as { layers: { digest: string; size: number }[] };
    doc.layers[0]!.digest = sha256(bad);
    doc.layers[0]!.size = bad.length;
    const manifest = Buffer.from(JSON.stringify(doc));
    const lay = join(dir, 'corrupt-layout');
    await writeOciLayout(lay, [{ ref: 'c', manifest: { digest: sha256(manifest), mediaType: img.manifestMediaType, bytes: manifest },
      blobs: new Map([[sha256(bad), bad], [img.configDigest, img.config], [sha256(manifest), manifest]]) }]);
    assertCliError(await cli(['pull', `oci:${lay}:c`, join(dir, 'y'), '--work-dir', work]), 'INVALID_LAYER');
    await storeIsEmpty(work);
    assert.ok((await lstat(dir)).isDirectory());
  });

  it('the built binary answers --help', async () => {
    const r = await cli(['--help'], { built: true });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /image-ts pull IMAGE BUNDLE_DIR/);
  });
});
