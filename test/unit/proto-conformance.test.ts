import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { cdhServices } from '../../src/adapters/inbound/rpc/cdh-services.js';
import { criServices } from '../../src/adapters/inbound/rpc/cri-services.js';
import { AttestationAgentClient } from '../../src/adapters/outbound/keys/attestation/aa-client.js';
import { RpcError, type RpcContext, type RpcServices } from '../../src/adapters/outbound/rpc/rpc.js';
import { TtrpcClient, TtrpcServer } from '../../src/adapters/outbound/rpc/ttrpc.js';
import { ImageTsError } from '../../src/domain/errors.js';
import type { Credentials } from '../../src/ports/image-source/image-source.js';
import type { ImageRecord } from '../../src/ports/store/metadata-store.js';
import { ROOT } from '../helpers/cli.js';
import { MemoryKeyBroker } from '../mocks/memory-key-broker.js';
import { MemoryMetadataStore } from '../mocks/memory-metadata-store.js';
import { silentLogger } from '../../src/adapters/outbound/silent-logger.js';

/**
 * Our messages are hand-encoded (no codegen); these tests hold them to the
 * .proto files in proto/: requests encoded by protobufjs from those files
 * must be understood, and our answers must decode into the right fields.
 */
let root: protobuf.Root;
const T = (name: string): protobuf.Type => root.lookupType(name);
const enc = (name: string, value: Record<string, unknown>): Buffer => Buffer.from(T(name).encode(T(name).fromObject(value)).finish());
const dec = (name: string, bytes: Uint8Array): Record<string, unknown> =>
  T(name).toObject(T(name).decode(bytes), { longs: String, bytes: Buffer, defaults: false, arrays: true }) as Record<string, unknown>;
const ctx = (): RpcContext => ({ signal: new AbortController().signal, metadata: new Map() });
const call = (services: RpcServices, service: string, method: string, payload: Buffer): Promise<Buffer> => services[service]![method]!(payload, ctx());

before(async () => {
  root = await protobuf.load(['cdh-api', 'keyprovider', 'attestation-agent', 'cri-image-service', 'ttrpc'].map((f) => join(ROOT, 'proto', `${f}.proto`)));
});

describe('CDH API against proto/cdh-api.proto', () => {
  it('PullImage reads image_url and bundle_path and answers manifest_digest; GetResource and UnWrapKey carry bytes', async () => {
    const seen: { image: string; bundle: string }[] = [];
    const resource = randomBytes(40);
    const services = cdhServices({
      pull: { execute: async (r) => { seen.push({ image: r.image, bundle: r.bundle }); return { manifestDigest: `sha256:${'a'.repeat(64)}` } as Awaited<ReturnType<import('../../src/domain/pull/pull-image.js').PullImage['execute']>>; } },
      broker: new MemoryKeyBroker(new Map([['default/x/y', resource]])),
      logger: silentLogger,
    });
    const out = await call(services, 'api.ImagePullService', 'PullImage', enc('api.ImagePullRequest', { imageUrl: 'example.com/a:v1', bundlePath: '/run/b' }));
    assert.deepEqual(seen, [{ image: 'example.com/a:v1', bundle: '/run/b' }]);
    assert.deepEqual(dec('api.ImagePullResponse', out), { manifestDigest: `sha256:${'a'.repeat(64)}` });
    const got = await call(services, 'api.GetResourceService', 'GetResource', enc('api.GetResourceRequest', { ResourcePath: 'kbs:///default/x/y' }));
    assert.deepEqual(dec('api.GetResourceResponse', got)['Resource'], resource);
  });
});

describe('CRI ImageService against proto/cri-image-service.proto', () => {
  const record: ImageRecord = {
    names: ['example.com/ns/app:v1', 'example.com/ns/app:latest'],
    manifestDigest: `sha256:${'b'.repeat(64)}`,
    configDigest: `sha256:${'c'.repeat(64)}`,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    platform: 'linux/amd64',
    layers: [],
    size: 1234,
    pulledAt: new Date(0).toISOString(),
    user: '1000:1000',
  };
  function services(captured: (Credentials | undefined)[] = []) {
    const metadata = new MemoryMetadataStore();
    return {
      metadata,
      services: criServices({
        pull: { pullToStore: async (r) => { captured.push(r.credentials); return { reference: 'x', manifestDigest: record.manifestDigest, configDigest: record.configDigest, layers: [] }; } },
        manage: { remove: async () => record },
        metadata,
        workDir: '/var/lib/image-ts',
        usage: async () => ({ bytes: 5000, inodes: 42 }),
        logger: silentLogger,
        now: () => 1_700_000_000_000,
      }),
    };
  }

  it('PullImage reads every AuthConfig form and answers image_ref', async () => {
    const captured: (Credentials | undefined)[] = [];
    const { services: s } = services(captured);
    const pull = (auth?: Record<string, string>) => call(s, 'runtime.v1.ImageService', 'PullImage', enc('runtime.v1.PullImageRequest', { image: { image: 'example.com/ns/app:v1' }, ...(auth ? { auth } : {}) }));
    assert.deepEqual(dec('runtime.v1.PullImageResponse', await pull()), { imageRef: record.configDigest });
    await pull({ username: 'u', password: 'p' });
    await pull({ auth: Buffer.from('u2:p2').toString('base64') });
    await pull({ username: 'u3', identityToken: 'refresh' });
    await pull({ registryToken: 'bearer' });
    assert.deepEqual(captured, [
      undefined,
      { kind: 'basic', username: 'u', password: 'p' },
      { kind: 'basic', username: 'u2', password: 'p2' },
      { kind: 'identity-token', username: 'u3', token: 'refresh' },
      { kind: 'registry-token', token: 'bearer' },
    ]);
    await assert.rejects(pull({ auth: Buffer.from('no-colon').toString('base64') }), (e: unknown) => e instanceof RpcError && e.message.startsWith('INVALID_ARGUMENT: '));
  });

  it('ImageStatus and ListImages fill Image the way kubelet reads it', async () => {
    const { services: s, metadata } = services();
    await metadata.update((st) => { st.images[record.manifestDigest] = record; });
    const status = dec('runtime.v1.ImageStatusResponse', await call(s, 'runtime.v1.ImageService', 'ImageStatus', enc('runtime.v1.ImageStatusRequest', { image: { image: 'example.com/ns/app:latest' }, verbose: true })));
    const image = status['image'] as Record<string, unknown>;
    assert.deepEqual({ ...image, spec: undefined }, {
      id: record.configDigest,
      repoTags: ['example.com/ns/app:v1', 'example.com/ns/app:latest'],
      repoDigests: [`example.com/ns/app@${record.manifestDigest}`],
      size: '1234',
      uid: { value: '1000' },
      spec: undefined,
    });
    assert.equal(JSON.parse((status['info'] as Record<string, string>)['info']!).manifestDigest, record.manifestDigest);
    const absent = dec('runtime.v1.ImageStatusResponse', await call(s, 'runtime.v1.ImageService', 'ImageStatus', enc('runtime.v1.ImageStatusRequest', { image: { image: 'example.com/none:v1' } })));
    assert.deepEqual(absent, {});
    const listed = dec('runtime.v1.ListImagesResponse', await call(s, 'runtime.v1.ImageService', 'ListImages', enc('runtime.v1.ListImagesRequest', { filter: { image: { image: record.configDigest } } })));
    assert.deepEqual((listed['images'] as { id: string }[]).map((i) => i.id), [record.configDigest]);
  });

  it('ImageFsInfo reports nanoseconds, the mountpoint, bytes and inodes', async () => {
    const { services: s } = services();
    const fs = dec('runtime.v1.ImageFsInfoResponse', await call(s, 'runtime.v1.ImageService', 'ImageFsInfo', enc('runtime.v1.ImageFsInfoRequest', {})));
    assert.deepEqual(fs['imageFilesystems'], [{ timestamp: '1700000000000000000', fsId: { mountpoint: '/var/lib/image-ts' }, usedBytes: { value: '5000' }, inodesUsed: { value: '42' } }]);
  });
});

describe('ttrpc framing and the AA client against proto/ttrpc.proto and proto/attestation-agent.proto', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'image-ts-proto-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a protobufjs-encoded ttrpc.Request frame with a ttrpc.Response', async () => {
    const server = new TtrpcServer().registerServices({
      'attestation_agent.AttestationAgentService': {
        ExtendRuntimeMeasurement: async (payload) => {
          const m = dec('attestation_agent.ExtendRuntimeMeasurementRequest', payload);
          if (m['Domain'] !== 'github.com/confidential-containers') throw new RpcError(3, 'wrong domain');
          return enc('attestation_agent.ExtendRuntimeMeasurementResponse', { Result: 0 });
        },
      },
    });
    const path = join(dir, 'aa.sock');
    await server.listen(`unix://${path}`);
    try {
      // Our AA client, decoded by protobufjs on the server side.
      const client = new AttestationAgentClient(new TtrpcClient(`unix://${path}`));
      await client.extendRuntimeMeasurement({ domain: 'github.com/confidential-containers', operation: 'PullImage', content: '{"image":"x"}' });
      await assert.rejects(client.extendRuntimeMeasurement({ domain: 'elsewhere', operation: 'PullImage', content: '{}' }), (e: unknown) => e instanceof ImageTsError);

      // A raw frame built from ttrpc.proto, answered by our server.
      const request = enc('ttrpc.Request', { service: 'attestation_agent.AttestationAgentService', method: 'ExtendRuntimeMeasurement',
        payload: enc('attestation_agent.ExtendRuntimeMeasurementRequest', { Domain: 'elsewhere' }), timeoutNano: 1_000_000_000 });
      const header = Buffer.alloc(10);
      header.writeUInt32BE(request.length, 0);
      header.writeUInt32BE(1, 4);
      header.writeUInt8(1, 8);
      const answer = await new Promise<Buffer>((resolve, reject) => {
        const s = createConnection(path, () => s.write(Buffer.concat([header, request])));
        let buf = Buffer.alloc(0);
        s.on('data', (d: Buffer) => {
          buf = Buffer.concat([buf, d]);
          if (buf.length >= 10 && buf.length >= 10 + buf.readUInt32BE(0)) {
            s.destroy();
            resolve(buf);
          }
        });
        s.on('error', reject);
      });
      assert.deepEqual([answer.readUInt32BE(4), answer.readUInt8(8)], [1, 2], 'same stream id, type response');
      const response = dec('ttrpc.Response', answer.subarray(10, 10 + answer.readUInt32BE(0)));
      assert.deepEqual(response['status'], { code: 3, message: 'wrong domain', details: [] });
    } finally {
      await server.close();
    }
  });
});
