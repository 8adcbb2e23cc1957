import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, startRegistry, type StartedRegistry } from '../harness/registry.js';
import { assertCliError, cli } from '../helpers/cli.js';
import { unmountBelow } from '../helpers/mounts.js';
import { buildImage, buildIndex, imageManifestEntry, writeOciLayout, type BuiltImage } from '../helpers/image-builder.js';
import { tar, type TarEntry } from '../helpers/tar-writer.js';

const base: TarEntry[] = [
  { name: 'etc/', type: 'dir' },
  { name: 'etc/os-release', content: 'ID=image-ts\n' },
  { name: 'gone', content: 'x' },
  { name: 'bin/', type: 'dir' },
  { name: 'bin/tool', content: 'tool', mode: 0o4755 },
];
const upper: TarEntry[] = [{ name: '.wh.gone', content: '' }, { name: 'app', content: 'v2' }];

let dir: string;
let open: StartedRegistry;
let secure: StartedRegistry;
let token: StartedRegistry;
let oci: BuiltImage;

const work = () => join(dir, 'work');
let bundles = 0;
const bundle = () => join(dir, `bundle-${++bundles}`);

async function pull(args: string[]): Promise<{ manifestDigest: string; bundle: string; layers: { digest: string }[] }> {
  const b = bundle();
  const r = await cli(['pull', ...args.slice(0, 1), b, '--work-dir', work(), '--json', ...args.slice(1)]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { manifestDigest: string; bundle: string; layers: { digest: string }[] };
  assert.equal(out.bundle, b);
  return out;
}

async function rootfsOk(bundlePath: string): Promise<void> {
  const rootfs = join(bundlePath, 'rootfs');
  assert.equal(await readFile(join(rootfs, 'app'), 'utf8'), 'v2');
  assert.equal(existsSync(join(rootfs, 'gone')), false);
  assert.equal(await readFile(join(rootfs, 'etc/os-release'), 'utf8'), 'ID=image-ts\n');
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-e2e-reg-'));
  [open, secure, token] = await Promise.all([startRegistry('open'), startRegistry('tls-htpasswd'), startRegistry('token')]);
  oci = buildImage({ layers: [{ tar: tar(base) }, { tar: tar(upper) }] });
  for (const r of [open, secure, token]) await r.pushImage('team/app', 'v1', oci);
});

after(async () => {
  unmountBelow(dir);
  await Promise.all([open?.stop(), secure?.stop(), token?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

describe('image-ts pull from docker-registry (plain HTTP)', () => {
  it('pulls an OCI image by tag and then by digest', async () => {
    const byTag = await pull([`${open.host}/team/app:v1`, '--insecure-registry', open.host]);
    assert.equal(byTag.manifestDigest, oci.manifestDigest);
    await rootfsOk(byTag.bundle);
    const byDigest = await pull([`docker://${open.host}/team/app@${oci.manifestDigest}`, '--insecure-registry', open.host]);
    assert.equal(byDigest.manifestDigest, oci.manifestDigest);
  });

  it('pulls Docker schema 2, zstd and uncompressed layers', async () => {
    const images: [string, BuiltImage][] = [
      ['docker', buildImage({ format: 'docker', layers: [{ tar: tar(base), compression: 'gzip' }, { tar: tar(upper), compression: 'none' }] })],
      ['zstd', buildImage({ layers: [{ tar: tar(base), compression: 'zstd' }, { tar: tar(upper), compression: 'zstd' }] })],
    ];
    for (const [tag, img] of images) {
      await open.pushImage('team/formats', tag, img);
      const out = await pull([`${open.host}/team/formats:${tag}`, '--insecure-registry', open.host, '--snapshotter', 'copy']);
      assert.equal(out.manifestDigest, img.manifestDigest);
      await rootfsOk(out.bundle);
    }
  });

  it('pulls what skopeo pushed as Docker v2s2', async () => {
    const layout = join(dir, 'skopeo-src');
    await writeOciLayout(layout, [imageManifestEntry(oci, 'v1')]);
    execFileSync('skopeo', ['copy', '--quiet', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${open.host}/skopeo/app:v2s2`]);
    const out = await pull([`${open.host}/skopeo/app:v2s2`, '--insecure-registry', open.host]);
    const manifest = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${open.host}/skopeo/app:v2s2`]).toString()) as { mediaType: string };
    assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    await rootfsOk(out.bundle);
  });

  it('resolves a multi-arch index by platform and names the platforms when none fits', async () => {
    const amd = buildImage({ architecture: 'amd64', layers: [{ tar: tar([...base, { name: 'arch', content: 'amd64' }]) }] });
    const arm = buildImage({ architecture: 'arm64', variant: 'v8', layers: [{ tar: tar([...base, { name: 'arch', content: 'arm64' }]) }] });
    const index = buildIndex([
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ], 'docker');
    for (const img of [amd, arm]) await open.pushImage('team/multi', img.manifestDigest.replace(':', '-'), img);
    await open.pushManifest('team/multi', 'latest', index.bytes, index.mediaType);
    const ref = `${open.host}/team/multi`;
    const arm64 = await pull([ref, '--insecure-registry', open.host, '--platform', 'linux/arm64']);
    assert.equal(arm64.manifestDigest, arm.manifestDigest);
    assert.equal(await readFile(join(arm64.bundle, 'rootfs', 'arch'), 'utf8'), 'arm64');
    const amd64 = await pull([ref, '--insecure-registry', open.host, '--platform', 'linux/amd64']);
    assert.equal(await readFile(join(amd64.bundle, 'rootfs', 'arch'), 'utf8'), 'amd64');
    const r = await cli(['pull', ref, bundle(), '--work-dir', work(), '--insecure-registry', open.host, '--platform', 'linux/s390x']);
    assertCliError(r, 'PLATFORM_NOT_FOUND');
    assert.match(r.stderr, /linux\/amd64, linux\/arm64\/v8/);
  });

  it('fails cleanly: missing tag, unreachable registry, HTTPS to a plain-HTTP registry', async () => {
    assertCliError(await cli(['pull', `${open.host}/team/app:nope`, bundle(), '--work-dir', work(), '--insecure-registry', open.host]), 'NOT_FOUND');
    const dead = `127.0.0.1:${await freePort()}`;
    assertCliError(await cli(['pull', `${dead}/x/y`, bundle(), '--work-dir', work(), '--insecure-registry', dead]), 'NETWORK');
    const r = await cli(['pull', `${open.host}/team/app:v1`, bundle(), '--work-dir', work()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^image-ts: (NETWORK|TLS): /);
    for (const b of (await readdir(dir)).filter((n) => n.startsWith('bundle-'))) {
      assert.ok(existsSync(join(dir, b, 'config.json')), `${b} is either whole or absent`);
    }
  });
});

describe('image-ts pull from docker-registry with TLS and htpasswd', () => {
  it('pulls with --creds and --ca-file', async () => {
    const out = await pull([`${secure.host}/team/app:v1`, '--creds', `${secure.username}:${secure.password}`, '--ca-file', secure.caFile!]);
    await rootfsOk(out.bundle);
  });

  it('an insecure registry speaks TLS without certificate checks, as containers/image does; plain-HTTP ones still work', async () => {
    const creds = ['--creds', `${secure.username}:${secure.password}`];
    // No CA: the self-signed registry is refused unless marked insecure.
    assertCliError(await cli(['pull', `${secure.host}/team/app:v1`, bundle(), '--work-dir', work(), ...creds]), 'TLS');
    const out = await pull([`${secure.host}/team/app:v1`, ...creds, '--insecure-registry', secure.host]);
    await rootfsOk(out.bundle);
  });

  it('--plain-http never tries TLS: it pulls from a plain-HTTP registry and fails against a TLS one', async () => {
    const out = await pull([`${open.host}/team/app:v1`, '--plain-http', open.host]);
    await rootfsOk(out.bundle);
    const r = await cli(['pull', `${secure.host}/team/app:v1`, bundle(), '--work-dir', work(), '--creds', `${secure.username}:${secure.password}`, '--plain-http', secure.host]);
    // Go's TLS server answers plain HTTP with a 400.
    assertCliError(r, 'UNSUPPORTED');
    assert.match(r.stderr, /is not a registry \(HTTP 400 for \/v2\/\)/);
    assert.ok(!r.stderr.includes(secure.password!), 'the password never appears');
  });

  it('pulls with an auth.json found by repository namespace', async () => {
    const authFile = join(dir, 'auth.json');
    const auth = Buffer.from(`${secure.username}:${secure.password}`).toString('base64');
    await writeFile(authFile, JSON.stringify({ auths: { [`${secure.host}/team`]: { auth }, [secure.host]: { auth: Buffer.from('wrong:wrong').toString('base64') } } }));
    const out = await pull([`${secure.host}/team/app:v1`, '--auth-file', authFile, '--ca-file', secure.caFile!]);
    await rootfsOk(out.bundle);
  });

  it('finds credentials in the default auth files, in containers/image order', async () => {
    const home = join(dir, 'home');
    const runtime = join(dir, 'run');
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    await mkdir(join(home, '.docker'), { recursive: true });
    await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [secure.host]: { auth: b64(`${secure.username}:${secure.password}`) } } }));
    const env = { HOME: home, XDG_RUNTIME_DIR: runtime, XDG_CONFIG_HOME: join(home, '.config') };
    const args = (b: string) => ['pull', `${secure.host}/team/app:v1`, b, '--work-dir', work(), '--ca-file', secure.caFile!];
    const ok = await cli(args(bundle()), { env });
    assert.equal(ok.code, 0, ok.stderr);
    // The per-session containers file comes first, so its (wrong) entry wins over Docker's.
    await mkdir(join(runtime, 'containers'), { recursive: true });
    await writeFile(join(runtime, 'containers', 'auth.json'), JSON.stringify({ auths: { [secure.host]: { auth: b64('alice:wrong') } } }));
    assertCliError(await cli(args(bundle()), { env }), 'UNAUTHORIZED');
  });

  it('takes extra CAs and the auth file from an image-rs style --config', async () => {
    const config = join(dir, 'config.json');
    const authFile = join(dir, 'auth2.json');
    await writeFile(authFile, JSON.stringify({ auths: { [secure.host]: { auth: Buffer.from(`${secure.username}:${secure.password}`).toString('base64') } } }));
    await writeFile(config, JSON.stringify({
      extra_root_certificates: [await readFile(secure.caFile!, 'utf8')],
      authenticated_registry_credentials_uri: `file://${authFile}`,
      max_concurrent_layer_downloads_per_image: 1,
    }));
    await rootfsOk((await pull([`${secure.host}/team/app:v1`, '--config', config])).bundle);
  });

  it('trusts a CA from a certs.d directory for that registry only', async () => {
    const certsDir = join(dir, 'certs.d');
    const config = join(dir, 'certs-config.json');
    await writeFile(config, JSON.stringify({ certs_dirs: [join(dir, 'missing.d'), certsDir] }));
    const args = () => ['pull', `${secure.host}/team/app:v1`, bundle(), '--work-dir', work(), '--config', config, '--creds', `${secure.username}:${secure.password}`];
    // Filed under another host's name, the CA must not be trusted for this one.
    await mkdir(join(certsDir, token.host), { recursive: true });
    await writeFile(join(certsDir, token.host, 'ca.crt'), await readFile(secure.caFile!));
    assertCliError(await cli(args()), 'TLS');
    await mkdir(join(certsDir, secure.host), { recursive: true });
    await writeFile(join(certsDir, secure.host, 'ca.crt'), await readFile(secure.caFile!));
    const ok = await cli(args());
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('refuses wrong credentials with UNAUTHORIZED and an unknown CA with TLS, never echoing the password', async () => {
    const wrong = await cli(['pull', `${secure.host}/team/app:v1`, bundle(), '--work-dir', work(), '--creds', 'alice:hunter2-wrong', '--ca-file', secure.caFile!]);
    assertCliError(wrong, 'UNAUTHORIZED');
    assert.ok(!wrong.stderr.includes('hunter2-wrong'));
    assertCliError(await cli(['pull', `${secure.host}/team/app:v1`, bundle(), '--work-dir', work(), '--creds', `${secure.username}:${secure.password}`]), 'TLS');
    assertCliError(await cli(['pull', `${secure.host}/team/app:v1`, bundle(), '--work-dir', work(), '--ca-file', secure.caFile!]), 'UNAUTHORIZED');
  });
});

describe('image-ts pull from docker-registry with bearer tokens', () => {
  it('pulls with --creds through the token issuer', async () => {
    const before = token.tokenRequests();
    const out = await pull([`${token.host}/team/app:v1`, '--creds', `${token.username}:${token.password}`, '--ca-file', token.caFile!]);
    await rootfsOk(out.bundle);
    assert.ok(token.tokenRequests() > before, 'a token was issued');
  });

  it('pulls with an identity token from auth.json', async () => {
    const authFile = join(dir, 'auth-token.json');
    await writeFile(authFile, JSON.stringify({ auths: { [token.host]: { auth: Buffer.from(`${token.username}:`).toString('base64'), identitytoken: token.identityToken } } }));
    await rootfsOk((await pull([`${token.host}/team/app:v1`, '--auth-file', authFile, '--ca-file', token.caFile!])).bundle);
  });

  it('refuses anonymous and wrong credentials with UNAUTHORIZED', async () => {
    assertCliError(await cli(['pull', `${token.host}/team/app:v1`, bundle(), '--work-dir', work(), '--ca-file', token.caFile!]), 'UNAUTHORIZED');
    assertCliError(await cli(['pull', `${token.host}/team/app:v1`, bundle(), '--work-dir', work(), '--ca-file', token.caFile!, '--creds', 'bob:nope']), 'UNAUTHORIZED');
  });
});
