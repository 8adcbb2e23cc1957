import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pushCosignSignatures } from '../harness/cosign.js';
import { startReferrersProxy, type ReferrersProxy } from '../harness/referrers-proxy.js';
import { smallImage, startRegistry, type StartedRegistry } from '../harness/registry.js';
import { attachBundle, type Subject } from '../harness/sigstore-attach.js';
import { assertCliError, cli, type CliResult } from '../helpers/cli.js';
import { buildImage, buildIndex } from '../helpers/image-builder.js';
import { unmountBelow } from '../helpers/mounts.js';
import { tar } from '../helpers/tar-writer.js';
import {
  SIMPLESIGNING_MEDIA_TYPE, certificateAuthority, cosignKey, cosignPayload, cosignStatement, dsseBundle, leafCertificate,
  legacyKeylessAnnotations, rekorLog,
} from '../helpers/sigstore-material.js';

/**
 * Issue 15 end to end: keyless `.sig`, keyless bundle, keyed bundle, `pki`
 * bundle and a bundle on a multi-arch index, signed with material made here
 * and pushed to Debian's docker-registry as cosign pushes them. Each is
 * pulled over both referrer discovery paths: the registry itself (no
 * referrers API: the sha256-<hex> tag schema) and the referrers proxy (the
 * API, answered from the registry's stored manifests). The matching policy
 * admits it; a policy for another identity refuses it with
 * SIGNATURE_INVALID, on a cache hit too.
 */
const NAME = 'registry.example.test/team/app';
const EMAIL = 'alice@example.test';
const ISSUER = 'https://oidc.example.test';
const PKI_EMAIL = 'builder@example.test';
const PKI_HOST = 'builder.example.test';
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

const fulcioCa = certificateAuthority('fulcio.test');
const otherCa = certificateAuthority('other-fulcio.test');
const pkiCa = certificateAuthority('pki.test');
const log = rekorLog();
const signer = cosignKey();
const stranger = cosignKey();
const leaf = leafCertificate(fulcioCa, { email: EMAIL, oidcIssuer: ISSUER });
const now = Math.floor(Date.now() / 1000);
const pkiLeaf = leafCertificate(pkiCa, { email: PKI_EMAIL, hostname: PKI_HOST, notBefore: now - 60, lifetimeSeconds: 86_400 });

// Bundles name the image by a fixed repository; the policies pin it with exactRepository, so one policy serves both hosts.
const identity = { type: 'exactRepository', dockerRepository: NAME };
const fulcio = (over: Record<string, string> = {}) => ({
  type: 'sigstoreSigned',
  fulcio: { caData: b64(fulcioCa.chainPem), oidcIssuer: ISSUER, subjectEmail: EMAIL, ...over },
  rekorPublicKeyData: b64(log.publicPem),
  signedIdentity: identity,
});
const keyed = (publicPem: string) => ({ type: 'sigstoreSigned', keyData: b64(publicPem), rekorPublicKeyData: b64(log.publicPem), signedIdentity: identity });
const pki = (over: Record<string, string> = {}) => ({
  type: 'sigstoreSigned',
  pki: { caRootsData: b64(pkiCa.rootPem), caIntermediatesData: b64(pkiCa.intermediatePem), subjectEmail: PKI_EMAIL, ...over },
  signedIdentity: identity,
});

let dir: string;
let registry: StartedRegistry;
let proxy: ReferrersProxy;
let n = 0;
let keylessBundleLayer: string;
const repos = {
  keylessSig: 'sig/keyless-sig',
  keylessBundle: 'sig/keyless-bundle',
  keyedBundle: 'sig/keyed-bundle',
  pkiBundle: 'sig/pki-bundle',
  indexBundle: 'sig/index-bundle',
  unsigned: 'sig/unsigned',
} as const;
type Repo = keyof typeof repos;
type Path = 'tag-schema' | 'referrers-api';
const PATHS: readonly Path[] = ['tag-schema', 'referrers-api'];

const hostOf = (path: Path): string => (path === 'tag-schema' ? registry.host : proxy.host);
const imageOf = (repo: Repo, path: Path): string => `${hostOf(path)}/${repos[repo]}:v1`;

async function writePolicy(requirement: unknown): Promise<string> {
  const file = join(dir, `policy-${n++}.json`);
  await writeFile(file, JSON.stringify({ default: [requirement] }));
  return file;
}

async function pull(repo: Repo, path: Path, requirement: unknown, work = join(dir, `work-${n++}`), extra: string[] = []): Promise<CliResult & { work: string }> {
  const bundle = join(dir, `bundle-${n++}`);
  const r = await cli([
    'pull', imageOf(repo, path), bundle, '--work-dir', work, '--insecure-registry', hostOf(path), '--snapshotter', 'copy', '--quiet',
    '--platform', 'linux/amd64', '--policy', await writePolicy(requirement), '--registries-d', join(dir, 'registries.d'), ...extra,
  ]);
  return { ...r, work };
}

const subjectOf = (bytes: Buffer, digest: string, mediaType: string): Subject => ({ mediaType, digest, size: bytes.length });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-sigstore-'));
  await mkdir(join(dir, 'registries.d'));
  registry = await startRegistry('open', { parentDir: dir });
  proxy = await startReferrersProxy(registry, 'api');

  // Keyless .sig: cosign v2's layout, the Fulcio leaf and its SET in the layer annotations.
  const sigImage = await registry.pushImage(repos.keylessSig, 'v1', smallImage('keyless .sig\n'));
  const payload = cosignPayload(NAME, sigImage.manifestDigest);
  await pushCosignSignatures(registry, repos.keylessSig, sigImage.manifestDigest, [], {
    extraLayers: [{ mediaType: SIMPLESIGNING_MEDIA_TYPE, bytes: payload, annotations: legacyKeylessAnnotations(payload, leaf, fulcioCa, { log }) }],
  });

  // Keyless bundle: cosign v3's default, a DSSE statement with inclusion proof, checkpoint and SET.
  const kb = await registry.pushImage(repos.keylessBundle, 'v1', smallImage('keyless bundle\n'));
  keylessBundleLayer = kb.layers[0]!.descriptor.digest.toString();
  await attachBundle(registry, repos.keylessBundle, subjectOf(kb.manifestBytes, kb.manifestDigest, kb.mediaType),
    bundleJson(dsseBundle(cosignStatement(kb.manifestDigest, NAME), { signer: { certificate: leaf }, log })));

  // Keyed bundle: cosign sign --key with the new bundle format.
  const kd = await registry.pushImage(repos.keyedBundle, 'v1', smallImage('keyed bundle\n'));
  await attachBundle(registry, repos.keyedBundle, subjectOf(kd.manifestBytes, kd.manifestDigest, kd.mediaType),
    bundleJson(dsseBundle(cosignStatement(kd.manifestDigest, NAME), { signer: { key: signer }, log })));

  // pki: a leaf of the organisation's own CA, no log.
  const pk = await registry.pushImage(repos.pkiBundle, 'v1', smallImage('pki bundle\n'));
  await attachBundle(registry, repos.pkiBundle, subjectOf(pk.manifestBytes, pk.manifestDigest, pk.mediaType),
    bundleJson(dsseBundle(cosignStatement(pk.manifestDigest, NAME), { signer: { certificate: pkiLeaf } })));

  // Multi-arch: the bundle (an older v0.2, with the chain in the bundle) signs the index, not the manifest pulled.
  const amd64 = buildImage({ layers: [{ tar: tar([{ name: 'arch', content: 'amd64' }]) }] });
  const arm64 = buildImage({ layers: [{ tar: tar([{ name: 'arch', content: 'arm64' }]) }], os: 'linux', architecture: 'arm64' });
  for (const img of [amd64, arm64]) await registry.pushImage(repos.indexBundle, img.manifestDigest, img);
  const index = buildIndex([{ image: amd64, platform: { os: 'linux', architecture: 'amd64' } }, { image: arm64, platform: { os: 'linux', architecture: 'arm64' } }]);
  await registry.pushManifest(repos.indexBundle, 'v1', index.bytes, index.mediaType);
  await attachBundle(registry, repos.indexBundle, subjectOf(index.bytes, index.digest, index.mediaType),
    bundleJson(dsseBundle(cosignStatement(index.digest, NAME), { signer: { certificate: leaf, chain: [fulcioCa.intermediate] }, log, version: '0.2' })));

  await registry.pushImage(repos.unsigned, 'v1', smallImage('unsigned\n'));
});

function bundleJson(made: { bytes: Buffer; mediaType: string }): { json: Buffer; mediaType: string } {
  return { json: made.bytes, mediaType: made.mediaType };
}

after(async () => {
  await proxy?.stop();
  await registry?.stop();
  if (dir) {
    unmountBelow(dir);
    await rm(dir, { recursive: true, force: true });
  }
});

const cases: readonly { repo: Repo; what: string; admits: unknown; refusers: readonly [string, unknown][] }[] = [
  { repo: 'keylessSig', what: 'keyless .sig', admits: fulcio(), refusers: [['another email', fulcio({ subjectEmail: 'mallory@example.test' })], ['another issuer', fulcio({ oidcIssuer: 'https://other.example.test' })]] },
  { repo: 'keylessBundle', what: 'keyless bundle', admits: fulcio(), refusers: [['another email', fulcio({ subjectEmail: 'mallory@example.test' })], ['another CA', fulcio({ caData: b64(otherCa.chainPem) })], ['a keyed policy', keyed(signer.publicPem)]] },
  { repo: 'keyedBundle', what: 'keyed bundle', admits: keyed(signer.publicPem), refusers: [['another key', keyed(stranger.publicPem)], ['a keyless policy', fulcio()]] },
  { repo: 'pkiBundle', what: 'pki bundle', admits: pki(), refusers: [['another email', pki({ subjectEmail: 'mallory@example.test' })], ['another hostname', { ...pki(), pki: { caRootsData: b64(pkiCa.rootPem), caIntermediatesData: b64(pkiCa.intermediatePem), subjectHostname: 'other.example.test' } }]] },
  { repo: 'indexBundle', what: 'bundle on the multi-arch index', admits: fulcio(), refusers: [['another email', fulcio({ subjectEmail: 'mallory@example.test' })]] },
];

for (const path of PATHS) {
  describe(`sigstore signatures found through the ${path}`, { concurrency: 4 }, () => {
    for (const c of cases) {
      it(`${c.what}: admitted by the matching policy, refused by one for ${c.refusers.map(([w]) => w).join(' or ')}, cold and on a cache hit`, async () => {
        const ok = await pull(c.repo, path, c.admits);
        assert.equal(ok.code, 0, ok.stderr);
        // The same store again: the layers are there, the policy is judged anew.
        const hit = await pull(c.repo, path, c.admits, ok.work);
        assert.equal(hit.code, 0, hit.stderr);
        for (const [i, [, requirement]] of c.refusers.entries()) {
          const denied = await pull(c.repo, path, requirement, i === 0 ? undefined : ok.work);
          assertCliError(denied, 'SIGNATURE_INVALID');
        }
      });
    }

    it('an unsigned image is SIGNATURE_MISSING under every keyless and keyed policy', async () => {
      for (const requirement of [fulcio(), keyed(signer.publicPem), pki()]) assertCliError(await pull('unsigned', path, requirement), 'SIGNATURE_MISSING');
    });
  });
}

describe('a cache hit is judged again', () => {
  for (const path of PATHS) {
    it(`over the ${path}: the same store admits, then refuses for another identity`, async () => {
      const work = join(dir, `work-cache-${path}`);
      const first = await pull('keylessBundle', path, fulcio(), work);
      assert.equal(first.code, 0, first.stderr);
      proxy.proxy.resetStats();
      const again = await pull('keylessBundle', path, fulcio(), work);
      assert.equal(again.code, 0, again.stderr);
      if (path === 'referrers-api') {
        const urls = proxy.proxy.requests().map((q) => q.url);
        assert.ok(urls.some((u) => u.includes(`/${repos.keylessBundle}/referrers/`)), 'the second pull did not look for referrers again');
        assert.ok(!urls.some((u) => u.endsWith(`/blobs/${keylessBundleLayer}`)), 'the second pull fetched the layer: it was no cache hit');
      }
      assertCliError(await pull('keylessBundle', path, fulcio({ subjectEmail: 'mallory@example.test' }), work), 'SIGNATURE_INVALID');
    });
  }
});

describe('how the signatures were found', () => {
  it('through the proxy the referrers API answered and the tag schema was never read', async () => {
    proxy.proxy.resetStats();
    const r = await pull('keylessBundle', 'referrers-api', fulcio());
    assert.equal(r.code, 0, r.stderr);
    const urls = proxy.proxy.requests().map((q) => q.url);
    assert.ok(urls.some((u) => /\/referrers\/sha256:/.test(u)), urls.join('\n'));
    assert.ok(!urls.some((u) => /\/manifests\/sha256-[0-9a-f]{64}$/.test(u)), urls.join('\n'));
  });

  it('a registry without the API: its 404, then the sha256-<hex> tag', async () => {
    proxy.mode = 'tag-schema';
    proxy.proxy.resetStats();
    try {
      const r = await pull('keylessBundle', 'referrers-api', fulcio());
      assert.equal(r.code, 0, r.stderr);
      const seen = proxy.proxy.requests().map((q) => `${q.status} ${q.url}`);
      assert.ok(seen.some((s) => /^404 .*\/referrers\/sha256:/.test(s)), seen.join('\n'));
      assert.ok(seen.some((s) => /^200 .*\/manifests\/sha256-[0-9a-f]{64}$/.test(s)), seen.join('\n'));
    } finally {
      proxy.mode = 'api';
    }
  });

  it('registries.d use-sigstore-attachments: false reads neither the .sig tag nor referrer bundles', async () => {
    const off = join(dir, 'registries.d-off');
    await mkdir(off, { recursive: true });
    await writeFile(join(off, 'default.yaml'), 'default-docker:\n  use-sigstore-attachments: false\n');
    assertCliError(await pull('keylessSig', 'tag-schema', fulcio(), undefined, ['--registries-d', off]), 'SIGNATURE_MISSING');
    assertCliError(await pull('keylessBundle', 'referrers-api', fulcio(), undefined, ['--registries-d', off]), 'SIGNATURE_MISSING');
  });
});

describe('image-ts verify', () => {
  it('prints each requirement\'s verdict for keyless, keyed and pki images', async () => {
    const policy = await writePolicy(fulcio());
    const ok = await cli(['verify', imageOf('keylessBundle', 'referrers-api'), '--insecure-registry', proxy.host, '--policy', policy, '--registries-d', join(dir, 'registries.d')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /sigstoreSigned: accepted: sigstore bundle verified \(fulcio\)/);
    assert.match(ok.stdout, /result {4}allowed/);

    const sig = await cli(['verify', imageOf('keylessSig', 'tag-schema'), '--insecure-registry', registry.host, '--policy', policy, '--registries-d', join(dir, 'registries.d')]);
    assert.equal(sig.code, 0, sig.stderr);
    assert.match(sig.stdout, /sigstoreSigned: accepted: cosign signature verified \(fulcio\)/);

    const pkiOk = await cli(['verify', imageOf('pkiBundle', 'tag-schema'), '--insecure-registry', registry.host, '--policy', await writePolicy(pki()), '--registries-d', join(dir, 'registries.d')]);
    assert.equal(pkiOk.code, 0, pkiOk.stderr);
    assert.match(pkiOk.stdout, /sigstoreSigned: accepted: sigstore bundle verified \(pki\)/);

    const bad = await cli(['verify', imageOf('keyedBundle', 'referrers-api'), '--insecure-registry', proxy.host, '--policy', await writePolicy(keyed(stranger.publicPem)), '--registries-d', join(dir, 'registries.d'), '--json']);
    assert.equal(bad.code, 1);
    const report = JSON.parse(bad.stdout) as { verdict: { requirements: { requirement: string; allowed: boolean; code?: string; reason: string }[] }; refusal: { code: string } };
    assert.deepEqual(report.verdict.requirements.map((q) => [q.requirement, q.allowed, q.code]), [['sigstoreSigned', false, 'SIGNATURE_INVALID']]);
    assert.equal(report.refusal.code, 'SIGNATURE_INVALID');
  });

  it('names the check that failed, for each kind of signature', async () => {
    const expectations: readonly [Repo, Path, unknown, readonly string[]][] = [
      ['keylessSig', 'tag-schema', fulcio({ oidcIssuer: 'https://other.example.test' }), ['identity']],
      ['keylessBundle', 'referrers-api', fulcio({ subjectEmail: 'mallory@example.test' }), ['identity']],
      ['keylessBundle', 'tag-schema', fulcio({ caData: b64(otherCa.chainPem) }), ['chain']],
      ['keylessBundle', 'referrers-api', keyed(signer.publicPem), ['key-kind']],
      ['keyedBundle', 'tag-schema', keyed(stranger.publicPem), ['signature']],
      ['pkiBundle', 'referrers-api', pki({ subjectEmail: 'mallory@example.test' }), ['identity']],
    ];
    for (const [repo, path, requirement, checks] of expectations) {
      const r = await cli(['verify', imageOf(repo, path), '--insecure-registry', hostOf(path), '--policy', await writePolicy(requirement), '--registries-d', join(dir, 'registries.d'), '--json']);
      assert.equal(r.code, 1, r.stderr);
      const report = JSON.parse(r.stdout) as { verdict: { requirements: { checks?: string[] }[] } };
      assert.deepEqual(report.verdict.requirements[0]?.checks, checks, `${repo} over the ${path}: ${r.stdout}`);
    }
  });
});
