import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { AnnotationPacket } from '../../src/domain/encryption/annotation-packet.js';
import { CocoKeyProvider } from '../../src/domain/encryption/coco-key-provider.js';
import { EMPTY_DECRYPT_CONFIG, classifyKeyMaterial, decryptParameters, parseDecryptionKey, type DecryptConfig } from '../../src/domain/encryption/decrypt-config.js';
import { keyUnwrapInput, keyUnwrapOutput, parseKeyProviderInput, parseKeyUnwrapOutput } from '../../src/domain/encryption/key-provider-protocol.js';
import { LayerDecipher } from '../../src/domain/encryption/layer-decipher.js';
import { LayerEncryption } from '../../src/domain/encryption/layer-encryption.js';
import { LayerKeys } from '../../src/domain/encryption/layer-keys.js';
import { PrivateLayerOptions, PublicLayerOptions } from '../../src/domain/encryption/layer-options.js';
import { ResourceUri } from '../../src/domain/encryption/resource-uri.js';
import { ImageTsError, KeyBrokerUnavailableError } from '../../src/domain/errors.js';
import { Digest } from '../../src/domain/image/digest.js';
import type { Descriptor } from '../../src/domain/image/descriptor.js';
import type { KeyProvider } from '../../src/ports/keys/key-provider.js';
import type { KeyUnwrapper } from '../../src/ports/keys/key-unwrapper.js';
import { annotationPacket, encryptBlob, PROVIDER_AA, PUBOPTS } from '../helpers/encryption.js';
import { MemoryKeyBroker } from '../mocks/memory-key-broker.js';
import { counterIds } from '../helpers/ids.js';

const code = (c: string) => (e: unknown): boolean => e instanceof ImageTsError && e.code === c;
const hex = (s: string): Buffer => Buffer.from(s, 'hex');

async function decrypt(cipher: Buffer, priv: PrivateLayerOptions, pub: PublicLayerOptions, chunk = 7): Promise<{ plain: Buffer; d: LayerDecipher }> {
  const d = new LayerDecipher(priv, pub);
  const out: Buffer[] = [];
  const chunks = [];
  for (let i = 0; i < cipher.length; i += chunk) chunks.push(cipher.subarray(i, i + chunk));
  await pipeline(Readable.from(chunks), d, async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) out.push(c);
  });
  return { plain: Buffer.concat(out), d };
}

const privoptsJson = (key: Buffer, nonce: Buffer, digest?: string): Buffer =>
  Buffer.from(JSON.stringify({ symkey: key.toString('base64'), ...(digest ? { digest } : {}), cipheroptions: { nonce: nonce.toString('base64') } }));
const puboptsJson = (hmac: Buffer, cipher = 'AES_256_CTR_HMAC_SHA256'): Buffer =>
  Buffer.from(JSON.stringify({ cipher, hmac: hmac.toString('base64'), cipheroptions: {} }));

describe('layer cipher known answers (spec 7.1)', () => {
  const key = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
  it('AES-256-CTR + HMAC-SHA256 of a 55-byte plaintext, in odd chunks', async () => {
    const cipher = hex('c668a8ad52e3e9a8314984262f450d34ac3003609b5f59b11d873a572f05a6faf109013775628cb81cea473eb564c3bd7a5cf61be1c8de');
    const priv = PrivateLayerOptions.parse(privoptsJson(key, hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff'), 'sha256:d855d0c9a3d559a7e9d91c56c02c4e28d18cde27b747648e3d6ddbeabbddfbc3'));
    const pub = PublicLayerOptions.parse(puboptsJson(Buffer.from('L/aPTaecmiUqhuQ1G7gNVzvKk+HIoCGecnZSrR6pEng=', 'base64')));
    const { plain, d } = await decrypt(cipher, priv, pub);
    assert.equal(plain.toString(), 'The quick brown fox jumps over the lazy dog. 0123456789');
    d.verify('kat');
    assert.equal(priv.digest?.toString(), Digest.of(plain, 'sha256').toString());
  });
  it('carries the 128-bit counter across the all-ones block', async () => {
    const priv = PrivateLayerOptions.parse(privoptsJson(key, Buffer.alloc(16, 0xff)));
    const pub = PublicLayerOptions.parse(puboptsJson(Buffer.alloc(32)));
    const { plain } = await decrypt(Buffer.alloc(48), priv, pub, 5);
    assert.equal(plain.toString('hex'), 'e999e41d4ca770da5387117b5d8f57eef29000b62a499fd0a9f39a6add2e7780f05d76ae4ab99fe5a6f69b3148c2363d');
  });
  it('fails verify on a wrong HMAC and on a stream that never ended', async () => {
    const priv = PrivateLayerOptions.parse(privoptsJson(key, Buffer.alloc(16)));
    const pub = PublicLayerOptions.parse(puboptsJson(Buffer.alloc(32, 1)));
    const { d } = await decrypt(Buffer.alloc(40), priv, pub);
    assert.throws(() => d.verify('x'), code('DECRYPT_FAILED'));
    assert.throws(() => new LayerDecipher(priv, pub).verify('x'), code('DECRYPT_FAILED'));
  });
});

describe('layer options', () => {
  it('refuses another cipher, a short key, a short nonce, a missing hmac', () => {
    assert.throws(() => PublicLayerOptions.parse(puboptsJson(Buffer.alloc(32), 'AES_128_GCM')), code('DECRYPT_FAILED'));
    assert.throws(() => PublicLayerOptions.parse(Buffer.from('{"cipher":"AES_256_CTR_HMAC_SHA256"}')), code('DECRYPT_FAILED'));
    assert.throws(() => PublicLayerOptions.parse(Buffer.from('nope')), code('DECRYPT_FAILED'));
    assert.throws(() => PrivateLayerOptions.parse(privoptsJson(Buffer.alloc(16), Buffer.alloc(16))), code('DECRYPT_FAILED'));
    assert.throws(() => PrivateLayerOptions.parse(privoptsJson(Buffer.alloc(32), Buffer.alloc(12))), code('DECRYPT_FAILED'));
  });
  it('reads fields in any order (Go and Rust differ)', () => {
    const k = randomBytes(32);
    const n = randomBytes(16);
    const rust = Buffer.from(`{"symkey":"${k.toString('base64')}","cipheroptions":{"nonce":"${n.toString('base64')}"},"digest":"sha256:${'a'.repeat(64)}"}`);
    const p = PrivateLayerOptions.parse(rust);
    assert.deepEqual([p.symkey, p.nonce, p.digest?.toString()], [k, n, `sha256:${'a'.repeat(64)}`]);
  });
});

function encryptedDesc(mediaType: string, annotations: Record<string, string>): Descriptor {
  return { mediaType, digest: Digest.parse(`sha256:${'b'.repeat(64)}`), size: 10, annotations } as Descriptor;
}

describe('LayerEncryption', () => {
  const pub = puboptsJson(Buffer.alloc(32)).toString('base64');
  it('maps every encrypted tar type to its plaintext type', () => {
    for (const t of [
      'application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd',
      'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
      'application/vnd.docker.image.rootfs.diff.tar.gzip',
    ]) {
      const e = LayerEncryption.of(encryptedDesc(`${t}+encrypted`, { [PUBOPTS]: pub, 'org.opencontainers.image.enc.keys.jwe': 'e30=' }));
      assert.equal(e.plainMediaType, t);
    }
    assert.throws(() => LayerEncryption.of(encryptedDesc('application/vnd.wasm.content.layer.v1+wasm+encrypted', { [PUBOPTS]: pub, 'org.opencontainers.image.enc.keys.jwe': 'e30=' })), code('UNSUPPORTED'));
  });
  it('splits comma lists per scheme and demands pubopts', () => {
    const e = LayerEncryption.of(encryptedDesc('application/vnd.oci.image.layer.v1.tar+gzip+encrypted', {
      [PUBOPTS]: pub, 'org.opencontainers.image.enc.keys.jwe': 'YQ==,Yg==', [PROVIDER_AA]: 'Yw==',
    }));
    assert.deepEqual(e.wrapped.map((w) => [w.scheme, w.items.map(String)]), [['jwe', ['a', 'b']], ['provider.attestation-agent', ['c']]]);
    assert.throws(() => LayerEncryption.of(encryptedDesc('application/vnd.oci.image.layer.v1.tar+encrypted', { 'org.opencontainers.image.enc.keys.jwe': 'YQ==' })), code('DECRYPT_FAILED'));
    assert.throws(() => LayerEncryption.of(encryptedDesc('application/vnd.oci.image.layer.v1.tar+encrypted', { [PUBOPTS]: pub })), code('DECRYPT_FAILED'));
    assert.throws(() => LayerEncryption.of(encryptedDesc('application/vnd.oci.image.layer.v1.tar+encrypted', { [PUBOPTS]: pub, 'org.opencontainers.image.enc.keys.jwe': '!!' })), code('DECRYPT_FAILED'));
  });
});

describe('decryption key arguments', () => {
  it('parses the skopeo/ocicrypt forms', () => {
    assert.deepEqual(parseDecryptionKey('/k/priv.pem'), { kind: 'file', path: '/k/priv.pem' });
    assert.deepEqual(parseDecryptionKey('/k/priv.pem:pass=se:cret'), { kind: 'file', path: '/k/priv.pem', password: { kind: 'literal', value: 'se:cret' } });
    assert.deepEqual(parseDecryptionKey('/k/priv.pem:file=/k/pw'), { kind: 'file', path: '/k/priv.pem', password: { kind: 'file', value: '/k/pw' } });
    assert.deepEqual(parseDecryptionKey('provider:attestation-agent'), { kind: 'provider', name: 'attestation-agent', params: 'Enabled' });
    assert.deepEqual(parseDecryptionKey('provider:attestation-agent:offline_fs_kbc::null'), { kind: 'provider', name: 'attestation-agent', params: 'offline_fs_kbc::null' });
    assert.throws(() => parseDecryptionKey(''), code('INVALID_ARGUMENT'));
    assert.throws(() => parseDecryptionKey('provider:'), code('INVALID_ARGUMENT'));
  });
  it('sorts key files by their bytes', () => {
    assert.equal(classifyKeyMaterial(Buffer.from('-----BEGIN CERTIFICATE-----\n')), 'certificate');
    assert.equal(classifyKeyMaterial(Buffer.from('-----BEGIN PGP PRIVATE KEY BLOCK-----\n')), 'gpg-private-key');
    assert.equal(classifyKeyMaterial(Buffer.from([0x95, 0x03, 0x98])), 'gpg-private-key');
    assert.equal(classifyKeyMaterial(Buffer.from('-----BEGIN PRIVATE KEY-----\n')), 'private-key');
  });
});

describe('key-provider protocol', () => {
  it('sends both parameter objects and the item in base64', () => {
    const dc: DecryptConfig = { ...EMPTY_DECRYPT_CONFIG, providers: { 'attestation-agent': [Buffer.from('offline_fs_kbc::null')] } };
    const input = JSON.parse(keyUnwrapInput(Buffer.from('item'), dc).toString()) as Record<string, unknown>;
    assert.deepEqual(input, {
      op: 'keyunwrap',
      keywrapparams: { ec: null, optsdata: null },
      keyunwrapparams: { dc: { Parameters: { 'attestation-agent': ['b2ZmbGluZV9mc19rYmM6Om51bGw='] } }, annotation: 'aXRlbQ==' },
    });
    const back = parseKeyProviderInput(keyUnwrapInput(Buffer.from('item'), dc));
    assert.equal(back?.annotation?.toString(), 'item');
    assert.equal(back?.parameters['attestation-agent']?.[0]?.toString(), 'offline_fs_kbc::null');
  });
  it('accepts optsdata as a base64 string and as an integer array', () => {
    assert.equal(parseKeyUnwrapOutput(Buffer.from('{"keyunwrapresults":{"optsdata":"eyJhIjoxfQ=="}}'), 'p').toString(), '{"a":1}');
    assert.equal(parseKeyUnwrapOutput(keyUnwrapOutput(Buffer.from('{"a":1}')), 'p').toString(), '{"a":1}');
    assert.throws(() => parseKeyUnwrapOutput(Buffer.from('{"keyunwrapresults":{}}'), 'p'), code('KEY_BROKER_UNAVAILABLE'));
    assert.throws(() => parseKeyUnwrapOutput(Buffer.from('<html>'), 'p'), code('KEY_BROKER_UNAVAILABLE'));
  });
  it('sends passwords alongside private keys, empty when none', () => {
    const p = decryptParameters({ ...EMPTY_DECRYPT_CONFIG, privateKeys: [{ bytes: Buffer.from('k') }, { bytes: Buffer.from('l'), password: Buffer.from('pw') }] });
    assert.deepEqual(p['privkeys-passwords'], ['', 'cHc=']);
  });
});

describe('ResourceUri', () => {
  it('parses kbs:// and kbs+plugin:// and drops the host from its canonical form', () => {
    const u = ResourceUri.parse('kbs://kbs.example:8080/default/key/1');
    assert.deepEqual([u.plugin, u.address, u.path, u.toString()], ['resource', 'kbs.example:8080', 'default/key/1', 'kbs:///default/key/1']);
    assert.equal(ResourceUri.parse('kbs+resource:///a/b/c').toString(), 'kbs:///a/b/c');
    const p = ResourceUri.parse('kbs+plugin:///x/y?z=1');
    assert.deepEqual([p.plugin, p.path, p.query], ['plugin', 'x/y', 'z=1']);
  });
  it('refuses other schemes, wrong segment counts and dot segments', () => {
    for (const bad of ['file:///a/b/c', 'kbs:///a/b', 'kbs:///a/b/c/d', 'kbs:///a//c', 'nonsense', 'kbs:///a/%2e%2e/c']) {
      assert.throws(() => ResourceUri.parse(bad), code('INVALID_ARGUMENT'), bad);
    }
  });
});

describe('AnnotationPacket', () => {
  it('opens the ocicrypt-rs sample packet with the sample KEK (spec 7.1)', () => {
    const packet = Buffer.from(JSON.stringify({
      kid: 'kbs:///default/key/1',
      wrapped_data: 'KxAFgXwa0y72Xdygub9lF00RVMtSRbYzvakIEASgi3Gvt1wGLkhKPXf0S033Jdi6vAN6zBM7d0xZSDo2JCeew0FeKwTYgdJfdcPhuEpZOpjhwIsidyeiunzp0J/crvI1tSPZJw4DPHZN2eQtg71rDzIbuDM5ATheiDM9/YJv+k+n6Nv6/pRb8qynNzbWFz7Q8wEo1ZZlL6UftOBJ6j9GuEOTM2k/B+5sMA2VhGHSzDsKA1mn0qzcn2HJg4GcmxwDpJwzm5n7B4iIJ3A0umrQAjQ=',
      iv: '3PQMqtjbR4hxCr83',
      wrap_type: 'aes_256_gcm',
    }));
    const plain = AnnotationPacket.parse(packet).unwrap(hex('d99b7705b0ba7a168295b3a3367270b0dd9b371bf514ca8b9ba7f0a33711daea'));
    assert.equal(plain.toString(), '{"symkey":"1jL2jJV0Oyz2nmPkLtqulW6cKcpIUN5FpILcVnP5Uqs=","digest":"sha256:18be1897f9402f27c8c0eba7c86e0c00f5656db62961b5949d55f9565c42c6e7","cipheroptions":{"nonce":"r10F9oaCu+nWFXfod3l83g=="}}');
    assert.throws(() => AnnotationPacket.parse(packet).unwrap(randomBytes(32)), code('DECRYPT_FAILED'));
  });
  it('opens A256CTR packets and refuses unknown wrap types, versions and providers', () => {
    const kek = randomBytes(32);
    assert.equal(AnnotationPacket.parse(annotationPacket(kek, Buffer.from('opts'), 'kbs:///a/b/c', 'A256CTR')).unwrap(kek).toString(), 'opts');
    const base = { kid: 'kbs:///a/b/c', wrapped_data: 'AAAA', iv: 'AAAA' };
    assert.throws(() => AnnotationPacket.parse(Buffer.from(JSON.stringify({ ...base, wrap_type: 'RSA' }))), code('DECRYPT_FAILED'));
    assert.throws(() => AnnotationPacket.parse(Buffer.from(JSON.stringify({ ...base, version: '0.2.0' }))), code('UNSUPPORTED'));
    assert.throws(() => AnnotationPacket.parse(Buffer.from(JSON.stringify({ ...base, provider: 'aliyun' }))), code('UNSUPPORTED'));
    assert.throws(() => AnnotationPacket.parse(Buffer.from('[]')), code('DECRYPT_FAILED'));
  });
});

describe('LayerKeys', () => {
  const plain = Buffer.from('layer bytes');
  const enc = encryptBlob(plain, Digest.of(plain, 'sha256').toString());
  const kek = randomBytes(32);
  const item = annotationPacket(kek, enc.privopts, 'kbs:///default/key/1');
  const desc = (annotations: Record<string, string>) => encryptedDesc('application/vnd.oci.image.layer.v1.tar+gzip+encrypted', { [PUBOPTS]: enc.pubopts, ...annotations });
  const jweOnly = { 'org.opencontainers.image.enc.keys.jwe': Buffer.from('wrapped-for-someone-else').toString('base64') };
  const fakeJwe: KeyUnwrapper = {
    scheme: 'jwe',
    hasKeys: (dc) => dc.privateKeys.length > 0,
    unwrap: async (i, dc) => (dc.privateKeys.some((k) => k.bytes.equals(i)) ? enc.privopts : undefined),
  };

  it('unwraps through the in-process provider and its key broker', async () => {
    const broker = new MemoryKeyBroker(new Map([['default/key/1', kek]]));
    const keys = new LayerKeys([fakeJwe], new Map([['attestation-agent', new CocoKeyProvider(broker)]]));
    const opts = await keys.unwrap('layer', LayerEncryption.of(desc({ ...jweOnly, [PROVIDER_AA]: item.toString('base64') })), EMPTY_DECRYPT_CONFIG);
    assert.deepEqual(opts.symkey, PrivateLayerOptions.parse(enc.privopts).symkey);
    assert.deepEqual(broker.requests, ['kbs:///default/key/1']);
  });
  it('tries local keys first, without calling a provider', async () => {
    const broker = new MemoryKeyBroker(new Map([['default/key/1', kek]]));
    const keys = new LayerKeys([fakeJwe], new Map([['attestation-agent', new CocoKeyProvider(broker)]]));
    const mine = Buffer.from('mine');
    await keys.unwrap('layer', LayerEncryption.of(desc({ 'org.opencontainers.image.enc.keys.jwe': `${jweOnly['org.opencontainers.image.enc.keys.jwe']},${mine.toString('base64')}`, [PROVIDER_AA]: item.toString('base64') })),
      { ...EMPTY_DECRYPT_CONFIG, privateKeys: [{ bytes: mine }] });
    assert.deepEqual(broker.requests, []);
  });
  it('MISSING_KEY names the schemes found and the keys given, never key bytes', async () => {
    const keys = new LayerKeys([fakeJwe], new Map());
    await assert.rejects(keys.unwrap('layer sha256:x', LayerEncryption.of(desc({ ...jweOnly, [PROVIDER_AA]: item.toString('base64') })), { ...EMPTY_DECRYPT_CONFIG, privateKeys: [{ bytes: Buffer.from('secret-key-bytes') }] }),
      (e: unknown) => {
        assert.ok(code('MISSING_KEY')(e));
        assert.match((e as Error).message, /jwe, provider\.attestation-agent/);
        assert.match((e as Error).message, /1 private key/);
        assert.doesNotMatch((e as Error).message, /secret-key-bytes/);
        return true;
      });
  });
  it('a broker that refuses or is down says so instead of MISSING_KEY', async () => {
    const broker = new MemoryKeyBroker();
    const keys = new LayerKeys([], new Map([['attestation-agent', new CocoKeyProvider(broker)]]));
    const enc1 = LayerEncryption.of(desc({ [PROVIDER_AA]: item.toString('base64') }));
    await assert.rejects(keys.unwrap('layer', enc1, EMPTY_DECRYPT_CONFIG), code('KEY_BROKER_DENIED'));
    broker.down = true;
    await assert.rejects(keys.unwrap('layer', enc1, EMPTY_DECRYPT_CONFIG), code('KEY_BROKER_UNAVAILABLE'));
  });
  it('a provider that answers garbage privopts gives DECRYPT_FAILED', async () => {
    const bad: KeyProvider = { name: 'attestation-agent', unwrapKey: async () => keyUnwrapOutput(Buffer.from('{"symkey":"AAAA"}')) };
    const keys = new LayerKeys([], new Map([['attestation-agent', bad]]));
    await assert.rejects(keys.unwrap('layer', LayerEncryption.of(desc({ [PROVIDER_AA]: item.toString('base64') })), EMPTY_DECRYPT_CONFIG), code('DECRYPT_FAILED'));
  });
  it('a provider that cannot be reached is logged and another recipient still works', async () => {
    const down: KeyProvider = { name: 'other', unwrapKey: async () => { throw new KeyBrokerUnavailableError('socket gone'); } };
    const broker = new MemoryKeyBroker(new Map([['default/key/1', kek]]));
    const keys = new LayerKeys([], new Map<string, KeyProvider>([['other', down], ['attestation-agent', new CocoKeyProvider(broker)]]));
    const opts = await keys.unwrap('layer', LayerEncryption.of(desc({ 'org.opencontainers.image.enc.keys.provider.other': 'eA==', [PROVIDER_AA]: item.toString('base64') })), EMPTY_DECRYPT_CONFIG);
    assert.equal(opts.symkey.length, 32);
  });
});

describe('PullImage with encrypted layers', async () => {
  const { PullImage } = await import('../../src/domain/pull/pull-image.js');
  const { Platform } = await import('../../src/domain/image/platform.js');
  const { silentLogger } = await import('../../src/adapters/outbound/silent-logger.js');
  const { buildImage } = await import('../helpers/image-builder.js');
  const { tar } = await import('../helpers/tar-writer.js');
  const { MemoryDecompressor } = await import('../mocks/memory-decompressor.js');
  const { MemoryImageSourceFactory } = await import('../mocks/memory-image-source.js');
  const { MemoryLayerStore } = await import('../mocks/memory-layer-store.js');
  const { MemoryMetadataStore } = await import('../mocks/memory-metadata-store.js');
  const { MemoryBundleDirectory, MemorySnapshotter } = await import('../mocks/memory-snapshot.js');

  const kek = randomBytes(32);
  const viaBroker = (privopts: Buffer) => ({ [PROVIDER_AA]: annotationPacket(kek, privopts, 'kbs:///default/key/1').toString('base64') });
  const plainTar = tar([{ type: 'file', name: 'secret.txt', content: 'plaintext inside' }]);
  const clearTar = tar([{ type: 'file', name: 'base.txt', content: 'base' }]);

  function setup() {
    const source = new MemoryImageSourceFactory();
    const layers = new MemoryLayerStore();
    const metadata = new MemoryMetadataStore();
    const broker = new MemoryKeyBroker(new Map([['default/key/1', kek]]));
    const keys = new LayerKeys([], new Map([['attestation-agent', new CocoKeyProvider(broker)]]));
    const deps = { sources: [source], decompressor: new MemoryDecompressor(), layers, snapshotters: [new MemorySnapshotter()], bundles: new MemoryBundleDirectory(), metadata, logger: silentLogger, clock: () => new Date(0), ids: counterIds(), keys };
    const pull = new PullImage(deps, { hostPlatform: Platform.parse('linux/amd64'), maxConcurrentLayers: 2 });
    const publish = (img: ReturnType<typeof buildImage>) =>
      source.put('example.com/enc', 'v1', { bytes: img.manifest, digest: img.manifestDigest, mediaType: img.manifestMediaType }, img.blobs);
    const fetched = () => [...source.blobFetches.values()].reduce((a, b) => a + b, 0);
    return { source, layers, metadata, broker, pull, publish, fetched };
  }

  it('decrypts gzip, zstd and uncompressed layers into the plaintext diff_ids, and records the schemes', async () => {
    const t = setup();
    const img = buildImage({ layers: [{ tar: clearTar }, { tar: plainTar, encrypt: { wrap: viaBroker } }, { tar: tar([{ type: 'file', name: 'z', content: 'zstd' }]), compression: 'zstd', encrypt: { wrap: viaBroker } }, { tar: tar([{ type: 'file', name: 'n', content: 'none' }]), compression: 'none', encrypt: { wrap: viaBroker } }] });
    t.publish(img);
    const r = await t.pull.execute({ image: 'example.com/enc:v1', bundle: '/b' });
    assert.deepEqual(r.layers.map((l) => l.diffId), img.layers.map((l) => l.diffId));
    for (const l of img.layers) assert.ok(await t.layers.get(Digest.parse(l.diffId)));
    const rec = (await t.metadata.read()).images[img.manifestDigest];
    assert.deepEqual(rec?.layers.map((l) => l.encryption), [undefined, ['provider.attestation-agent'], ['provider.attestation-agent'], ['provider.attestation-agent']]);
  });

  it('asks for the key again on a store hit, and fails without it', async () => {
    const t = setup();
    const img = buildImage({ layers: [{ tar: plainTar, encrypt: { wrap: viaBroker } }] });
    t.publish(img);
    await t.pull.execute({ image: 'example.com/enc:v1', bundle: '/b1' });
    assert.equal(t.broker.requests.length, 1);
    await t.pull.execute({ image: 'example.com/enc:v1', bundle: '/b2' });
    assert.equal(t.broker.requests.length, 2);
    t.broker.down = true;
    await assert.rejects(t.pull.execute({ image: 'example.com/enc:v1', bundle: '/b3' }), code('KEY_BROKER_UNAVAILABLE'));
  });

  it('a missing key fetches no layer and commits nothing', async () => {
    const t = setup();
    const img = buildImage({ layers: [{ tar: clearTar }, { tar: plainTar, encrypt: { wrap: () => ({ 'org.opencontainers.image.enc.keys.jwe': 'e30=' }) } }] });
    t.publish(img);
    await assert.rejects(t.pull.execute({ image: 'example.com/enc:v1', bundle: '/b' }), code('MISSING_KEY'));
    assert.equal(t.fetched(), 1, 'the config blob only');
    assert.deepEqual(await t.layers.list(), []);
  });

  it('a tampered HMAC or ciphertext gives DECRYPT_FAILED with nothing committed', async () => {
    for (const tamper of [{ tamperHmac: true }, { tamperCiphertext: true }]) {
      const t = setup();
      const img = buildImage({ layers: [{ tar: clearTar }, { tar: plainTar, encrypt: { wrap: viaBroker, ...tamper } }] });
      t.publish(img);
      await assert.rejects(t.pull.execute({ image: 'example.com/enc:v1', bundle: '/b' }), code('DECRYPT_FAILED'), JSON.stringify(tamper));
      assert.equal(await t.layers.get(Digest.parse(img.layers[1]!.diffId)), undefined);
      assert.deepEqual((await t.metadata.read()).images, {});
    }
  });
});

describe('LayerKeys with a malformed recipient', () => {
  it('skips a recipient its unwrapper cannot read and tries the next', async () => {
    const plain = Buffer.from('x');
    const enc = encryptBlob(plain, Digest.of(plain, 'sha256').toString());
    const picky: KeyUnwrapper = {
      scheme: 'jwe',
      hasKeys: () => true,
      unwrap: async (i) => {
        if (i.toString() === 'garbage') throw new ImageTsError('DECRYPT_FAILED', 'not a JWE');
        return enc.privopts;
      },
    };
    const keys = new LayerKeys([picky], new Map());
    const d = encryptedDesc('application/vnd.oci.image.layer.v1.tar+gzip+encrypted', {
      [PUBOPTS]: enc.pubopts, 'org.opencontainers.image.enc.keys.jwe': `${Buffer.from('garbage').toString('base64')},${Buffer.from('fine').toString('base64')}`,
    });
    assert.equal((await keys.unwrap('layer', LayerEncryption.of(d), EMPTY_DECRYPT_CONFIG)).symkey.length, 32);
  });
});
