import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageTsError } from '../../src/domain/errors.js';
import { Digest } from '../../src/domain/image/digest.js';
import { ImageConfig } from '../../src/domain/image/image-config.js';
import { ImageIndex } from '../../src/domain/image/image-index.js';
import { Manifest } from '../../src/domain/image/manifest.js';
import { Platform } from '../../src/domain/image/platform.js';
import { buildImage, buildIndex } from '../helpers/image-builder.js';

const code = (c: string) => (e: unknown) => e instanceof ImageTsError && e.code === c;
const tar = Buffer.alloc(1024);
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('Digest', () => {
  it('parses sha256 and sha512 and rejects the rest', () => {
    assert.equal(Digest.parse(`sha256:${'0'.repeat(64)}`).algorithm, 'sha256');
    assert.equal(Digest.parse(`sha512:${'0'.repeat(128)}`).algorithm, 'sha512');
    for (const bad of ['sha256:', 'sha256:ABC', `sha256:${'0'.repeat(63)}`, `md5:${'0'.repeat(32)}`, 'nocolon', `sha256:${'0'.repeat(64)}/../x`]) {
      assert.throws(() => Digest.parse(bad), ImageTsError, bad);
    }
  });
});

describe('Manifest.parse', () => {
  it('reads OCI and Docker schema 2 manifests', () => {
    for (const format of ['oci', 'docker'] as const) {
      const img = buildImage({ format, layers: [{ tar }, { tar, compression: 'none' }] });
      const m = Manifest.parse(img.manifest);
      assert.equal(m.kind, 'manifest');
      if (m.kind !== 'manifest') return;
      assert.equal(m.layers.length, 2);
      assert.equal(m.config.digest.toString(), img.configDigest);
    }
  });

  it('takes the media type from Content-Type when the document has none', () => {
    const img = JSON.parse(buildImage({ layers: [{ tar }] }).manifest.toString());
    delete img.mediaType;
    const m = Manifest.parse(json(img), 'application/vnd.oci.image.manifest.v1+json; charset=utf-8');
    assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  });

  it('refuses schema 1 with UNSUPPORTED', () => {
    assert.throws(() => Manifest.parse(json({ schemaVersion: 1, name: 'x', fsLayers: [] })), code('UNSUPPORTED'));
    assert.throws(() => Manifest.parse(json({ schemaVersion: 2 }), 'application/vnd.docker.distribution.manifest.v1+prettyjws'), code('UNSUPPORTED'));
  });

  it('refuses malformed documents with INVALID_MANIFEST', () => {
    const cases: unknown[] = [
      'not json', [], { schemaVersion: 3 }, { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
      { schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:zz', size: 1 }, layers: [] },
      { schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: -1 }, layers: [] },
      { schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 2 }, layers: {} },
    ];
    for (const c of cases) assert.throws(() => Manifest.parse(typeof c === 'string' ? Buffer.from(c) : json(c)), code('INVALID_MANIFEST'), JSON.stringify(c));
  });

  it('refuses a declared type that contradicts Content-Type', () => {
    const img = buildImage({ layers: [{ tar }] });
    assert.throws(() => Manifest.parse(img.manifest, 'application/vnd.docker.distribution.manifest.v2+json'), code('INVALID_MANIFEST'));
  });

  it('refuses unknown layer media types and artifact configs with UNSUPPORTED', () => {
    const img = buildImage({ layers: [{ tar, mediaType: 'application/vnd.example.weird' }] });
    assert.throws(() => Manifest.parse(img.manifest), code('UNSUPPORTED'));
    const doc = JSON.parse(buildImage({ layers: [] }).manifest.toString());
    doc.config.mediaType = 'application/vnd.cncf.helm.config.v1+json';
    assert.throws(() => Manifest.parse(json(doc)), code('UNSUPPORTED'));
  });

  it('accepts every plaintext layer type, nondistributable and foreign included', () => {
    const types = [
      'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
      'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
      'application/vnd.oci.image.layer.nondistributable.v1.tar',
      'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
    ];
    const img = buildImage({ layers: types.map((mediaType) => ({ tar, mediaType })) });
    const m = Manifest.parse(img.manifest);
    assert.equal(m.kind === 'manifest' && m.layers.length, 4);
  });
});

describe('ImageIndex.selectPlatform', () => {
  const mk = (architecture: string, variant?: string) => ({
    image: buildImage({ architecture, layers: [{ tar: Buffer.alloc(512 * (architecture.length + (variant?.length ?? 0))) }] }),
    platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) },
  });
  const entries = [mk('amd64'), mk('arm64', 'v8'), mk('arm', 'v6'), mk('arm', 'v7'), mk('s390x')];
  const index = Manifest.parse(buildIndex(entries).bytes);
  assert.equal(index.kind, 'index');
  const idx = index as ImageIndex;

  it('picks the exact os/arch/variant', () => {
    assert.equal(ImageIndex.selectPlatform(idx, Platform.parse('linux/arm/v7')).digest.toString(), entries[3]!.image.manifestDigest);
    assert.equal(ImageIndex.selectPlatform(idx, Platform.parse('linux/amd64')).digest.toString(), entries[0]!.image.manifestDigest);
  });
  it('normalizes arm64 to v8 and aliases like aarch64', () => {
    assert.equal(ImageIndex.selectPlatform(idx, Platform.parse('linux/aarch64')).digest.toString(), entries[1]!.image.manifestDigest);
  });
  it('falls back to an older arm variant', () => {
    const only6 = Manifest.parse(buildIndex([entries[2]!]).bytes) as ImageIndex;
    assert.equal(ImageIndex.selectPlatform(only6, Platform.parse('linux/arm/v7')).digest.toString(), entries[2]!.image.manifestDigest);
    assert.throws(() => ImageIndex.selectPlatform(Manifest.parse(buildIndex([entries[3]!]).bytes) as ImageIndex, Platform.parse('linux/arm/v6')));
  });
  it('names the platforms that exist when nothing matches', () => {
    assert.throws(
      () => ImageIndex.selectPlatform(idx, Platform.parse('linux/riscv64')),
      (e: unknown) => e instanceof ImageTsError && e.code === 'PLATFORM_NOT_FOUND' &&
        /linux\/amd64, linux\/arm64\/v8, linux\/arm\/v6, linux\/arm\/v7, linux\/s390x/.test(e.message),
    );
  });
  it('maps node arch names to OCI names', () => {
    assert.deepEqual(Platform.fromNode('linux', 'x64'), { os: 'linux', architecture: 'amd64', variant: undefined });
    assert.equal(Platform.format(Platform.fromNode('linux', 'arm64')), 'linux/arm64/v8');
  });
  it('rejects malformed --platform values', () => {
    for (const bad of ['linux', 'linux/', '/amd64', 'a/b/c/d', 'linux/am d64']) {
      assert.throws(() => Platform.parse(bad), code('INVALID_ARGUMENT'), bad);
    }
  });
});

describe('ImageConfig.parse', () => {
  it('reads diff_ids and the container config', () => {
    const img = buildImage({ layers: [{ tar }], config: { User: 'app', Env: ['A=1'], Volumes: { '/data': {} }, ExposedPorts: { '80/tcp': {} } } });
    const c = ImageConfig.parse(img.config);
    assert.equal(c.diffIds.length, 1);
    assert.equal(c.config?.User, 'app');
    assert.deepEqual(c.config?.Volumes, ['/data']);
  });
  it('refuses configs without rootfs, os or with bad diff_ids', () => {
    const bad = [
      { os: 'linux', architecture: 'amd64' },
      { architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [] } },
      { os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: ['nope'] } },
      { os: 'linux', architecture: 'amd64', rootfs: { type: 'other', diff_ids: [] } },
      { os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [] }, config: { Env: 'A=1' } },
    ];
    for (const b of bad) assert.throws(() => ImageConfig.parse(json(b)), code('INVALID_CONFIG'), JSON.stringify(b));
  });
});
