import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { startRegistry, type StartedRegistry } from '../harness/registry.js';
import { disposeTestKeys, encryptLayout, makeTestKeys, readLayoutLayers, type TestKeys } from '../harness/encrypted-images.js';
import { assertCliError, cli } from '../helpers/cli.js';
import { base, upper } from '../helpers/fixture-layers.js';
import { buildImage, imageManifestEntry, writeOciLayout } from '../helpers/image-builder.js';
import { unmountBelow } from '../helpers/mounts.js';
import { tar } from '../helpers/tar-writer.js';
import { treeOf } from '../helpers/tree.js';

/**
 * Images encrypted by Debian's skopeo with every scheme it has (jwe RSA and
 * EC, several recipients, pkcs7, pgp) must pull into the same rootfs as their
 * plaintext twin, and the wrong or missing key must leave nothing behind.
 */
let dir: string;
let keys: TestKeys;
let registry: StartedRegistry;
let plainTree: string[];
const src = (): string => `oci:${join(dir, 'plain')}:latest`;
const layout = (name: string): string => `oci:${join(dir, name)}:latest`;
let n = 0;
const execFileP = promisify(execFile);

async function pull(image: string, extra: string[], work = join(dir, `work-${n}`), built = false): Promise<{ code: number; stderr: string; stdout: string; bundle: string; work: string }> {
  const bundle = join(dir, `bundle-${n++}`);
  const r = await cli(['pull', image, bundle, '--work-dir', work, '--snapshotter', 'overlay', '--quiet', ...extra], { built });
  return { ...r, bundle, work };
}

async function pullAndCompare(image: string, extra: string[], built = false): Promise<void> {
  const r = await pull(image, extra, undefined, built);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await treeOf(join(r.bundle, 'rootfs')), plainTree);
  assert.equal((await cli(['bundle', 'rm', r.bundle, '--work-dir', r.work])).code, 0);
}

async function assertNothingCommitted(work: string, bundle: string): Promise<void> {
  const layers = existsSync(join(work, 'layers', 'sha256')) ? await readdir(join(work, 'layers', 'sha256')) : [];
  assert.deepEqual(layers, [], 'no layer committed');
  if (existsSync(join(work, 'metadata.json'))) {
    const meta = JSON.parse(await readFile(join(work, 'metadata.json'), 'utf8')) as { images: object; bundles: object };
    assert.deepEqual([meta.images, meta.bundles], [{}, {}]);
  }
  assert.ok(!existsSync(bundle) || (await readdir(bundle)).length === 0, 'no bundle left');
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-enc-'));
  const image = buildImage({ layers: [{ tar: tar(base) }, { tar: tar(upper) }, { tar: tar([{ name: 'z/', type: 'dir' }, { name: 'z/zstd', content: 'zstd layer' }]), compression: 'zstd' }], config: { Cmd: ['/bin/sh'] } });
  await writeOciLayout(join(dir, 'plain'), [imageManifestEntry(image, 'latest')]);
  keys = await makeTestKeys(join(dir, 'keys'));
  const gpgEnv = { GNUPGHOME: keys.gpg.home };
  await Promise.all([
    encryptLayout(src(), join(dir, 'jwe-rsa'), [`jwe:${keys.rsa.publicPem.path}`]),
    encryptLayout(src(), join(dir, 'jwe-ec'), [`jwe:${keys.ec.publicPem.path}`]),
    encryptLayout(src(), join(dir, 'jwe-multi'), [`jwe:${keys.rsa.publicPem.path}`, `jwe:${keys.ec.publicPem.path}`]),
    encryptLayout(src(), join(dir, 'pkcs7'), [`pkcs7:${keys.x509.certPem.path}`]),
    encryptLayout(src(), join(dir, 'pgp'), [`pgp:${keys.gpg.email}`], gpgEnv),
    encryptLayout(src(), join(dir, 'pgp-locked'), [`pgp:${keys.gpgLocked.email}`], { GNUPGHOME: keys.gpgLocked.home }),
    // --encrypt-layer -1: only the last layer; the others stay plaintext.
    execFileP('skopeo', ['copy', '--quiet', '--insecure-policy', '--encrypt-layer', '-1', '--encryption-key', `jwe:${keys.rsa.publicPem.path}`, src(), layout('jwe-last')]),
  ]);
  const plain = await pull(src(), []);
  assert.equal(plain.code, 0, plain.stderr);
  plainTree = await treeOf(join(plain.bundle, 'rootfs'));
  assert.ok(plainTree.some((l) => l.startsWith('z/zstd ')), 'the reference tree has all three layers');
  await cli(['bundle', 'rm', plain.bundle, '--work-dir', plain.work]);
  registry = await startRegistry('open', { parentDir: dir });
});

after(async () => {
  await registry?.stop();
  if (keys) await disposeTestKeys(keys);
  unmountBelow(dir);
  await rm(dir, { recursive: true, force: true });
});

describe('image-ts pull of images encrypted by skopeo', () => {
  it('skopeo encrypted every layer and kept zstd as +zstd+encrypted', async () => {
    const layers = await readLayoutLayers(join(dir, 'jwe-rsa'));
    assert.deepEqual(layers.map((l) => l.descriptor.mediaType), [
      'application/vnd.oci.image.layer.v1.tar+gzip+encrypted',
      'application/vnd.oci.image.layer.v1.tar+gzip+encrypted',
      'application/vnd.oci.image.layer.v1.tar+zstd+encrypted',
    ]);
  });

  it('jwe with an RSA key (PKCS#8 and PKCS#1 PEM)', async () => {
    await pullAndCompare(layout('jwe-rsa'), ['--decryption-key', keys.rsa.pkcs8Pem.path]);
    await pullAndCompare(layout('jwe-rsa'), ['--decryption-key', keys.rsa.pkcs1Pem.path]);
  });

  it('jwe with an EC P-256 key, and either key of a two-recipient image', async () => {
    await pullAndCompare(layout('jwe-ec'), ['--decryption-key', keys.ec.pkcs8Pem.path]);
    await pullAndCompare(layout('jwe-multi'), ['--decryption-key', keys.ec.pkcs8Pem.path]);
    await pullAndCompare(layout('jwe-multi'), ['--decryption-key', keys.rsa.pkcs8Pem.path]);
  });

  it('pkcs7 with the certificate and its key', async () => {
    await pullAndCompare(layout('pkcs7'), ['--decryption-key', keys.x509.keyPem.path, '--decryption-key', keys.x509.certPem.path]);
  });

  it('pgp with an exported secret keyring, also a passphrase-protected one (pass= and file=)', async () => {
    // Through the bundle: openpgp is a lazily loaded chunk there.
    await pullAndCompare(layout('pgp'), ['--decryption-key', keys.gpg.secretKeyring.path], true);
    await pullAndCompare(layout('pgp-locked'), ['--decryption-key', `${keys.gpgLocked.secretKeyring.path}:pass=${keys.gpgLocked.passphrase}`]);
    const pwFile = join(dir, 'pw');
    await writeFile(pwFile, `${keys.gpgLocked.passphrase}\n`);
    await pullAndCompare(layout('pgp-locked'), ['--decryption-key', `${keys.gpgLocked.secretKeyring.path}:file=${pwFile}`]);
  });

  it('an image with only its last layer encrypted', async () => {
    const layers = await readLayoutLayers(join(dir, 'jwe-last'));
    assert.deepEqual(layers.map((l) => l.descriptor.mediaType.endsWith('+encrypted')), [false, false, true]);
    await pullAndCompare(layout('jwe-last'), ['--decryption-key', keys.rsa.pkcs8Pem.path]);
  });

  it('through a registry: skopeo pushes encrypted, image-ts pulls and decrypts', async () => {
    execFileSync('skopeo', ['copy', '--quiet', '--insecure-policy', '--dest-tls-verify=false', layout('jwe-rsa'), `docker://${registry.host}/enc/app:jwe`]);
    await pullAndCompare(`${registry.host}/enc/app:jwe`, ['--insecure-registry', registry.host, '--decryption-key', keys.rsa.pkcs8Pem.path]);
  });

  it('inspect names the schemes of each layer and shows no key material', async () => {
    const r = await pull(layout('jwe-multi'), ['--decryption-key', keys.rsa.pkcs8Pem.path]);
    assert.equal(r.code, 0, r.stderr);
    const listed = JSON.parse((await cli(['list', '--work-dir', r.work, '--json'])).stdout) as { names: string[] }[];
    const shown = await cli(['inspect', listed[0]!.names[0]!, '--work-dir', r.work, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    const parsed = JSON.parse(shown.stdout) as { image: { layers: { encryption?: string[] }[] } };
    assert.deepEqual(parsed.image.layers.map((l) => l.encryption), [['jwe'], ['jwe'], ['jwe']]);
    const human = await cli(['inspect', listed[0]!.names[0]!, '--work-dir', r.work]);
    assert.match(human.stdout, /encrypted: jwe/);
    for (const secret of [keys.rsa.pkcs8Pem.bytes.toString('utf8').split('\n')[1]!, 'symkey', 'enc.keys.jwe']) {
      assert.ok(!shown.stdout.includes(secret) && !human.stdout.includes(secret), `inspect shows ${secret}`);
    }
    await cli(['bundle', 'rm', r.bundle, '--work-dir', r.work]);
  });
});

describe('encrypted images without the right key', () => {
  it('no key: MISSING_KEY names the scheme, nothing downloaded into the store', async () => {
    const r = await pull(layout('jwe-rsa'), []);
    assertCliError(r, 'MISSING_KEY');
    assert.match(r.stderr, /encrypted for jwe/);
    await assertNothingCommitted(r.work, r.bundle);
  });

  it('the wrong key: MISSING_KEY, and the key is not echoed', async () => {
    const r = await pull(layout('jwe-rsa'), ['--decryption-key', keys.ec.pkcs8Pem.path]);
    assertCliError(r, 'MISSING_KEY');
    assert.ok(!r.stderr.includes(keys.ec.pkcs8Pem.bytes.toString('utf8').split('\n')[1]!));
    await assertNothingCommitted(r.work, r.bundle);
    const p7 = await pull(layout('pkcs7'), ['--decryption-key', keys.rsa.pkcs8Pem.path]);
    assertCliError(p7, 'MISSING_KEY');
    const pgp = await pull(layout('pgp'), ['--decryption-key', keys.gpgLocked.secretKeyring.path]);
    assertCliError(pgp, 'MISSING_KEY');
  });

  it('a wrong passphrase: MISSING_KEY, and the passphrase is not echoed', async () => {
    const r = await pull(layout('pgp-locked'), ['--decryption-key', `${keys.gpgLocked.secretKeyring.path}:pass=not-the-passphrase`]);
    assertCliError(r, 'MISSING_KEY');
    assert.ok(!r.stderr.includes('not-the-passphrase'));
  });

  it('a key file that does not exist: INVALID_ARGUMENT before anything is fetched', async () => {
    const r = await pull(layout('jwe-rsa'), ['--decryption-key', join(dir, 'nope.pem')]);
    assertCliError(r, 'INVALID_ARGUMENT', 2);
    await assertNothingCommitted(r.work, r.bundle);
  });

  it('a store hit still needs the key', async () => {
    const work = join(dir, 'shared-work');
    const ok = await pull(layout('jwe-rsa'), ['--decryption-key', keys.rsa.pkcs8Pem.path], work);
    assert.equal(ok.code, 0, ok.stderr);
    const again = await pull(layout('jwe-rsa'), [], work);
    assertCliError(again, 'MISSING_KEY');
    await cli(['bundle', 'rm', ok.bundle, '--work-dir', work]);
  });
});
