import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { generateKey, pushCosignSignatures, type CosignKey } from '../harness/cosign.js';
import { smallImage, startRegistry, type StartedRegistry } from '../harness/registry.js';
import { assertCliError, cli } from '../helpers/cli.js';
import { unmountBelow } from '../helpers/mounts.js';

/**
 * containers-policy.json end to end: simple signatures made by Debian's
 * skopeo with a real gpg key in a file lookaside, cosign signatures made
 * with openssl and pushed to the real registry, and the admission matrix.
 */
const execFileP = promisify(execFile);
let dir: string;
let registry: StartedRegistry;
let signerRing: string;
let otherRing: string;
let cosignKey: CosignKey;
let otherCosignKey: CosignKey;
let lookaside: string;
let registriesD: string;
let signed: string;
let unsigned: string;
let cosigned: string;
let n = 0;

async function gpgKey(home: string, email: string): Promise<{ fpr: string; ring: string }> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const env = { ...process.env, GNUPGHOME: home };
  const params = join(home, 'params');
  await writeFile(params, ['%no-protection', 'Key-Type: RSA', 'Key-Length: 2048', `Name-Real: ${email}`, `Name-Email: ${email}`, 'Expire-Date: 0', '%commit', ''].join('\n'));
  await execFileP('gpg', ['--batch', '--gen-key', params], { env });
  const { stdout } = await execFileP('gpg', ['--list-keys', '--with-colons'], { env });
  const fpr = /^fpr:::::::::([0-9A-F]{40}):/m.exec(stdout)![1]!;
  const ring = join(home, 'pubring.bin');
  const { stdout: exported } = await execFileP('gpg', ['--export', fpr], { env, encoding: 'buffer' });
  await writeFile(ring, exported);
  return { fpr, ring };
}

async function writePolicy(policy: unknown): Promise<string> {
  const path = join(dir, `policy-${n++}.json`);
  await writeFile(path, typeof policy === 'string' ? policy : JSON.stringify(policy));
  return path;
}

async function pull(image: string, args: string[], work = join(dir, `work-${n++}`)) {
  const bundle = join(dir, `bundle-${n++}`);
  const r = await cli(['pull', image, bundle, '--work-dir', work, '--insecure-registry', registry.host, '--snapshotter', 'copy', '--quiet', ...args]);
  return { ...r, bundle, work };
}

async function nothingCommitted(work: string, bundle: string): Promise<void> {
  const layers = existsSync(join(work, 'layers', 'sha256')) ? await readdir(join(work, 'layers', 'sha256')) : [];
  assert.deepEqual(layers, []);
  if (existsSync(join(work, 'metadata.json'))) {
    const meta = JSON.parse(await readFile(join(work, 'metadata.json'), 'utf8')) as { images: object };
    assert.deepEqual(meta.images, {});
  }
  assert.ok(!existsSync(bundle) || (await readdir(bundle)).length === 0);
}

const signedBy = (ring: string, extra: Record<string, unknown> = {}) => ({ type: 'signedBy', keyType: 'GPGKeys', keyPath: ring, ...extra });
const scoped = (scope: string, reqs: unknown[]) => ({ default: [{ type: 'reject' }], transports: { docker: { [scope]: reqs } } });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-policy-'));
  registry = await startRegistry('open', { parentDir: dir });
  const [signer, other] = await Promise.all([gpgKey(join(dir, 'gpg-signer'), 'signer@example.com'), gpgKey(join(dir, 'gpg-other'), 'other@example.com')]);
  signerRing = signer.ring;
  otherRing = other.ring;
  [cosignKey, otherCosignKey] = await Promise.all([generateKey('ecdsa-p256'), generateKey('ecdsa-p256')]);

  const s = await registry.pushImage('policy/signed', 'v1', smallImage('signed\n'));
  await registry.pushImage('policy/unsigned', 'v1', smallImage('unsigned\n'));
  const c = await registry.pushImage('policy/cosigned', 'v1', smallImage('cosigned\n'));
  signed = `${registry.host}/policy/signed:v1`;
  unsigned = `${registry.host}/policy/unsigned:v1`;
  cosigned = `${registry.host}/policy/cosigned:v1`;

  // Simple signing: skopeo signs the manifest for the image's identity; the signature goes where registries.d says.
  lookaside = join(dir, 'lookaside');
  const manifestFile = join(dir, 'signed-manifest.json');
  await writeFile(manifestFile, s.manifestBytes);
  const sigDir = join(lookaside, 'policy', `signed@sha256=${s.manifestDigest.slice('sha256:'.length)}`);
  await mkdir(sigDir, { recursive: true });
  await execFileP('skopeo', ['standalone-sign', manifestFile, signed, signer.fpr, '-o', join(sigDir, 'signature-1')], { env: { ...process.env, GNUPGHOME: join(dir, 'gpg-signer') } });
  registriesD = join(dir, 'registries.d');
  await mkdir(registriesD);
  await writeFile(join(registriesD, 'default.yaml'), `default-docker:\n  lookaside: file://${lookaside}\n`);

  await pushCosignSignatures(registry, 'policy/cosigned', c.manifestDigest, [{ key: cosignKey }]);
});

after(async () => {
  await registry?.stop();
  for (const home of ['gpg-signer', 'gpg-other']) await execFileP('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: join(dir, home) } }).catch(() => undefined);
  unmountBelow(dir);
  await rm(dir, { recursive: true, force: true });
});

describe('image-ts pull under a containers-policy.json', { concurrency: 3 }, () => {
  it('insecureAcceptAnything admits; reject refuses with POLICY_DENIED naming the scope, nothing left behind', async () => {
    const ok = await pull(unsigned, ['--policy', await writePolicy({ default: [{ type: 'insecureAcceptAnything' }] })]);
    assert.equal(ok.code, 0, ok.stderr);
    const denied = await pull(unsigned, ['--policy', await writePolicy(scoped(`${registry.host}/policy`, [{ type: 'reject' }]))]);
    assertCliError(denied, 'POLICY_DENIED');
    assert.match(denied.stderr, new RegExp(`scope "${registry.host}/policy", requirement reject`));
    await nothingCommitted(denied.work, denied.bundle);
  });

  it('signedBy: the signer key admits a skopeo-signed image from the file lookaside', async () => {
    const r = await pull(signed, ['--policy', await writePolicy(scoped(registry.host, [signedBy(signerRing)])), '--registries-d', registriesD]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('signedBy: the same signatures served by an HTTP lookaside', async () => {
    const { createServer } = await import('node:http');
    const served: string[] = [];
    const server = createServer((req, res) => {
      served.push(req.url ?? '');
      readFile(join(lookaside, decodeURIComponent(req.url ?? '/'))).then(
        (body) => res.end(body),
        () => { res.statusCode = 404; res.end(); },
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const httpD = join(dir, 'registries.d-http');
      await mkdir(httpD, { recursive: true });
      await writeFile(join(httpD, 'default.yaml'), `docker:\n  ${registry.host}/policy:\n    lookaside: http://127.0.0.1:${port}\n`);
      const r = await pull(signed, ['--policy', await writePolicy(scoped(registry.host, [signedBy(signerRing)])), '--registries-d', httpD]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(served.some((u) => /^\/policy\/signed@sha256=[0-9a-f]{64}\/signature-1$/.test(u)), served.join(' '));
      assert.ok(served.some((u) => u.endsWith('/signature-2')), 'reads until the first missing signature');
    } finally {
      server.close();
    }
  });

  it('signedBy: another key gives SIGNATURE_INVALID, no signature gives SIGNATURE_MISSING', async () => {
    const wrong = await pull(signed, ['--policy', await writePolicy(scoped(registry.host, [signedBy(otherRing)])), '--registries-d', registriesD]);
    assertCliError(wrong, 'SIGNATURE_INVALID');
    await nothingCommitted(wrong.work, wrong.bundle);
    const none = await pull(unsigned, ['--policy', await writePolicy(scoped(registry.host, [signedBy(signerRing)])), '--registries-d', registriesD]);
    assertCliError(none, 'SIGNATURE_MISSING');
    assert.match(none.stderr, /A signature was required, but no signature exists/);
  });

  it('signedBy: a signature for another identity is refused under exactReference, accepted under matchRepository', async () => {
    const exact = await pull(signed, ['--policy', await writePolicy(scoped(registry.host, [signedBy(signerRing, { signedIdentity: { type: 'exactReference', dockerReference: `${registry.host}/policy/other:v1` } })])), '--registries-d', registriesD]);
    assertCliError(exact, 'SIGNATURE_INVALID');
    const repo = await pull(signed, ['--policy', await writePolicy(scoped(registry.host, [signedBy(signerRing, { signedIdentity: { type: 'matchRepository' } })])), '--registries-d', registriesD]);
    assert.equal(repo.code, 0, repo.stderr);
  });

  it('sigstoreSigned: the cosign key admits, another key is refused; raw PEM keyData without transports works (image-rs dialect)', async () => {
    const keyFile = join(dir, 'cosign.pub');
    await writeFile(keyFile, cosignKey.publicPem);
    const ok = await pull(cosigned, ['--policy', await writePolicy(scoped(registry.host, [{ type: 'sigstoreSigned', keyPath: keyFile, signedIdentity: { type: 'matchRepository' } }]))]);
    assert.equal(ok.code, 0, ok.stderr);
    const cocoStyle = await pull(cosigned, ['--policy', await writePolicy({ default: [{ type: 'sigstoreSigned', keyData: cosignKey.publicPem }] })]);
    assert.equal(cocoStyle.code, 0, cocoStyle.stderr);
    const wrong = await pull(cosigned, ['--policy', await writePolicy({ default: [{ type: 'sigstoreSigned', keyData: Buffer.from(otherCosignKey.publicPem).toString('base64') }] })]);
    assertCliError(wrong, 'SIGNATURE_INVALID');
    const keyless = await pull(cosigned, ['--policy', await writePolicy({ default: [{ type: 'sigstoreSigned', fulcio: { caData: Buffer.from('x').toString('base64'), oidcIssuer: 'https://issuer', subjectEmail: 'a@b' }, rekorPublicKeyData: Buffer.from(cosignKey.publicPem).toString('base64') }] })]);
    // A keyed .sig layer (no certificate) under a fulcio policy: the wrong kind of signature, not a silent pass.
    assertCliError(keyless, 'SIGNATURE_INVALID');
  });

  it('sigstoreSigned with a Rekor key: a bundle whose SET verifies is required', async () => {
    const rekorKey = await generateKey('ecdsa-p256');
    const withBundle = await registry.pushImage('policy/rekor', 'v1', smallImage('rekor\n'));
    await pushCosignSignatures(registry, 'policy/rekor', withBundle.manifestDigest, [{ key: cosignKey, rekor: { key: rekorKey } }]);
    const policy = await writePolicy({ default: [{ type: 'sigstoreSigned', keyData: Buffer.from(cosignKey.publicPem).toString('base64'), rekorPublicKeyData: Buffer.from(rekorKey.publicPem).toString('base64'), signedIdentity: { type: 'matchRepository' } }] });
    const ok = await pull(`${registry.host}/policy/rekor:v1`, ['--policy', policy]);
    assert.equal(ok.code, 0, ok.stderr);
    // The plain cosign image has no bundle: with Rekor keys configured it is refused.
    assertCliError(await pull(cosigned, ['--policy', policy]), 'SIGNATURE_INVALID');
  });

  it('signedBy: skopeo copy --sign-by writes the signature through registries.d, and image-ts accepts it', async () => {
    const staging = join(dir, 'lookaside-copy');
    const regd = join(dir, 'registries.d-copy');
    await mkdir(regd, { recursive: true });
    await writeFile(join(regd, 'default.yaml'), `default-docker:\n  lookaside: file://${staging}\n`);
    const src = join(dir, 'copy-src');
    const { buildImage, imageManifestEntry, writeOciLayout } = await import('../helpers/image-builder.js');
    const { tar } = await import('../helpers/tar-writer.js');
    await writeOciLayout(src, [imageManifestEntry(buildImage({ layers: [{ tar: tar([{ name: 'copied', content: 'by skopeo' }]) }] }), 'v1')]);
    const { stdout } = await execFileP('gpg', ['--list-keys', '--with-colons'], { env: { ...process.env, GNUPGHOME: join(dir, 'gpg-signer') } });
    const fpr = /^fpr:::::::::([0-9A-F]{40}):/m.exec(stdout)![1]!;
    await execFileP('skopeo', ['--registries.d', regd, 'copy', '--quiet', '--insecure-policy', '--dest-tls-verify=false', '--sign-by', fpr,
      `oci:${src}:v1`, `docker://${registry.host}/policy/copied:v1`], { env: { ...process.env, GNUPGHOME: join(dir, 'gpg-signer') } });
    const r = await pull(`${registry.host}/policy/copied:v1`, ['--policy', await writePolicy(scoped(registry.host, [signedBy(signerRing)])), '--registries-d', regd]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('a cached image is judged again: a stricter policy now refuses it', async () => {
    const work = join(dir, 'cached-work');
    const first = await pull(unsigned, ['--policy', await writePolicy({ default: [{ type: 'insecureAcceptAnything' }] })], work);
    assert.equal(first.code, 0, first.stderr);
    const again = await pull(unsigned, ['--policy', await writePolicy({ default: [{ type: 'reject' }] })], work);
    assertCliError(again, 'POLICY_DENIED');
  });

  it('a malformed policy is POLICY_INVALID with containers/image\'s message', async () => {
    const r = await pull(unsigned, ['--policy', await writePolicy({ default: [{ type: 'insecureAcceptAnything' }], extra: 1 })]);
    assertCliError(r, 'POLICY_INVALID');
    assert.match(r.stderr, /Unknown key "extra"/);
  });

  it('admission: unsigned plaintext images can be turned off; a signed one still passes', async () => {
    const config = join(dir, `admission-${n++}.json`);
    await writeFile(config, JSON.stringify({ image_admission: { allow_unencrypted_unsigned: false }, sigstore_config_uri: registriesD }));
    const refused = await pull(unsigned, ['--config', config]);
    assertCliError(refused, 'UNENCRYPTED_IMAGE_REJECTED');
    await nothingCommitted(refused.work, refused.bundle);
    const ok = await pull(signed, ['--config', config, '--policy', await writePolicy(scoped(registry.host, [signedBy(signerRing)]))]);
    assert.equal(ok.code, 0, ok.stderr);
    const off = join(dir, `admission-${n++}.json`);
    await writeFile(off, JSON.stringify({ image_admission: { allow_unencrypted_signed: false, allow_unencrypted_unsigned: false }, sigstore_config_uri: registriesD }));
    assertCliError(await pull(signed, ['--config', off, '--policy', await writePolicy(scoped(registry.host, [signedBy(signerRing)]))]), 'UNENCRYPTED_IMAGE_REJECTED');
  });

  it('policy and key from kbs:// through the offline key broker', async () => {
    const resources = join(dir, 'offline.json');
    const policy = scoped(registry.host, [signedBy('kbs:///default/gpg/signer')]);
    await writeFile(resources, JSON.stringify({
      'default/policy/test': Buffer.from(JSON.stringify(policy)).toString('base64'),
      'default/gpg/signer': (await readFile(signerRing)).toString('base64'),
    }));
    const config = join(dir, 'kbs-config.json');
    await writeFile(config, JSON.stringify({ image_security_policy_uri: 'kbs:///default/policy/test', key_broker: { kind: 'offline-fs', files: [resources] }, sigstore_config_uri: registriesD }));
    const r = await pull(signed, ['--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assertCliError(await pull(unsigned, ['--config', config]), 'SIGNATURE_MISSING');
  });

  it('a multi-arch image: cosign may sign the index; simple signing must sign the chosen platform manifest', async () => {
    const { buildImage, buildIndex } = await import('../helpers/image-builder.js');
    const { tar } = await import('../helpers/tar-writer.js');
    const amd = buildImage({ layers: [{ tar: tar([{ name: 'arch', content: 'amd64' }]) }], architecture: 'amd64' });
    const arm = buildImage({ layers: [{ tar: tar([{ name: 'arch', content: 'arm64' }]) }], architecture: 'arm64' });
    const index = buildIndex([{ image: amd, platform: { os: 'linux', architecture: 'amd64' } }, { image: arm, platform: { os: 'linux', architecture: 'arm64' } }]);
    for (const img of [amd, arm]) {
      for (const [, blob] of img.blobs) if (!blob.equals(img.manifest)) await registry.pushBlob('policy/multi', blob);
      await registry.pushManifest('policy/multi', img.manifestDigest, img.manifest, img.manifestMediaType);
    }
    await registry.pushManifest('policy/multi', 'v1', index.bytes, index.mediaType);
    await pushCosignSignatures(registry, 'policy/multi', index.digest, [{ key: cosignKey }]);
    const keyFile = join(dir, 'multi-cosign.pub');
    await writeFile(keyFile, cosignKey.publicPem);
    const image = `${registry.host}/policy/multi:v1`;
    const viaIndex = await pull(image, ['--platform', 'linux/arm64', '--policy', await writePolicy({ default: [{ type: 'sigstoreSigned', keyPath: keyFile }] })]);
    assert.equal(viaIndex.code, 0, viaIndex.stderr);
    assert.equal(await readFile(join(viaIndex.bundle, 'rootfs', 'arch'), 'utf8'), 'arm64');
    // A simple signature of the index does not cover the arm64 manifest, which is what the lookaside is asked for.
    const manifestFile = join(dir, 'index.json');
    await writeFile(manifestFile, index.bytes);
    const sigDir = join(lookaside, 'policy', `multi@sha256=${index.digest.slice('sha256:'.length)}`);
    await mkdir(sigDir, { recursive: true });
    const { stdout } = await execFileP('gpg', ['--list-keys', '--with-colons'], { env: { ...process.env, GNUPGHOME: join(dir, 'gpg-signer') } });
    const fpr = /^fpr:::::::::([0-9A-F]{40}):/m.exec(stdout)![1]!;
    await execFileP('skopeo', ['standalone-sign', manifestFile, image, fpr, '-o', join(sigDir, 'signature-1')], { env: { ...process.env, GNUPGHOME: join(dir, 'gpg-signer') } });
    const simple = await pull(image, ['--platform', 'linux/arm64', '--policy', await writePolicy({ default: [signedBy(signerRing)] }), '--registries-d', registriesD]);
    assertCliError(simple, 'SIGNATURE_MISSING');
  });

  it('verify prints each requirement and exits 1 when a pull would be refused', async () => {
    const policy = await writePolicy(scoped(registry.host, [{ type: 'insecureAcceptAnything' }, signedBy(signerRing)]));
    const ok = await cli(['verify', signed, '--insecure-registry', registry.host, '--policy', policy, '--registries-d', registriesD]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /insecureAcceptAnything: accepted/);
    assert.match(ok.stdout, /signedBy \(GPGKeys\): accepted: signed by [0-9A-F]{40}/);
    const bad = await cli(['verify', unsigned, '--insecure-registry', registry.host, '--policy', policy, '--registries-d', registriesD, '--json']);
    assert.equal(bad.code, 1);
    const report = JSON.parse(bad.stdout) as { verdict: { requirements: { allowed: boolean; code?: string }[] }; refusal: { code: string } };
    assert.deepEqual(report.verdict.requirements.map((q) => q.allowed), [true, false]);
    assert.equal(report.refusal.code, 'SIGNATURE_MISSING');
  });
});
