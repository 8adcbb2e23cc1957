import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startRegistry, type StartedRegistry } from '../harness/registry.js';
import { ROOT, assertCliError, cli } from '../helpers/cli.js';
import { unmountBelow } from '../helpers/mounts.js';
import { buildImage, imageManifestEntry, sha256, writeOciLayout, type BuiltImage } from '../helpers/image-builder.js';
import { tar, type TarEntry } from '../helpers/tar-writer.js';

const NOBODY = 65534;
const MTIME = 1_600_000_000;

const base: TarEntry[] = [
  { name: 'owned', content: 'x', uid: 1234, gid: 5678, mtime: MTIME },
  { name: 'gone', content: 'x', mtime: MTIME },
  { name: 'dir/', type: 'dir', mtime: MTIME },
  { name: 'dir/old', content: 'x', mtime: MTIME },
  { name: 'big', content: Buffer.alloc(2_000_000, 1), mtime: MTIME },
];
const upper: TarEntry[] = [
  { name: '.wh.gone', content: '', mtime: MTIME },
  { name: 'dir/', type: 'dir', mtime: MTIME },
  { name: 'dir/.wh..wh..opq', content: '', mtime: MTIME },
  { name: 'dir/new', content: 'n', mtime: MTIME },
];

let dir: string;
let layout: string;
let image: BuiltImage;
let registry: StartedRegistry;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-e2e-store-'));
  await chmod(dir, 0o755);
  layout = join(dir, 'layout');
  image = buildImage({ layers: [{ tar: tar(base) }, { tar: tar(upper), compression: 'zstd' }] });
  await writeOciLayout(layout, [imageManifestEntry(image, 'v1')]);
  registry = await startRegistry('open');
});

after(async () => {
  unmountBelow(dir);
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('without root', () => {
  it('pulls with the copy snapshotter, skips ownership and says so once', async () => {
    const home = join(dir, 'nobody');
    await mkdir(home);
    await chown(home, NOBODY, NOBODY);
    const r = await cli(['pull', `oci:${layout}:v1`, join(home, 'bundle'), '--work-dir', join(home, 'work')], { asUid: NOBODY });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(copy\)/);
    const warnings = r.stderr.trim().split('\n').filter((l) => l.startsWith('image-ts: warning:'));
    assert.equal(warnings.filter((w) => /owner/i.test(w)).length, 1, r.stderr);
    const rootfs = join(home, 'bundle', 'rootfs');
    assert.equal((await stat(join(rootfs, 'owned'))).uid, NOBODY, 'ownership is not applied');
    assert.equal(existsSync(join(rootfs, 'gone')), false);
    assert.deepEqual(await readdir(join(rootfs, 'dir')), ['new']);
  });

  it('refuses the overlay snapshotter with UNSUPPORTED', async () => {
    const home = join(dir, 'nobody');
    assertCliError(await cli(['pull', `oci:${layout}:v1`, join(home, 'b2'), '--work-dir', join(home, 'work'), '--snapshotter', 'overlay'], { asUid: NOBODY }), 'UNSUPPORTED');
    assert.equal(existsSync(join(home, 'b2')), false);
  });
});

describe('progress', () => {
  it('draws a progress line on a TTY and nothing extra otherwise', async () => {
    const tty = execFileSync('script', ['-qec', `${process.execPath} bin/image-ts.js pull oci:${layout}:v1 ${join(dir, 'tty-bundle')} --work-dir ${join(dir, 'work-tty')}`, '/dev/null'], { cwd: ROOT }).toString();
    assert.match(tty, /\r\x1b\[Klayers 2\/2 +[\d.]+\/[\d.]+ MB +[\d.]+ MB\/s/);
    assert.match(tty, /\| [0-9a-f]{12} [\d.]+\/[\d.]+/, 'layers in flight show their own bytes');
    assert.match(tty, /pulled oci:/);
    const plain = await cli(['pull', `oci:${layout}:v1`, join(dir, 'plain-bundle'), '--work-dir', join(dir, 'work-tty')]);
    assert.equal(plain.code, 0);
    assert.equal(plain.stderr, '');
  });
});

describe('--config', () => {
  it('warns about unknown keys and lets flags win over the file', async () => {
    const config = join(dir, 'c1.json');
    await writeFile(config, JSON.stringify({ work_dir: join(dir, 'ignored'), surprise: 1, max_concurrent_layer_downloads_per_image: 2 }));
    const r = await cli(['pull', `oci:${layout}:v1`, join(dir, 'cfg-bundle'), '--config', config, '--work-dir', join(dir, 'work-cfg')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^image-ts: warning: config file .*unknown key surprise ignored$/m);
    assert.equal(existsSync(join(dir, 'ignored')), false);
    assert.ok(existsSync(join(dir, 'work-cfg', 'metadata.json')));
  });

  it('refuses malformed values and keys whose features this build lacks', async () => {
    const cases: [unknown, RegExp][] = [
      [{ max_concurrent_layer_downloads_per_image: 0 }, /from 1 to 64/],
      [{ image_admission: { allow_unencrypted_unsigned: 'no' } }, /must be true or false/],
      [{ image_admission: { allow_everything: true } }, /not a known key/],
      [{ key_broker: { kind: 'vault' } }, /kind must be/],
      [{ key_broker: { kind: 'kbs', url: 'https://kbs.example', atester: 'sample' } }, /key_broker\.atester is not a known key \(kind, url, attester\)/],
      [{ attestation_agent: { address: 'unix:///run/aa.sock', transprot: 'grpc' } }, /attestation_agent\.transprot is not a known key/],
      [{ serve: { cri: ['unix:///run/cri.sock'], timeout: 5 } }, /serve\.timeout is not a known key/],
      [{ image_pull_proxy: { https_proxy: 'proxy:3128' } }, /must be an http:\/\/ or https:\/\/ URL/],
      [{ registry_config: { registry: [{ prefix: 'example.com', location: 'http://mirror.example' }] } }, /registry_config/],
      [{ authenticated_registry_credentials_uri: 'kbs:///default/credential/test' }, /only file paths/],
      [[1, 2], /JSON object/],
    ];
    for (const [doc, message] of cases) {
      const config = join(dir, 'bad.json');
      await writeFile(config, JSON.stringify(doc));
      const r = await cli(['pull', `oci:${layout}:v1`, join(dir, 'never'), '--config', config, '--work-dir', join(dir, 'work-bad')]);
      assertCliError(r, 'CONFIG_FILE_INVALID');
      assert.match(r.stderr, message);
    }
    await writeFile(join(dir, 'broken.json'), '{"work_dir": ');
    assertCliError(await cli(['pull', `oci:${layout}:v1`, join(dir, 'never'), '--config', join(dir, 'broken.json')]), 'CONFIG_FILE_INVALID');
    assert.equal(existsSync(join(dir, 'never')), false);
  });
});

describe('concurrent pulls into one store', () => {
  it('two processes pulling the same image both succeed and the store keeps one copy of each layer', async () => {
    const work = join(dir, 'work-race');
    const results = await Promise.all([0, 1, 2].map((i) => cli(['pull', `oci:${layout}:v1`, join(dir, `race-${i}`), '--work-dir', work, '--json'])));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await readdir(join(work, 'layers', 'sha256'))).sort(), image.layers.map((l) => l.diffId.slice(7)).sort());
    assert.deepEqual(await readdir(join(work, 'staging')), []);
    const meta = JSON.parse(await readFile(join(work, 'metadata.json'), 'utf8')) as { images: Record<string, unknown>; bundles: Record<string, unknown> };
    assert.deepEqual(Object.keys(meta.images), [image.manifestDigest]);
    assert.equal(Object.keys(meta.bundles).length, 3);
    for (const i of [0, 1, 2]) assert.deepEqual(await readdir(join(dir, `race-${i}`, 'rootfs', 'dir')), ['new']);
  });
});

describe('hostile layers served by docker-registry', () => {
  const cases: [string, TarEntry[], string][] = [
    ['traversal', [{ name: '../../../tmp/image-ts-reg-pwned', content: 'x' }], 'UNSAFE_LAYER'],
    ['symlink', [{ name: 'l', type: 'symlink', linkname: '/tmp' }, { name: 'l/image-ts-reg-pwned', content: 'x' }], 'UNSAFE_LAYER'],
    ['hardlink', [{ name: 'h', type: 'hardlink', linkname: '../../../../etc/shadow' }], 'UNSAFE_LAYER'],
  ];
  for (const [tag, entries, code] of cases) {
    it(`${tag} gives ${code} and leaves no image, bundle or layer`, async () => {
      const img = buildImage({ layers: [{ tar: tar(entries) }] });
      await registry.pushImage('hostile/img', tag, img);
      const work = join(dir, `work-hostile-${tag}`);
      const bundle = join(dir, `hostile-${tag}`);
      assertCliError(await cli(['pull', `${registry.host}/hostile/img:${tag}`, bundle, '--work-dir', work, '--insecure-registry', registry.host]), code);
      assert.equal(existsSync(bundle), false);
      assert.equal(existsSync('/tmp/image-ts-reg-pwned'), false);
      assert.deepEqual(existsSync(join(work, 'layers', 'sha256')) ? await readdir(join(work, 'layers', 'sha256')) : [], []);
      assert.deepEqual(existsSync(join(work, 'staging')) ? await readdir(join(work, 'staging')) : [], []);
    });
  }

  it('a diff_id that lies gives DIGEST_MISMATCH', async () => {
    const img = buildImage({ layers: [{ tar: tar(upper), diffIdOverride: sha256('other') }] });
    await registry.pushImage('hostile/img', 'diffid', img);
    const work = join(dir, 'work-hostile-diffid');
    assertCliError(await cli(['pull', `${registry.host}/hostile/img:diffid`, join(dir, 'hostile-diffid'), '--work-dir', work, '--insecure-registry', registry.host]), 'DIGEST_MISMATCH');
    assert.deepEqual(existsSync(join(work, 'layers', 'sha256')) ? await readdir(join(work, 'layers', 'sha256')) : [], []);
  });
});
