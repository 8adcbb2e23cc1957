import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GrpcTransport } from '../../src/adapters/outbound/rpc/grpc.js';
import { ProtoReader, ProtoWriter, singleBytes, singleString } from '../../src/adapters/outbound/rpc/protobuf.js';
import { RpcError, RpcStatus, type RpcTransport } from '../../src/adapters/outbound/rpc/rpc.js';
import { TtrpcClient } from '../../src/adapters/outbound/rpc/ttrpc.js';
import { EMPTY_DECRYPT_CONFIG } from '../../src/domain/encryption/decrypt-config.js';
import { keyUnwrapInput, parseKeyUnwrapOutput } from '../../src/domain/encryption/key-provider-protocol.js';
import { startAttestationAgentService, type StartedService } from '../harness/key-services.js';
import { smallImage, startRegistry, type StartedRegistry } from '../harness/registry.js';
import { ROOT } from '../helpers/cli.js';
import { annotationPacket } from '../helpers/encryption.js';
import { unmountBelow } from '../helpers/mounts.js';
import { MemoryAttestationAgent } from '../mocks/memory-attestation-agent.js';

/**
 * `image-ts serve` as a Kata agent and CDH clients see it: the CDH API over
 * ttrpc and gRPC on unix sockets, answered by a real process that pulls
 * from the real registry.
 */
let dir: string;
let registry: StartedRegistry;
let secured: StartedRegistry;
let tokenRegistry: StartedRegistry;
let securedDigest: string;
let cri: GrpcTransport;
let server: ChildProcess;
let stderr = '';
let aa: MemoryAttestationAgent;
let aaService: StartedService;
let ttrpc: TtrpcClient;
let grpc: GrpcTransport;
const kek = randomBytes(32);
const secret = Buffer.from('a resource only the broker holds');
let digests: string[];

const pullRequest = (image: string, bundle: string) => new ProtoWriter().string(1, image).string(2, bundle).finish();

async function pullOver(t: RpcTransport, image: string, bundle: string): Promise<string> {
  return ProtoReader.decode(await t.unary('api.ImagePullService', 'PullImage', pullRequest(image, bundle), { timeoutMs: 60_000 })).string(1);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-serve-'));
  registry = await startRegistry('open', { parentDir: dir, accessLog: true });
  digests = [];
  for (let i = 0; i < 4; i++) digests.push((await registry.pushImage('serve/app', `v${i}`, smallImage(i < 2 ? 'shared\n' : `own ${i}\n`))).manifestDigest);
  secured = await startRegistry('tls-htpasswd', { parentDir: dir, username: 'pod', password: 'pull-secret-pw' });
  securedDigest = (await secured.pushImage('private/app', 'v1', smallImage('private\n'))).manifestDigest;
  tokenRegistry = await startRegistry('token', { parentDir: dir });
  await tokenRegistry.pushImage('team/app', 'v1', smallImage('behind a token\n'));
  aa = new MemoryAttestationAgent();
  aaService = await startAttestationAgentService('ttrpc', aa);
  const resources = join(dir, 'resources.json');
  await writeFile(resources, JSON.stringify({ 'default/key/1': kek.toString('base64'), 'default/secret/1': secret.toString('base64') }));
  const config = join(dir, 'config.json');
  await writeFile(config, JSON.stringify({
    key_broker: { kind: 'offline-fs', files: [resources] },
    attestation_agent: { address: aaService.target, transport: 'ttrpc' },
  }));
  server = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/adapters/inbound/cli/bin.ts'), 'serve',
    '--cdh-ttrpc', `unix://${join(dir, 'cdh.sock')}`, '--cdh-grpc', `unix://${join(dir, 'cdh-grpc.sock')}`,
    '--cri', `unix://${join(dir, 'cri.sock')}`, '--ca-file', secured.caFile!, '--ca-file', tokenRegistry.caFile!,
    '--work-dir', join(dir, 'work'), '--insecure-registry', registry.host, '--snapshotter', 'overlay', '--config', config], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    server.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('"event":"serving"')) resolve();
    });
    server.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  ttrpc = new TtrpcClient(`unix://${join(dir, 'cdh.sock')}`);
  grpc = new GrpcTransport(`unix://${join(dir, 'cdh-grpc.sock')}`);
  cri = new GrpcTransport(`unix://${join(dir, 'cri.sock')}`);
});

after(async () => {
  ttrpc?.close();
  grpc?.close();
  cri?.close();
  await secured?.stop();
  await tokenRegistry?.stop();
  if (server && server.exitCode === null) server.kill('SIGKILL');
  await aaService?.stop();
  await registry?.stop();
  unmountBelow(dir);
  await rm(dir, { recursive: true, force: true });
});

describe('image-ts serve: the CDH API', () => {
  it('PullImage over ttrpc and over gRPC gives a bundle and the manifest digest, and measures each pull', async () => {
    const image = `${registry.host}/serve/app:v0`;
    assert.equal(await pullOver(ttrpc, image, join(dir, 'b-ttrpc')), digests[0]);
    assert.equal(await pullOver(grpc, image, join(dir, 'b-grpc')), digests[0]);
    for (const b of ['b-ttrpc', 'b-grpc']) {
      assert.equal(await readFile(join(dir, b, 'rootfs', 'hello.txt'), 'utf8'), 'shared\n');
      assert.ok(existsSync(join(dir, b, 'config.json')));
    }
    const events = aa.measurements.filter((m) => m.operation === 'PullImage').map((m) => JSON.parse(m.content) as { image: string; digest: string });
    assert.deepEqual(events.slice(0, 2), [{ image, digest: digests[0] }, { image, digest: digests[0] }], 'a cache hit is measured too');
  });

  it('serves eight concurrent pulls of images that share layers', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      pullOver(i % 2 ? grpc : ttrpc, `${registry.host}/serve/app:v${i % 4}`, join(dir, `b-par-${i}`))));
    assert.deepEqual(results, Array.from({ length: 8 }, (_, i) => digests[i % 4]));
    for (let i = 0; i < 8; i++) {
      assert.equal(await readFile(join(dir, `b-par-${i}`, 'rootfs', 'hello.txt'), 'utf8'), i % 4 < 2 ? 'shared\n' : `own ${i % 4}\n`);
    }
  });

  it('eight concurrent pulls of four repositories sharing a base layer download it once', async () => {
    const { buildImage } = await import('../helpers/image-builder.js');
    const { tar } = await import('../helpers/tar-writer.js');
    const base = tar([{ name: 'base.bin', content: randomBytes(256 * 1024) }]);
    const images = [0, 1, 2, 3].map((i) => buildImage({ layers: [{ tar: base }, { tar: tar([{ name: 'own', content: `image ${i}` }]) }] }));
    for (const [i, img] of images.entries()) {
      for (const [digest, blob] of img.blobs) if (digest !== img.manifestDigest) await registry.pushBlob(`serve/shared-${i}`, blob);
      await registry.pushManifest(`serve/shared-${i}`, 'v1', img.manifest, img.manifestMediaType);
    }
    const baseDigest = images[0]!.layers[0]!.digest;
    const before = (registry.logs().match(new RegExp(`GET /v2/serve/shared-\\d/blobs/${baseDigest}`, 'g')) ?? []).length;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      pullOver(i % 2 ? grpc : ttrpc, `${registry.host}/serve/shared-${i % 4}:v1`, join(dir, `b-shared-${i}`))));
    assert.deepEqual(results, Array.from({ length: 8 }, (_, i) => images[i % 4]!.manifestDigest));
    for (let i = 0; i < 8; i++) assert.equal(await readFile(join(dir, `b-shared-${i}`, 'rootfs', 'own'), 'utf8'), `image ${i % 4}`);
    const fetches = (registry.logs().match(new RegExp(`GET /v2/serve/shared-\\d/blobs/${baseDigest}`, 'g')) ?? []).length - before;
    assert.equal(fetches, 1, 'the shared base layer is fetched once');
  });

  it('a call cancelled mid-pull leaves no bundle and a store that pulls the image afterwards', async () => {
    const { buildImage } = await import('../helpers/image-builder.js');
    const { tar } = await import('../helpers/tar-writer.js');
    const big = buildImage({ layers: [{ tar: tar([{ name: 'big.bin', content: randomBytes(48 * 1024 * 1024) }]) }] });
    for (const [digest, blob] of big.blobs) if (digest !== big.manifestDigest) await registry.pushBlob('serve/big', blob);
    await registry.pushManifest('serve/big', 'v1', big.manifest, big.manifestMediaType);
    const bundle = join(dir, 'b-cancelled');
    await assert.rejects(ttrpc.unary('api.ImagePullService', 'PullImage', pullRequest(`${registry.host}/serve/big:v1`, bundle), { timeoutMs: 300 }),
      (e: unknown) => e instanceof RpcError && e.unreachable);
    // The server learns of the cancellation and undoes the pull.
    for (let i = 0; i < 100 && existsSync(bundle); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(existsSync(bundle), false, 'the cancelled bundle is removed');
    assert.equal(await pullOver(grpc, `${registry.host}/serve/big:v1`, join(dir, 'b-big')), big.manifestDigest);
    assert.equal((await readFile(join(dir, 'b-big', 'rootfs', 'big.bin'))).length, 48 * 1024 * 1024);
  });

  it('maps failures to gRPC statuses with the image-ts code in the message', async () => {
    const status = (s: number, c: string) => (e: unknown): boolean => e instanceof RpcError && e.status === s && e.message.startsWith(`${c}: `);
    await assert.rejects(pullOver(ttrpc, `${registry.host}/serve/missing:v1`, join(dir, 'b-missing')), status(RpcStatus.NOT_FOUND, 'NOT_FOUND'));
    await assert.rejects(pullOver(grpc, 'NOT A REFERENCE', join(dir, 'b-bad')), status(RpcStatus.INVALID_ARGUMENT, 'INVALID_REFERENCE'));
    await assert.rejects(pullOver(ttrpc, `${registry.host}/serve/app:v0`, join(dir, 'b-ttrpc')), status(RpcStatus.ALREADY_EXISTS, 'BUNDLE_EXISTS'));
    await assert.rejects(grpc.unary('api.ImagePullService', 'PullImage', pullRequest('', '')), status(RpcStatus.INVALID_ARGUMENT, 'INVALID_ARGUMENT'));
    assert.equal(existsSync(join(dir, 'b-missing')), false);
  });

  it('GetResource and UnWrapKey answer from the key broker', async () => {
    const got = ProtoReader.decode(await ttrpc.unary('api.GetResourceService', 'GetResource', singleString('kbs:///default/secret/1'))).bytes(1);
    assert.deepEqual(Buffer.from(got), secret);
    await assert.rejects(grpc.unary('api.GetResourceService', 'GetResource', singleString('kbs:///default/secret/none')),
      (e: unknown) => e instanceof RpcError && e.status === RpcStatus.PERMISSION_DENIED && /KEY_BROKER_DENIED/.test(e.message));
    const privopts = Buffer.from('{"symkey":"x"}');
    const input = keyUnwrapInput(annotationPacket(kek, privopts, 'kbs:///default/key/1'), EMPTY_DECRYPT_CONFIG);
    for (const t of [ttrpc, grpc]) {
      const out = ProtoReader.decode(await t.unary('keyprovider.KeyProviderService', 'UnWrapKey', singleBytes(input))).bytes(1);
      assert.deepEqual(parseKeyUnwrapOutput(Buffer.from(out), 'serve'), privopts);
      assert.match(Buffer.from(out).toString(), /"optsdata":\[/, 'integer arrays, which Rust and Go clients both read');
    }
  });

  it('logs one JSON object per line, and no secret', () => {
    const lines = stderr.trim().split('\n');
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), line);
    assert.ok(!stderr.includes(kek.toString('base64')) && !stderr.includes(secret.toString()));
  });

  it('CRI: PullImage with a pod pull secret, ImageStatus, ListImages, RemoveImage, ImageFsInfo', async () => {
    const image = `${secured.host}/private/app:v1`;
    const spec = (ref: string) => new ProtoWriter().string(1, ref);
    const call = (method: string, body: ProtoWriter) => cri.unary('runtime.v1.ImageService', method, body.finish(), { timeoutMs: 60_000 });
    await assert.rejects(call('PullImage', new ProtoWriter().message(1, spec(image))),
      (e: unknown) => e instanceof RpcError && e.status === RpcStatus.UNAUTHENTICATED && e.message.startsWith('UNAUTHORIZED: '));
    const withUser = new ProtoWriter().message(1, spec(image)).message(2, new ProtoWriter().string(1, 'pod').string(2, 'pull-secret-pw'));
    const imageRef = ProtoReader.decode(await call('PullImage', withUser)).string(1);
    assert.match(imageRef, /^sha256:[0-9a-f]{64}$/);
    const withAuth = new ProtoWriter().message(1, spec(image)).message(2, new ProtoWriter().string(3, Buffer.from('pod:pull-secret-pw').toString('base64')));
    assert.equal(ProtoReader.decode(await call('PullImage', withAuth)).string(1), imageRef, 'the auth form, and the same id again');

    for (const query of [image, imageRef, `${secured.host}/private/app@${securedDigest}`]) {
      const status = ProtoReader.decode(await call('ImageStatus', new ProtoWriter().message(1, spec(query)).bool(2, true)));
      const img = status.message(1)!;
      assert.equal(img.string(1), imageRef, `ImageStatus(${query}).id is PullImage's image_ref`);
      assert.deepEqual(img.repeatedStrings(2), [image]);
      assert.deepEqual(img.repeatedStrings(3), [`${secured.host}/private/app@${securedDigest}`]);
      assert.ok(img.safeNumber(4) > 0);
      assert.equal(JSON.parse(status.map(2).get('info')!).manifestDigest, securedDigest);
    }
    const absent = ProtoReader.decode(await call('ImageStatus', new ProtoWriter().message(1, spec(`${secured.host}/private/none:v1`))));
    assert.equal(absent.has(1), false, 'an absent image is OK with no image');

    const listed = ProtoReader.decode(await call('ListImages', new ProtoWriter().message(1, new ProtoWriter().message(1, spec(image))))).messages(1);
    assert.deepEqual(listed.map((i) => i.string(1)), [imageRef]);
    const all = ProtoReader.decode(await call('ListImages', new ProtoWriter())).messages(1);
    assert.ok(all.length > 1 && all.some((i) => i.string(1) === imageRef), 'the CDH pulls are listed too');

    const fs = ProtoReader.decode(await call('ImageFsInfo', new ProtoWriter())).messages(1)[0]!;
    assert.ok(fs.has(1), 'a timestamp (nanoseconds, beyond 2^53)');
    assert.equal(fs.message(2)?.string(1), join(dir, 'work'));
    assert.ok((fs.message(3)?.safeNumber(1) ?? 0) > 0);

    await call('RemoveImage', new ProtoWriter().message(1, spec(imageRef)));
    await call('RemoveImage', new ProtoWriter().message(1, spec(imageRef)));
    assert.equal(ProtoReader.decode(await call('ImageStatus', new ProtoWriter().message(1, spec(image)))).has(1), false);
  });

  it('CRI: PullImage through a bearer-token registry with the pod\'s credentials', async () => {
    const call = (body: ProtoWriter) => cri.unary('runtime.v1.ImageService', 'PullImage', body.finish(), { timeoutMs: 60_000 });
    const spec = new ProtoWriter().string(1, `${tokenRegistry.host}/team/app:v1`);
    const before = tokenRegistry.tokenRequests();
    await assert.rejects(call(new ProtoWriter().message(1, spec)), (e: unknown) => e instanceof RpcError && e.status === RpcStatus.UNAUTHENTICATED);
    const ref = ProtoReader.decode(await call(new ProtoWriter().message(1, spec).message(2, new ProtoWriter().string(1, tokenRegistry.username!).string(2, tokenRegistry.password!)))).string(1);
    assert.match(ref, /^sha256:[0-9a-f]{64}$/);
    assert.ok(tokenRegistry.tokenRequests() > before, 'a token was issued for the pod credentials');
  });

  it('stops on SIGTERM, removing its sockets', async () => {
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    server.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(existsSync(join(dir, 'cdh.sock')), false);
    assert.equal(existsSync(join(dir, 'cdh-grpc.sock')), false);
    assert.equal(existsSync(join(dir, 'cri.sock')), false);
  });
});
