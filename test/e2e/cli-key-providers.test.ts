/**
 * End to end: a Confidential Containers image (layers encrypted by real
 * skopeo, recipient turned into `provider.attestation-agent` with an
 * AnnotationPacket sealed under a KEK at kbs:///default/key/image-kek) pulled
 * through every way image-ts can reach the KEK: ocicrypt key providers over
 * gRPC, ttrpc and cmd, and the in-process provider over a KBS, a CDH or
 * offline files, selected by deployment profile. Each must give the same
 * rootfs as the plaintext image; each failure must be one line with the
 * right code, leave no bundle and commit nothing, and never print the KEK.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { disposeTestKeys, encryptLayout, makeTestKeys, readLayoutLayers, type TestKeys } from '../harness/encrypted-images.js';
import { startKbsServer, type StartedKbsServer } from '../harness/kbs-server.js';
import { deadTarget, startAttestationAgentService, startCdhService, startKeyProviderService, type StartedService } from '../harness/key-services.js';
import { MemoryAttestationAgent } from '../mocks/memory-attestation-agent.js';
import { rewriteLayout, toProviderImage } from '../harness/layout-rewrite.js';
import { assertCliError, cli, ROOT, type CliResult } from '../helpers/cli.js';
import { PROVIDER_AA, PUBOPTS } from '../helpers/encryption.js';
import { base, upper } from '../helpers/fixture-layers.js';
import { buildImage, imageManifestEntry, writeOciLayout, type BuiltImage } from '../helpers/image-builder.js';
import { unmountBelow } from '../helpers/mounts.js';
import { tar } from '../helpers/tar-writer.js';
import { treeOf } from '../helpers/tree.js';
import { MemoryKeyBroker } from '../mocks/memory-key-broker.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) throw new Error('the end-to-end tests run as root (overlay mounts, owners); run npm test as root');

const RESOURCE = 'default/key/image-kek';
const KID = `kbs:///${RESOURCE}`;
const CMD_PROVIDER = join(ROOT, 'test', 'fixtures', 'cmd-key-provider.mjs');
/** Every pull in this file uses the same snapshotter, so that trees compare. */
const SNAPSHOTTER = 'overlay';

let dir: string;
let keys: TestKeys | undefined;
let plain: BuiltImage;
let plainLayout: string;
let providerLayout: string;
let kek: Buffer;
let wrongKek: Buffer;
let plainTree: string[];
/** base64 `wrapped_data` of each layer's AnnotationPacket. */
let wrappedData: string[];
/** Provider image layers whose ciphertext / HMAC was altered. */
let tamperedCiphertextLayout: string;
let tamperedHmacLayout: string;

const stoppers: (() => Promise<void>)[] = [];
/** stderr of every CLI run, checked for key material at the end. */
const stderrs: { name: string; negative: boolean; stderr: string }[] = [];

async function writeJson(name: string, value: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, JSON.stringify(value));
  return path;
}

function secrets(): { what: string; text: string }[] {
  return [
    { what: 'KEK (base64)', text: kek.toString('base64') },
    { what: 'KEK (base64url)', text: kek.toString('base64url') },
    { what: 'KEK (hex)', text: kek.toString('hex') },
    { what: 'KEK (HEX)', text: kek.toString('hex').toUpperCase() },
    { what: 'wrong KEK (base64)', text: wrongKek.toString('base64') },
    { what: 'wrong KEK (hex)', text: wrongKek.toString('hex') },
  ];
}

interface PullOptions {
  /** An image-ts config file's contents; none when undefined. */
  readonly config?: Record<string, unknown>;
  readonly env?: NodeJS.ProcessEnv;
  readonly layout?: string;
  readonly negative?: boolean;
  /** Run the esbuild bundle (bin/image-ts.js) instead of the sources. */
  readonly built?: boolean;
}

async function pull(name: string, o: PullOptions = {}): Promise<{ r: CliResult; work: string; bundle: string }> {
  const work = join(dir, `work-${name}`);
  const bundle = join(dir, `bundle-${name}`);
  const args = ['pull', `oci:${o.layout ?? providerLayout}:latest`, bundle, '--work-dir', work, '--snapshotter', SNAPSHOTTER];
  if (o.config) args.push('--config', await writeJson(`config-${name}.json`, o.config));
  // The caller's environment must not bring a key-provider config of its own.
  const r = await cli(args, { env: { OCICRYPT_KEYPROVIDER_CONFIG: '', ...o.env }, built: o.built });
  stderrs.push({ name, negative: o.negative === true, stderr: r.stderr });
  return { r, work, bundle };
}

async function removeBundle(work: string, bundle: string): Promise<void> {
  const r = await cli(['bundle', 'rm', bundle, '--work-dir', work]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(existsSync(bundle), false, 'bundle rm removes the bundle');
}

/** Pulls the provider image and checks it unpacks to exactly the plaintext image's rootfs. */
async function pullsSameTree(name: string, o: PullOptions = {}): Promise<{ work: string; bundle: string }> {
  const { r, work, bundle } = await pull(name, o);
  assert.equal(r.code, 0, `${name}: ${r.stderr}`);
  assert.deepEqual(await treeOf(join(bundle, 'rootfs')), plainTree, `${name}: rootfs differs from the plaintext image`);
  return { work, bundle };
}

async function roundTrip(name: string, o: PullOptions = {}): Promise<void> {
  const { work, bundle } = await pullsSameTree(name, o);
  await removeBundle(work, bundle);
}

async function listOrEmpty(path: string): Promise<string[]> {
  return existsSync(path) ? readdir(path) : [];
}

/**
 * The failure contract: the code, one stderr line without a stack trace, no
 * bundle (or an empty directory), no image recorded, and only the layers in
 * `mayCommit` (intact layers that pulled before another one failed) in the store.
 */
async function failsWith(name: string, code: string, o: PullOptions & { mayCommit?: readonly string[] } = {}): Promise<string> {
  const { r, work, bundle } = await pull(name, { ...o, negative: true });
  assertCliError(r, code);
  assert.deepEqual(await listOrEmpty(bundle), [], `${name}: no bundle left`);
  const layers = (await listOrEmpty(join(work, 'layers', 'sha256'))).map((h) => `sha256:${h}`);
  const allowed = new Set(o.mayCommit ?? []);
  assert.deepEqual(layers.filter((l) => !allowed.has(l)), [], `${name}: no layer may be committed`);
  assert.deepEqual(await listOrEmpty(join(work, 'staging')), [], `${name}: no staging left`);
  if (existsSync(join(work, 'metadata.json'))) {
    const meta = JSON.parse(await readFile(join(work, 'metadata.json'), 'utf8')) as { images: object; bundles: object };
    assert.deepEqual([meta.images, meta.bundles], [{}, {}], `${name}: no image or bundle recorded`);
  }
  return r.stderr;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-e2e-kp-'));
  plainLayout = join(dir, 'plain-layout');
  plain = buildImage({
    layers: [{ tar: tar(base), compression: 'gzip' }, { tar: tar(upper), compression: 'gzip' }],
    config: { Entrypoint: ['/bin/sh'], Env: ['A=1'] },
  });
  await writeOciLayout(plainLayout, [imageManifestEntry(plain, 'latest')]);

  kek = randomBytes(32);
  wrongKek = randomBytes(32);
  providerLayout = join(dir, 'provider-layout');
  tamperedCiphertextLayout = join(dir, 'tampered-ciphertext-layout');
  tamperedHmacLayout = join(dir, 'tampered-hmac-layout');
  // The CLI starts slowly from source: take the reference pull while the keys are made.
  await Promise.all([makeImages(), referencePull()]);
});

/** skopeo encrypts the plaintext layout for a jwe key; the recipe turns it into the provider image and its tampered variants. */
async function makeImages(): Promise<void> {
  keys = await makeTestKeys(join(dir, 'keys'));
  const jweLayout = join(dir, 'jwe-layout');
  await encryptLayout(`oci:${plainLayout}:latest`, jweLayout, [`jwe:${keys.rsa.publicPem.path}`]);
  await toProviderImage(jweLayout, providerLayout, keys.rsa.pkcs8Pem.bytes, kek, KID);

  const layers = await readLayoutLayers(providerLayout);
  assert.equal(layers.length, 2);
  wrappedData = layers.map(({ descriptor }) => {
    assert.ok(descriptor.mediaType.endsWith('+encrypted'), 'skopeo encrypted every layer');
    const annotations = descriptor.annotations ?? {};
    assert.deepEqual(Object.keys(annotations).filter((k) => k.startsWith('org.opencontainers.image.enc.keys.')), [PROVIDER_AA]);
    const packet = JSON.parse(Buffer.from(annotations[PROVIDER_AA]!, 'base64').toString('utf8')) as { kid: string; wrapped_data: string };
    assert.equal(packet.kid, KID);
    return packet.wrapped_data;
  });

  await rewriteLayout(providerLayout, tamperedCiphertextLayout, async (l, i) => {
    if (i !== 0) return;
    const bytes = Buffer.from(l.blob);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await l.setBlob(bytes);
  });
  await rewriteLayout(providerLayout, tamperedHmacLayout, (l, i) => {
    if (i !== 0) return;
    const annotations = l.layer.annotations!;
    const pub = JSON.parse(Buffer.from(annotations[PUBOPTS]!, 'base64').toString('utf8')) as { hmac: string };
    const hmac = Buffer.from(pub.hmac, 'base64');
    hmac[hmac.length - 1]! ^= 0x80;
    annotations[PUBOPTS] = Buffer.from(JSON.stringify({ ...pub, hmac: hmac.toString('base64') })).toString('base64');
  });
}

/** The reference: the plaintext image through the same snapshotter. */
async function referencePull(): Promise<void> {
  const work = join(dir, 'work-plain');
  const bundle = join(dir, 'bundle-plain');
  const r = await cli(['pull', `oci:${plainLayout}:latest`, bundle, '--work-dir', work, '--snapshotter', SNAPSHOTTER]);
  assert.equal(r.code, 0, r.stderr);
  plainTree = await treeOf(join(bundle, 'rootfs'));
  // Both layers applied: the upper file won, the whiteout deleted.
  assert.ok(plainTree.some((l) => l.startsWith('keep.txt ')) && plainTree.some((l) => l.startsWith('newdir/file ')));
  assert.ok(!plainTree.some((l) => l.startsWith('gone.txt ')));
  await removeBundle(work, bundle);
}

after(async () => {
  await Promise.allSettled(stoppers.map((s) => s()));
  if (keys) await disposeTestKeys(keys);
  if (dir) {
    unmountBelow(dir);
    await rm(dir, { recursive: true, force: true });
  }
});

async function keyProviderService(transport: 'grpc' | 'ttrpc', broker: MemoryKeyBroker): Promise<StartedService> {
  const s = await startKeyProviderService(transport, broker);
  stoppers.push(() => s.stop());
  return s;
}

async function cdhService(transport: 'grpc' | 'ttrpc', broker: MemoryKeyBroker): Promise<StartedService> {
  const s = await startCdhService(transport, broker);
  stoppers.push(() => s.stop());
  return s;
}

async function kbsServer(resource: Buffer): Promise<StartedKbsServer> {
  const s = await startKbsServer({ resources: new Map([[RESOURCE, resource]]) });
  stoppers.push(() => s.close());
  return s;
}

const brokerWith = (key: Buffer): MemoryKeyBroker => new MemoryKeyBroker(new Map([[RESOURCE, key]]));
const cmdProvider = { cmd: { path: process.execPath, args: [CMD_PROVIDER] } };

const offlineFile = (name: string, key: Buffer): Promise<string> => writeJson(name, { [RESOURCE]: key.toString('base64') });

/** Checks `inspect --json` of a pulled provider image: the scheme per layer, and no key material. */
async function inspectShowsNoSecret(work: string): Promise<void> {
  const index = JSON.parse(await readFile(join(providerLayout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const digest = index.manifests[0]!.digest;
  const r = await cli(['inspect', digest, '--work-dir', work, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { image: { manifestDigest: string; layers: { encryption?: string[] }[] } };
  assert.equal(info.image.manifestDigest, digest);
  assert.deepEqual(info.image.layers.map((l) => l.encryption), [['provider.attestation-agent'], ['provider.attestation-agent']]);
  // What the store keeps is what inspect can ever show.
  const metadata = await readFile(join(work, 'metadata.json'), 'utf8');
  for (const [where, out] of [['inspect --json', r.stdout + r.stderr], ['metadata.json', metadata]] as const) {
    for (const s of secrets()) assert.ok(!out.includes(s.text), `${where} shows the ${s.what}`);
    for (const w of wrappedData) assert.ok(!out.includes(w), `${where} shows an AnnotationPacket's wrapped_data`);
  }
}

// One suite, so that pulls of different scenarios overlap (the CLI's start from source is CPU-bound).
describe('image-ts pull of a provider.attestation-agent image', { concurrency: 3 }, () => {
  for (const transport of ['grpc', 'ttrpc'] as const) {
    it(`unpacks the plaintext rootfs through an ocicrypt key provider over ${transport}`, async () => {
      const broker = brokerWith(kek);
      const service = await keyProviderService(transport, broker);
      const kp = await writeJson(`kp-${transport}.json`, { 'key-providers': { 'attestation-agent': { [transport]: service.target } } });
      // gRPC through the bundle too: grpc-js is a lazily loaded chunk there.
      await roundTrip(`kp-${transport}`, { config: { keyprovider_config: kp }, built: transport === 'grpc' });
      // The service, not some in-process fallback, fetched the KEK: once per layer.
      assert.deepEqual(broker.requests, [KID, KID]);
    });
  }

  it('unpacks it through a cmd key provider (base64 optsdata via keyprovider_config, integer arrays via OCICRYPT_KEYPROVIDER_CONFIG)', async () => {
    const kp = await writeJson('kp-cmd.json', { 'key-providers': { 'attestation-agent': cmdProvider } });
    const env = { CMD_KP_KEK_B64: kek.toString('base64'), CMD_KP_KID: KID };
    await Promise.all([
      roundTrip('kp-cmd-b64', { config: { keyprovider_config: kp }, env }),
      // No config file at all: the environment variable alone names the provider.
      roundTrip('kp-cmd-array-env', { env: { ...env, CMD_KP_ARRAY: '1', OCICRYPT_KEYPROVIDER_CONFIG: kp } }),
    ]);
  });

  it('unpacks it in process with the KEK from a KBS after attestation; inspect shows the scheme, no key', async () => {
    const kbs = await kbsServer(kek);
    const { work, bundle } = await pullsSameTree('kbs', { config: { key_broker: { kind: 'kbs', url: kbs.url, attester: 'sample' } } });
    assert.ok(kbs.stats.attest >= 1, 'the client attested');
    const gets = kbs.stats.requests.filter((q) => q.method === 'GET');
    assert.ok(gets.length >= 1);
    assert.ok(gets.every((q) => q.path === `/kbs/v0/resource/${RESOURCE}` && q.status === 200), JSON.stringify(gets));
    await inspectShowsNoSecret(work);
    await removeBundle(work, bundle);
  });

  it('unpacks the same image under the kbs-direct, cdh-guest, offline and standalone profiles', async () => {
    const kbs = await kbsServer(kek);
    const cdhTtrpcBroker = brokerWith(kek);
    const cdhGrpcBroker = brokerWith(kek);
    const cdhTtrpc = await cdhService('ttrpc', cdhTtrpcBroker);
    const cdhGrpc = await cdhService('grpc', cdhGrpcBroker);
    const offline = await offlineFile('offline-keys.json', kek);
    // cdh-guest measures every pull into the AA: a mock AA over ttrpc records it.
    const aa = new MemoryAttestationAgent();
    const aaService = await startAttestationAgentService('ttrpc', aa);
    stoppers.push(() => aaService.stop());
    const runs: [string, Record<string, unknown>][] = [
      ['profile-kbs-direct', { profile: 'kbs-direct', key_broker: { kind: 'kbs', url: kbs.url, attester: 'sample' } }],
      ['profile-cdh-guest', { profile: 'cdh-guest', key_broker: { kind: 'cdh', address: cdhTtrpc.target, transport: 'ttrpc' }, attestation_agent: { address: aaService.target, transport: 'ttrpc' } }],
      ['profile-offline', { profile: 'offline', key_broker: { kind: 'offline-fs', files: [offline] } }],
      ['profile-standalone', { profile: 'standalone', key_broker: { kind: 'cdh', address: cdhGrpc.target, transport: 'grpc' } }],
    ];
    // Each is compared with the plaintext tree, hence all four are identical.
    const pulled = await Promise.all(runs.map(([name, config]) => pullsSameTree(name, { config })));
    await Promise.all(pulled.map((p) => removeBundle(p.work, p.bundle)));
    assert.ok(kbs.stats.attest >= 1);
    assert.deepEqual(cdhTtrpcBroker.requests, [KID, KID]);
    assert.deepEqual(cdhGrpcBroker.requests, [KID, KID]);
    assert.deepEqual(aa.measurements.map((m) => [m.domain, m.operation, (JSON.parse(m.content) as { image: string }).image.startsWith('oci:')]),
      [['github.com/confidential-containers', 'PullImage', true]]);
  });

  it('fails with KEY_BROKER_DENIED when the KBS refuses the resource, ATTESTATION_FAILED when it refuses the evidence', async () => {
    const denyResource = await kbsServer(kek);
    denyResource.faults.denyResource = true;
    const denyAttestation = await kbsServer(kek);
    denyAttestation.faults.denyAttestation = true;
    await Promise.all([
      failsWith('kbs-deny-resource', 'KEY_BROKER_DENIED', { config: { key_broker: { kind: 'kbs', url: denyResource.url, attester: 'sample' } } }),
      failsWith('kbs-deny-attestation', 'ATTESTATION_FAILED', { config: { key_broker: { kind: 'kbs', url: denyAttestation.url, attester: 'sample' } } }),
    ]);
    assert.ok(denyResource.stats.attest >= 1 && denyResource.stats.requests.some((q) => q.method === 'GET' && q.status === 401));
    assert.ok(denyAttestation.stats.attest >= 1 && !denyAttestation.stats.requests.some((q) => q.method === 'GET' && q.status === 200));
  });

  it('fails with KEY_BROKER_UNAVAILABLE at once when the key provider socket is dead (ttrpc and gRPC)', async () => {
    const started = Date.now();
    await Promise.all((['ttrpc', 'grpc'] as const).map(async (transport) => {
      const dead = await deadTarget();
      stoppers.push(dead.cleanup);
      const kp = await writeJson(`kp-dead-${transport}.json`, { 'key-providers': { 'attestation-agent': { [transport]: dead.target } } });
      const stderr = await failsWith(`kp-dead-${transport}`, 'KEY_BROKER_UNAVAILABLE', { config: { keyprovider_config: kp } });
      assert.ok(stderr.includes(dead.target.slice('unix://'.length)), `names the socket: ${stderr}`);
    }));
    // A timeout would take the RPC timeout (60 s); a busy machine still starts two CLIs well within 45 s.
    assert.ok(Date.now() - started < 45_000, 'a refused connection is reported at once, not after the RPC timeout');
  });

  it('fails with KEY_BROKER_DENIED when the cmd key provider refuses, quoting its first stderr line only', async () => {
    const kp = await writeJson('kp-cmd-fail.json', { 'key-providers': { 'attestation-agent': cmdProvider } });
    const stderr = await failsWith('kp-cmd-fail', 'KEY_BROKER_DENIED', {
      config: { keyprovider_config: kp },
      env: { CMD_KP_KEK_B64: kek.toString('base64'), CMD_KP_FAIL: '1' },
    });
    assert.match(stderr, /refusing as CMD_KP_FAIL asks/);
    assert.doesNotMatch(stderr, /second line/);
  });

  it('fails with KEY_BROKER_UNAVAILABLE when neither a key broker nor a key provider is configured', async () => {
    // Not MISSING_KEY: keys.ts always registers the in-process attestation-agent
    // provider, over NoKeyBroker when no key_broker is configured. So the
    // provider exists and parses the packet, but its broker cannot be asked;
    // LayerKeys lets that service error win over MISSING_KEY, as it says what to fix.
    const stderr = await failsWith('no-broker', 'KEY_BROKER_UNAVAILABLE');
    assert.match(stderr, /no key broker is configured/);
    assert.ok(stderr.includes(KID), 'names the resource it could not fetch');
  });

  it('fails with DECRYPT_FAILED when the broker holds a wrong KEK (GCM authentication of the AnnotationPacket)', async () => {
    const kbs = await kbsServer(wrongKek);
    const stderr = await failsWith('wrong-kek', 'DECRYPT_FAILED', { config: { key_broker: { kind: 'kbs', url: kbs.url, attester: 'sample' } } });
    assert.match(stderr, /GCM/);
    assert.ok(kbs.stats.requests.some((q) => q.method === 'GET' && q.status === 200), 'the KBS did release the (wrong) key');
  });

  // Only the first layer is altered, and layers are fetched concurrently: the
  // intact upper layer may be verified and committed before the first one
  // fails. The altered one must never be.
  const tampered: [string, string, () => string][] = [
    ['ct', 'a flipped ciphertext byte', () => tamperedCiphertextLayout],
    ['hmac', 'a changed HMAC in pubopts', () => tamperedHmacLayout],
  ];
  for (const [name, what, layout] of tampered) {
    it(`fails with DECRYPT_FAILED for ${what}`, async () => {
      const stderr = await failsWith(`tampered-${name}`, 'DECRYPT_FAILED', {
        layout: layout(),
        config: { key_broker: { kind: 'offline-fs', files: [await offlineFile(`offline-${name}.json`, kek)] } },
        mayCommit: [plain.layers[1]!.diffId],
      });
      assert.match(stderr, /HMAC/);
    });
  }
});

describe('key material never reaches stderr', () => {
  it('no run printed the KEK, in base64 or hex', () => {
    const negatives = stderrs.filter((s) => s.negative);
    // Every negative case above ran (and reported something) before this check.
    assert.equal(negatives.length, 9, negatives.map((n) => n.name).join(', '));
    assert.ok(negatives.every((n) => n.stderr.length > 0));
    for (const { name, stderr } of stderrs) {
      for (const s of secrets()) assert.ok(!stderr.includes(s.text), `${name}: stderr shows the ${s.what}`);
    }
  });
});
