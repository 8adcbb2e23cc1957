/**
 * Rebinding a port reaches every consumer of it (issue 13, section 2): the
 * container is built with an override, and each consumer is driven until it
 * has used the port, so that a consumer holding its own copy would fail here.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { buildContainer } from '../../src/adapters/wiring/container.js';
import type { Settings } from '../../src/adapters/wiring/settings-file.js';
import { Tokens } from '../../src/adapters/wiring/tokens.js';
import type { CocoKeyProvider } from '../../src/domain/encryption/coco-key-provider.js';
import type { LayerKeys } from '../../src/domain/encryption/layer-keys.js';
import { LayerEncryption } from '../../src/domain/encryption/layer-encryption.js';
import type { PullImage } from '../../src/domain/pull/pull-image.js';
import type { RegistriesConf } from '../../src/domain/registry/registries-conf.js';
import type { KeyBroker } from '../../src/ports/keys/key-broker.js';
import type { ResourceLoader } from '../../src/ports/resources/resource-loader.js';
import { ResourceUri } from '../../src/domain/encryption/resource-uri.js';
import { startKbsServer, type StartedKbsServer } from '../harness/kbs-server.js';
import { annotationPacket, PROVIDER_AA } from '../helpers/encryption.js';
import { buildImage } from '../helpers/image-builder.js';
import { tar } from '../helpers/tar-writer.js';
import { MemoryAttestationAgent } from '../mocks/memory-attestation-agent.js';
import { MemoryImageSourceFactory } from '../mocks/memory-image-source.js';
import { MemoryKeyBroker } from '../mocks/memory-key-broker.js';
import { EMPTY_DECRYPT_CONFIG } from '../../src/domain/encryption/decrypt-config.js';
import { Manifest } from '../../src/domain/image/manifest.js';
import { MemoryLayerStore } from '../mocks/memory-layer-store.js';
import { MemoryMetadataStore } from '../mocks/memory-metadata-store.js';
import { AttestationAgentToken, ImageSourceFactoryToken, KeyBrokerToken, KeyProvidersToken, LayerStoreToken, MetadataStoreToken, ResourceLoaderToken } from '../../src/adapters/wiring/port-tokens.js';
import { silentLogger } from '../../src/adapters/outbound/silent-logger.js';

const settings = (extra: Partial<Settings> = {}): Settings => ({
  profile: 'standalone', workDir: '/nonexistent', maxConcurrentLayers: 3, snapshotter: 'copy', platform: 'linux/amd64',
  insecureRegistries: [], plainHttpRegistries: [], caFiles: [], caPems: [], certsDirs: [], authFiles: [], decompressor: 'auto',
  keyproviderConfig: undefined, decryptionKeys: [], keyBroker: undefined, attestationAgent: undefined,
  policy: undefined, registriesD: undefined, admission: { unencryptedSigned: true, unencryptedUnsigned: true },
  maxConcurrentDownloads: undefined, limits: {}, serve: undefined, registriesConf: undefined, proxy: undefined, timeouts: {},
  ...extra,
});

const REJECT_ALL = JSON.stringify({ default: [{ type: 'reject' }] });
const BLOCKING_CONF = '[[registry]]\nprefix = "blocked.example"\nlocation = "blocked.example"\nblocked = true\n';

describe('an override of the key broker reaches every consumer', () => {
  it('layer keys (the attestation-agent provider), kbs:// policies, kbs:// registries.conf and serve\'s GetResource', async () => {
    const kek = randomBytes(32);
    const broker = new MemoryKeyBroker(new Map([
      ['default/key/1', kek],
      ['default/policy/1', Buffer.from(REJECT_ALL)],
      ['default/registries/1', Buffer.from(BLOCKING_CONF)],
    ]));
    const images = new MemoryImageSourceFactory();
    const img = buildImage({ layers: [{ tar: tar([{ name: 'a', content: 'a' }]) }] });
    images.put('example.com/app', 'v1', { bytes: img.manifest, digest: img.manifestDigest, mediaType: img.manifestMediaType }, img.blobs);
    // A profile whose own broker is CDH: the override must win everywhere.
    const c = await buildContainer(
      { settings: settings({ profile: 'cdh-guest', policy: { uri: 'kbs:///default/policy/1' }, registriesConf: { uri: 'kbs:///default/registries/1' } }), logger: silentLogger },
      { overrides: [{ token: KeyBrokerToken, values: [broker] }, { token: ImageSourceFactoryToken, values: [images] }] },
    );
    // serve's GetResource and every other direct consumer resolve the token.
    assert.equal(c.get<KeyBroker>(KeyBrokerToken), broker);

    // The attestation-agent key provider, as LayerKeys uses it for a CoCo layer.
    const enc = buildImage({ layers: [{ tar: tar([{ name: 's', content: 's' }]), encrypt: { wrap: (p) => ({ [PROVIDER_AA]: annotationPacket(kek, p, 'kbs:///default/key/1').toString('base64') }) } }] });
    const layer = Manifest.parse(enc.manifest, enc.manifestMediaType);
    assert.equal(layer.kind, 'manifest');
    const options = await c.get<LayerKeys>(Tokens.LayerKeys).unwrap('layer', LayerEncryption.of(layer.kind === 'manifest' ? layer.layers[0]! : assert.fail()), EMPTY_DECRYPT_CONFIG);
    assert.equal(options.symkey.length, 32, 'LayerKeys unwrapped the layer key through the override');
    const provider = c.get<ReadonlyMap<string, CocoKeyProvider>>(KeyProvidersToken).get('attestation-agent')!;
    assert.deepEqual(await provider.unwrapPacket(annotationPacket(kek, Buffer.from('opts'), 'kbs:///default/key/1')), Buffer.from('opts'));

    // kbs:// resources, the policy that the pull evaluates, and registries.conf.
    assert.equal((await c.get<ResourceLoader>(ResourceLoaderToken).load('kbs:///default/policy/1')).toString(), REJECT_ALL);
    const verdict = await c.get<PullImage>(Tokens.PullImage).verify({ image: 'example.com/app:v1' });
    assert.equal(verdict.refusal?.code, 'POLICY_DENIED', 'the policy came from the override broker');
    const conf = await c.get<() => Promise<RegistriesConf | undefined>>(Tokens.Registries)();
    assert.equal(conf?.registries[0]?.blocked, true);
    assert.ok(broker.requests.includes('kbs:///default/policy/1') && broker.requests.includes('kbs:///default/registries/1') && broker.requests.includes('kbs:///default/key/1'));
  });
});

describe('an override of the Attestation Agent reaches every consumer', () => {
  let kbs: StartedKbsServer;
  before(async () => {
    kbs = await startKbsServer({ resources: new Map([['default/secret/1', Buffer.from('attested')]]) });
  });
  after(async () => {
    await kbs?.close();
  });

  it('the KBS client attests with it, and pulls are measured by the same instance', async () => {
    const aa = new MemoryAttestationAgent();
    const images = new MemoryImageSourceFactory();
    const img = buildImage({ layers: [] });
    images.put('example.com/app', 'v1', { bytes: img.manifest, digest: img.manifestDigest, mediaType: img.manifestMediaType }, img.blobs);
    const c = await buildContainer(
      { settings: settings({ profile: 'kbs-direct', keyBroker: { kind: 'kbs', url: kbs.url, attester: 'aa' } }), logger: silentLogger },
      { overrides: [
        { token: AttestationAgentToken, values: [aa] }, { token: ImageSourceFactoryToken, values: [images] },
        { token: LayerStoreToken, values: [new MemoryLayerStore()] }, { token: MetadataStoreToken, values: [new MemoryMetadataStore()] },
      ] },
    );
    let evidence = 0;
    const getEvidence = aa.getEvidence.bind(aa);
    aa.getEvidence = async (data) => {
      evidence++;
      return getEvidence(data);
    };
    const got = await c.get<KeyBroker>(KeyBrokerToken).getResource(ResourceUri.parse('kbs:///default/secret/1'));
    assert.equal(got.toString(), 'attested');
    assert.equal(evidence, 1, 'the KBS client asked the override for evidence');
    await c.get<PullImage>(Tokens.PullImage).pullToStore({ image: 'example.com/app:v1' });
    assert.equal(aa.measurements.length, 1, 'the pull was measured by the same instance');
  });
});
