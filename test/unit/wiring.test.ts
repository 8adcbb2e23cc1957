import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildContainer } from '../../src/adapters/wiring/container.js';
import type { Settings } from '../../src/adapters/wiring/settings-file.js';
import { Tokens } from '../../src/adapters/wiring/tokens.js';
import { parseLimit } from '../../src/adapters/wiring/limits.js';
import type { UnpackLimits } from '../../src/domain/layer/unpack-limits.js';
import { ImageTsError } from '../../src/domain/errors.js';
import { PullImage } from '../../src/domain/pull/pull-image.js';
import { ManageImages } from '../../src/domain/store/manage-images.js';
import { buildImage } from '../helpers/image-builder.js';
import { tar } from '../helpers/tar-writer.js';
import { MemoryImageSourceFactory } from '../mocks/memory-image-source.js';
import { CdhKeyBroker } from '../../src/adapters/outbound/keys/brokers/cdh-key-broker.js';
import { KbsKeyBroker } from '../../src/adapters/outbound/keys/brokers/kbs-key-broker.js';
import { OfflineFsKeyBroker } from '../../src/adapters/outbound/keys/brokers/offline-fs-key-broker.js';
import { NoKeyBroker } from '../../src/adapters/wiring/keys.js';
import { CocoKeyProvider } from '../../src/domain/encryption/coco-key-provider.js';
import type { KeyBroker } from '../../src/ports/keys/key-broker.js';
import { ImageSourceFactoryToken, KeyBrokerToken, KeyProvidersToken } from '../../src/adapters/wiring/port-tokens.js';
import { silentLogger } from '../../src/adapters/outbound/silent-logger.js';

const settings = (workDir: string, profile = 'standalone'): Settings => ({
  profile, workDir, maxConcurrentLayers: 3, snapshotter: 'copy', platform: 'linux/amd64',
  insecureRegistries: [], plainHttpRegistries: [], caFiles: [], caPems: [], certsDirs: [], authFiles: [], decompressor: 'auto',
  keyproviderConfig: undefined, decryptionKeys: [], keyBroker: undefined, attestationAgent: undefined,
  policy: undefined, registriesD: undefined, admission: { unencryptedSigned: true, unencryptedUnsigned: true },
  maxConcurrentDownloads: undefined, limits: {}, serve: undefined, registriesConf: undefined, proxy: undefined, timeouts: {},
});

describe('deployment profiles bind the key broker, nothing else differs', () => {
  const brokerOf = async (profile: string, extra: Partial<Settings> = {}) => {
    const c = await buildContainer({ settings: { ...settings('/nonexistent', profile), ...extra }, logger: silentLogger });
    assert.ok(c.get(Tokens.PullImage) instanceof PullImage);
    return c.get<KeyBroker>(KeyBrokerToken);
  };
  it('standalone has none until the config names one; cdh-guest uses CDH; offline uses files; kbs-direct needs a URL', async () => {
    assert.ok(await brokerOf('standalone') instanceof NoKeyBroker);
    assert.ok(await brokerOf('cdh-guest') instanceof CdhKeyBroker);
    assert.ok(await brokerOf('offline') instanceof OfflineFsKeyBroker);
    assert.ok(await brokerOf('kbs-direct', { keyBroker: { kind: 'kbs', url: 'http://127.0.0.1:1', attester: 'sample' } }) instanceof KbsKeyBroker);
    assert.ok(await brokerOf('standalone', { keyBroker: { kind: 'offline-fs', files: ['/x.json'] } }) instanceof OfflineFsKeyBroker);
    await assert.rejects(brokerOf('kbs-direct'), (e: unknown) => e instanceof ImageTsError && e.code === 'CONFIG_FILE_INVALID');
    await assert.rejects(brokerOf('kbs-direct', { keyBroker: { kind: 'kbs', url: 'http://127.0.0.1:1', attester: 'aa' } }),
      (e: unknown) => e instanceof ImageTsError && e.code === 'CONFIG_FILE_INVALID' && /attestation_agent/.test(e.message));
  });
  it('registers the in-process attestation-agent key provider over the bound broker', async () => {
    const c = await buildContainer({ settings: settings('/nonexistent', 'offline'), logger: silentLogger });
    assert.ok(c.get<ReadonlyMap<string, unknown>>(KeyProvidersToken).get('attestation-agent') instanceof CocoKeyProvider);
  });
});

describe('unpack limits per profile', () => {
  const limitsOf = async (profile: string, limits: Settings['limits'] = {}) => {
    const c = await buildContainer({ settings: { ...settings('/nonexistent', profile), limits }, logger: silentLogger });
    return c.get<UnpackLimits>(Tokens.Limits);
  };
  it('a host bounds entries and path length only; a guest also bounds bytes to half its memory', async () => {
    assert.deepEqual(await limitsOf('standalone'), { maxEntriesPerLayer: 10_000_000, maxPathBytes: 4096 });
    const half = Math.floor(totalmem() / 2);
    for (const profile of ['cdh-guest', 'offline']) {
      assert.deepEqual(await limitsOf(profile), { maxUnpackedBytesPerLayer: half, maxUnpackedBytesPerImage: half, maxEntriesPerLayer: 1_000_000, maxPathBytes: 4096 }, profile);
    }
  });
  it('the settings win over the profile, and 0 turns a limit off', async () => {
    assert.deepEqual(await limitsOf('cdh-guest', { maxUnpackedBytesPerImage: 1024, maxUnpackedBytesPerLayer: 0, maxPathBytes: 0 }), {
      maxUnpackedBytesPerImage: 1024, maxEntriesPerLayer: 1_000_000,
    });
  });
  it('parses sizes in binary units, and refuses what is not a whole number', () => {
    assert.equal(parseLimit('maxUnpackedBytesPerLayer', '512M'), 512 * 2 ** 20);
    assert.equal(parseLimit('maxUnpackedBytesPerImage', '10GiB'), 10 * 2 ** 30);
    assert.equal(parseLimit('maxEntriesPerLayer', 7), 7);
    for (const [key, bad] of [['maxPathBytes', '4K'], ['maxEntriesPerLayer', -1], ['maxUnpackedBytesPerLayer', 1.5], ['maxUnpackedBytesPerLayer', '1 PB']] as const) {
      assert.throws(() => parseLimit(key, bad), (e: unknown) => e instanceof ImageTsError && e.code === 'CONFIG_FILE_INVALID', `${key} ${bad}`);
    }
  });
});

describe('inversify wiring', () => {
  it('the standalone profile resolves the use cases', async () => {
    const c = await buildContainer({ settings: settings('/nonexistent'), logger: silentLogger });
    assert.ok(c.get(Tokens.PullImage) instanceof PullImage);
    assert.ok(c.get(Tokens.ManageImages) instanceof ManageImages);
  });

  it('refuses an unknown profile with CONFIG_FILE_INVALID', async () => {
    await assert.rejects(buildContainer({ settings: settings('/x', 'kata-magic'), logger: silentLogger }),
      (e: unknown) => e instanceof ImageTsError && e.code === 'CONFIG_FILE_INVALID' && /known: standalone/.test(e.message));
  });

  it('swapping the image source is a binding change and nothing more', async () => {
    const work = await mkdtemp(join(tmpdir(), 'image-ts-wiring-'));
    try {
      const c = await buildContainer({ settings: settings(join(work, 'store')), logger: silentLogger });
      const memory = new MemoryImageSourceFactory();
      const img = buildImage({ layers: [{ tar: tar([{ name: 'hello', content: 'from memory' }]) }] });
      memory.put('example.com/app', 'v1', { bytes: img.manifest, digest: img.manifestDigest, mediaType: img.manifestMediaType }, img.blobs);
      c.unbind(ImageSourceFactoryToken);
      c.bind(ImageSourceFactoryToken).toConstantValue(memory);
      const result = await c.get<PullImage>(Tokens.PullImage).execute({ image: 'example.com/app:v1', bundle: join(work, 'bundle') });
      assert.equal(result.manifestDigest, img.manifestDigest);
      assert.equal(await readFile(join(work, 'bundle', 'rootfs', 'hello'), 'utf8'), 'from memory');
      await c.get<ManageImages>(Tokens.ManageImages).removeBundle(join(work, 'bundle'));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
