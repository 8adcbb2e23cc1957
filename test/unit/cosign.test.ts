import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { NodeSigstoreVerifier, parseCosignPublicKey } from '../../src/adapters/outbound/signatures/sigstore-verifier.js';
import { RegistrySourceFactory } from '../../src/adapters/outbound/registry/registry-source.js';
import { ImageTsError, NotFoundError } from '../../src/domain/errors.js';
import type { Descriptor } from '../../src/domain/image/descriptor.js';
import { Digest } from '../../src/domain/image/digest.js';
import { ImageTarget } from '../../src/domain/image/image-target.js';
import {
  COSIGN_BUNDLE_ANNOTATION,
  COSIGN_SIGNATURE_ANNOTATION,
  COSIGN_SIGNATURE_MEDIA_TYPE,
  MAX_COSIGN_LAYERS,
  cosignSignatureTag,
  fetchCosignSignatures,
  signatureLayers,
} from '../../src/domain/policy/cosign-signatures.js';
import type { FetchedManifest, ImageSource } from '../../src/ports/image-source/image-source.js';
import type { SigstoreSignature } from '../../src/ports/signatures/signature-verifier.js';
import {
  cosignPayload,
  generateKey,
  pushCosignSignatures,
  rekorBundle,
  signPayload,
  type CosignKey,
  type PushSignaturesOptions,
  type SignatureSpec,
} from '../harness/cosign.js';
import { smallImage, startRegistry, type StartedRegistry } from '../harness/registry.js';

const execFileP = promisify(execFile);
const code = (c: string) => (e: unknown): boolean => e instanceof ImageTsError && e.code === c;
const invalidBecause = (re: RegExp) => (e: unknown): boolean => {
  if (!(e instanceof ImageTsError) || e.code !== 'SIGNATURE_INVALID') return false;
  assert.match(e.message, re);
  assert.doesNotMatch(e.message, /\n/);
  return true;
};

interface Keys {
  ec: CosignKey;
  ec384: CosignKey;
  otherEc: CosignKey;
  rsa: CosignKey;
  ed: CosignKey;
  rekor: CosignKey;
  otherRekor: CosignKey;
}

describe('cosign signatures against docker-registry', () => {
  let registry: StartedRegistry;
  let factory: RegistrySourceFactory;
  let keys: Keys;
  const verifier = new NodeSigstoreVerifier();
  const opened: ImageSource[] = [];
  let repoCount = 0;

  before(async () => {
    registry = await startRegistry('open');
    factory = new RegistrySourceFactory({ insecureRegistries: [registry.host], caFiles: [], retries: 0 });
    const [ec, ec384, otherEc, rsa, ed, rekor, otherRekor] = await Promise.all([
      generateKey('ecdsa-p256'),
      generateKey('ecdsa-p384'),
      generateKey('ecdsa-p256'),
      generateKey('rsa'),
      generateKey('ed25519'),
      generateKey('ecdsa-p256'),
      generateKey('ecdsa-p256'),
    ]);
    keys = { ec, ec384, otherEc, rsa, ed, rekor, otherRekor };
  });

  after(async () => {
    for (const s of opened) await s.close();
    await registry?.stop();
  });

  /** A fresh repo with one image, signed per `specs` (none ⇒ no `.sig` tag). */
  async function signed(specs: readonly SignatureSpec[], options?: PushSignaturesOptions) {
    const repo = `cosign/app${++repoCount}`;
    const image = await registry.pushImage(repo, 'v1', smallImage(`image ${repoCount}\n`));
    const pushed = specs.length || options?.extraLayers ? await pushCosignSignatures(registry, repo, image.manifestDigest, specs, options) : undefined;
    const source = await factory.open(ImageTarget.parse(`${registry.host}/${repo}:v1`));
    opened.push(source);
    const digest = Digest.parse(image.manifestDigest);
    return { repo, image, pushed, source, digest, fetch: () => fetchCosignSignatures(source, digest) };
  }

  const pem = (k: CosignKey): Buffer => Buffer.from(k.publicPem);

  it('fetches and verifies an ECDSA P-256 signature made by openssl (spec recipe)', async () => {
    const t = await signed([{ key: keys.ec }]);
    assert.equal(t.pushed?.tag, cosignSignatureTag(t.digest));
    assert.match(t.pushed?.tag ?? '', /^sha256-[0-9a-f]{64}\.sig$/);
    const sigs = await t.fetch();
    assert.equal(sigs.length, 1);
    const [sig] = sigs as [SigstoreSignature];
    assert.equal(sig.mimeType, COSIGN_SIGNATURE_MEDIA_TYPE);
    assert.deepEqual(sig.payload, t.pushed?.signatures[0]?.payload);
    const payload = JSON.parse(sig.payload.toString('utf8')) as { critical: { identity: Record<string, string>; image: Record<string, string> } };
    assert.equal(payload.critical.identity['docker-reference'], `${registry.host}/${t.repo}`);
    assert.equal(payload.critical.image['docker-manifest-digest'], t.image.manifestDigest);
    assert.ok(sig.annotations[COSIGN_SIGNATURE_ANNOTATION]);
    await verifier.verify(sig, [pem(keys.ec)]);
    // The same bytes verify with openssl itself.
    const dir = await mkdtemp(join(tmpdir(), 'cosign-test-'));
    try {
      await writeFile(join(dir, 'k.pub'), keys.ec.publicPem);
      await writeFile(join(dir, 'payload.json'), sig.payload);
      await writeFile(join(dir, 'sig.der'), Buffer.from(sig.annotations[COSIGN_SIGNATURE_ANNOTATION] ?? '', 'base64'));
      const { stdout } = await execFileP('openssl', ['dgst', '-sha256', '-verify', join(dir, 'k.pub'), '-signature', join(dir, 'sig.der'), join(dir, 'payload.json')]);
      assert.match(stdout, /Verified OK/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('verifies ECDSA P-384, signed by node:crypto, with a base64 signature wrapped over lines', async () => {
    const t = await signed([{ key: keys.ec384, signer: 'node', wrapSignature: true }]);
    const [sig] = (await t.fetch()) as [SigstoreSignature];
    assert.match(sig.annotations[COSIGN_SIGNATURE_ANNOTATION] ?? '', /\n/);
    await verifier.verify(sig, [pem(keys.ec384)]);
  });

  it('verifies RSA PKCS#1 v1.5 with a PKIX key and with a PKCS#1 RSA PUBLIC KEY', async () => {
    const t = await signed([{ key: keys.rsa }]);
    const [sig] = (await t.fetch()) as [SigstoreSignature];
    await verifier.verify(sig, [pem(keys.rsa)]);
    assert.match(keys.rsa.pkcs1PublicPem ?? '', /BEGIN RSA PUBLIC KEY/);
    await verifier.verify(sig, [Buffer.from(keys.rsa.pkcs1PublicPem ?? '')]);
  });

  it('verifies Ed25519 (pure, signed by openssl pkeyutl -rawin)', async () => {
    const t = await signed([{ key: keys.ed }]);
    const [sig] = (await t.fetch()) as [SigstoreSignature];
    await verifier.verify(sig, [pem(keys.ed)]);
    await assert.rejects(verifier.verify(sig, [pem(keys.ec)]), invalidBecause(/none of the 1 trusted/));
  });

  it('rejects a signature by another key, and passes when any configured key matches', async () => {
    const t = await signed([{ key: keys.otherEc }]);
    const [sig] = (await t.fetch()) as [SigstoreSignature];
    await assert.rejects(verifier.verify(sig, [pem(keys.ec)]), invalidBecause(/cryptographic signature verification failed/));
    await assert.rejects(verifier.verify(sig, [pem(keys.ec), pem(keys.rsa), pem(keys.ed)]), invalidBecause(/none of the 3/));
    await verifier.verify(sig, [pem(keys.ec), pem(keys.rsa), pem(keys.otherEc)]);
  });

  it('rejects a tampered payload: a pushed blob that is not what was signed', async () => {
    const signedBytes = cosignPayload(`${registry.host}/cosign/app-x`, `sha256:${'a'.repeat(64)}`);
    const t = await signed([{ key: keys.ec, signedPayload: signedBytes }]);
    const [sig] = (await t.fetch()) as [SigstoreSignature];
    assert.notDeepEqual(sig.payload, signedBytes);
    await assert.rejects(verifier.verify(sig, [pem(keys.ec)]), code('SIGNATURE_INVALID'));
    // The same signature over the bytes it was made for verifies.
    await verifier.verify({ ...sig, payload: signedBytes }, [pem(keys.ec)]);
  });

  it('refuses a payload blob that does not match its layer digest (a lying source)', async () => {
    const t = await signed([{ key: keys.ec }]);
    const lying: ImageSource = {
      description: 'lying',
      getManifest: (ref, signal) => t.source.getManifest(ref, signal),
      async getBlob(d: Descriptor): Promise<Readable> {
        const real = await t.source.getBlob(d);
        const chunks: Buffer[] = [];
        for await (const c of real) chunks.push(c as Buffer);
        const b = Buffer.concat(chunks);
        b[b.length - 2] = 0x20; // same size, other bytes
        return Readable.from([b]);
      },
      close: async () => {},
    };
    await assert.rejects(fetchCosignSignatures(lying, t.digest), code('DIGEST_MISMATCH'));
    const longer: ImageSource = { ...lying, getBlob: async () => Readable.from([Buffer.alloc(4096, 0x20)]) };
    await assert.rejects(fetchCosignSignatures(longer, t.digest), code('DIGEST_MISMATCH'));
    const shorter: ImageSource = { ...lying, getBlob: async () => Readable.from([Buffer.from('{}')]) };
    await assert.rejects(fetchCosignSignatures(shorter, t.digest), code('DIGEST_MISMATCH'));
  });

  it('returns every signature of a manifest with several; only the good one verifies; other attachments are skipped', async () => {
    const t = await signed([{ key: keys.otherEc }, { key: keys.ec }, { key: keys.rsa }], {
      extraLayers: [{ mediaType: 'application/vnd.dsse.envelope.v1+json', bytes: Buffer.from('{"payloadType":"x"}') }],
    });
    const sigs = await t.fetch();
    assert.equal(sigs.length, 3);
    const results = await Promise.allSettled(sigs.map((s) => verifier.verify(s, [pem(keys.ec)])));
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'fulfilled', 'rejected']);
    const first = results[0];
    assert.ok(first?.status === 'rejected' && code('SIGNATURE_INVALID')(first.reason));
  });

  it('reads a Docker schema 2 .sig manifest (COSIGN_DOCKER_MEDIA_TYPES)', async () => {
    const t = await signed([{ key: keys.ec }], { dockerMediaTypes: true });
    const fetched = await t.source.getManifest(t.pushed?.tag ?? '');
    assert.equal(fetched.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    const [sig] = (await t.fetch()) as [SigstoreSignature];
    await verifier.verify(sig, [pem(keys.ec)]);
  });

  it('returns [] when the image has no .sig tag, and for a repository that does not exist', async () => {
    const t = await signed([]);
    assert.deepEqual(await t.fetch(), []);
    const missing = await factory.open(ImageTarget.parse(`${registry.host}/cosign/nothing-here:v1`));
    opened.push(missing);
    assert.deepEqual(await fetchCosignSignatures(missing, t.digest), []);
  });

  describe('Rekor bundles', () => {
    it('accepts a good bundle; a bundle is ignored when no Rekor keys are configured', async () => {
      const t = await signed([{ key: keys.ec, rekor: { key: keys.rekor } }]);
      const [sig] = (await t.fetch()) as [SigstoreSignature];
      assert.ok(sig.annotations[COSIGN_BUNDLE_ANNOTATION]);
      await verifier.verify(sig, [pem(keys.ec)], [pem(keys.rekor)]);
      await verifier.verify(sig, [pem(keys.ec)], [pem(keys.otherRekor), pem(keys.rekor)]);
      await verifier.verify(sig, [pem(keys.ec)]);
      await verifier.verify(sig, [pem(keys.ec)], []);
    });

    it('matches the body key against the key that verified, for RSA (PKCS#1 configured) and Ed25519', async () => {
      const t = await signed([{ key: keys.rsa, rekor: { key: keys.rekor } }, { key: keys.ed, rekor: { key: keys.rekor } }]);
      const [rsaSig, edSig] = (await t.fetch()) as [SigstoreSignature, SigstoreSignature];
      await verifier.verify(rsaSig, [pem(keys.ec), Buffer.from(keys.rsa.pkcs1PublicPem ?? '')], [pem(keys.rekor)]);
      await verifier.verify(edSig, [pem(keys.ec), pem(keys.ed)], [pem(keys.rekor)]);
    });

    it('rejects a signature without a bundle when Rekor keys are configured', async () => {
      const t = await signed([{ key: keys.ec }]);
      const [sig] = (await t.fetch()) as [SigstoreSignature];
      await assert.rejects(verifier.verify(sig, [pem(keys.ec)], [pem(keys.rekor)]), invalidBecause(/missing dev\.sigstore\.cosign\/bundle/));
    });

    it('rejects a SET signed by another key', async () => {
      const t = await signed([{ key: keys.ec, rekor: { key: keys.otherRekor } }]);
      const [sig] = (await t.fetch()) as [SigstoreSignature];
      await assert.rejects(verifier.verify(sig, [pem(keys.ec)], [pem(keys.rekor)]), invalidBecause(/SignedEntryTimestamp matches none/));
    });

    it('rejects a body whose hash is of another payload', async () => {
      const t = await signed([{ key: keys.ec, rekor: { key: keys.rekor, hashOf: Buffer.from('another payload') } }]);
      const [sig] = (await t.fetch()) as [SigstoreSignature];
      await assert.rejects(verifier.verify(sig, [pem(keys.ec)], [pem(keys.rekor)]), invalidBecause(/hash is not the SHA-256 of the payload/));
    });

    it('rejects a body naming another public key or another signature', async () => {
      const other = await signPayload(keys.ec, Buffer.from('something else'));
      const t = await signed([
        { key: keys.ec, rekor: { key: keys.rekor, publicKeyPem: keys.otherEc.publicPem } },
        { key: keys.ec, rekor: { key: keys.rekor, signature: other } },
      ]);
      const [wrongKey, wrongSig] = (await t.fetch()) as [SigstoreSignature, SigstoreSignature];
      await assert.rejects(verifier.verify(wrongKey, [pem(keys.ec)], [pem(keys.rekor)]), invalidBecause(/publicKey is not the key that verified/));
      await assert.rejects(verifier.verify(wrongSig, [pem(keys.ec)], [pem(keys.rekor)]), invalidBecause(/signature is not the signature being verified/));
    });

    it('refuses non-ECDSA Rekor keys and malformed bundles', async () => {
      const t = await signed([{ key: keys.ec, rekor: { key: keys.rekor } }]);
      const [sig] = (await t.fetch()) as [SigstoreSignature];
      await assert.rejects(verifier.verify(sig, [pem(keys.ec)], [pem(keys.ed)]), invalidBecause(/Rekor keys must be ECDSA/));
      const bundle = JSON.parse(sig.annotations[COSIGN_BUNDLE_ANNOTATION] ?? '') as { SignedEntryTimestamp: string; Payload: Record<string, unknown> };
      const withBundle = (b: unknown): SigstoreSignature => ({ ...sig, annotations: { ...sig.annotations, [COSIGN_BUNDLE_ANNOTATION]: typeof b === 'string' ? b : JSON.stringify(b) } });
      const rekor = [pem(keys.rekor)];
      const ec = [pem(keys.ec)];
      await verifier.verify(withBundle(bundle), ec, rekor);
      await assert.rejects(verifier.verify(withBundle('not json'), ec, rekor), invalidBecause(/not valid JSON/));
      await assert.rejects(verifier.verify(withBundle({ ...bundle, extra: 1 }), ec, rekor), invalidBecause(/unknown key "extra"/));
      await assert.rejects(verifier.verify(withBundle({ Payload: bundle.Payload }), ec, rekor), invalidBecause(/lacks "SignedEntryTimestamp"/));
      await assert.rejects(verifier.verify(withBundle({ ...bundle, Payload: { ...bundle.Payload, logIndex: 7 } }), ec, rekor), invalidBecause(/SignedEntryTimestamp/));
      await assert.rejects(verifier.verify(withBundle({ ...bundle, Payload: { ...bundle.Payload, logIndex: '7' } }), ec, rekor), invalidBecause(/logIndex/));
      const { logID: _dropped, ...noLogId } = bundle.Payload;
      await assert.rejects(verifier.verify(withBundle({ ...bundle, Payload: noLogId }), ec, rekor), invalidBecause(/lacks "logID"/));
    });

    it('checks the entry kind and apiVersion after the SET', async () => {
      const payload = cosignPayload('example.com/app', `sha256:${'b'.repeat(64)}`);
      const signature = await signPayload(keys.ec, payload, 'node');
      const base: SigstoreSignature = { mimeType: COSIGN_SIGNATURE_MEDIA_TYPE, payload, annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signature.toString('base64') } };
      const make = (o: { kind?: string; apiVersion?: string }): SigstoreSignature => ({
        ...base,
        annotations: { ...base.annotations, [COSIGN_BUNDLE_ANNOTATION]: rekorBundle({ rekorKey: keys.rekor, payload, signature, publicKeyPem: keys.ec.publicPem, ...o }) },
      });
      await verifier.verify(make({}), [pem(keys.ec)], [pem(keys.rekor)]);
      await assert.rejects(verifier.verify(make({ kind: 'rekord' }), [pem(keys.ec)], [pem(keys.rekor)]), invalidBecause(/kind is "rekord"/));
      await assert.rejects(verifier.verify(make({ apiVersion: '0.0.2' }), [pem(keys.ec)], [pem(keys.rekor)]), invalidBecause(/apiVersion/));
    });
  });
});

describe('NodeSigstoreVerifier without a registry', () => {
  const verifier = new NodeSigstoreVerifier();
  let ec: CosignKey;
  before(async () => {
    ec = await generateKey('ecdsa-p256');
  });

  it('refuses a missing or non-base64 signature annotation, another MIME type, and no keys', async () => {
    const payload = Buffer.from('{}');
    const sig = await signPayload(ec, payload, 'node');
    const good: SigstoreSignature = { mimeType: COSIGN_SIGNATURE_MEDIA_TYPE, payload, annotations: { [COSIGN_SIGNATURE_ANNOTATION]: sig.toString('base64') } };
    const key = [Buffer.from(ec.publicPem)];
    await verifier.verify(good, key);
    await assert.rejects(verifier.verify({ ...good, annotations: {} }, key), invalidBecause(/missing dev\.cosignproject\.cosign\/signature/));
    await assert.rejects(verifier.verify({ ...good, annotations: { [COSIGN_SIGNATURE_ANNOTATION]: 'not base64!' } }, key), invalidBecause(/not base64/));
    await assert.rejects(verifier.verify({ ...good, annotations: { [COSIGN_SIGNATURE_ANNOTATION]: sig.toString('base64url') + '#' } }, key), invalidBecause(/not base64/));
    await assert.rejects(verifier.verify({ ...good, mimeType: 'application/json' }, key), invalidBecause(/MIME type/));
    await assert.rejects(verifier.verify(good, []), invalidBecause(/no public keys/));
  });

  it('reads the first PEM block only, and refuses non-key PEM and unsupported key types', async () => {
    const first = parseCosignPublicKey(`junk before\n${ec.publicPem}\n-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n`);
    assert.equal(first.kind, 'ecdsa');
    assert.throws(() => parseCosignPublicKey('no pem here'), invalidBecause(/not PEM/));
    assert.throws(() => parseCosignPublicKey(ec.privatePem), invalidBecause(/not PUBLIC KEY/));
    const { generateKeyPairSync } = await import('node:crypto');
    const x25519 = generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'pem' });
    assert.throws(() => parseCosignPublicKey(x25519), invalidBecause(/unsupported key type x25519/));
    const secp256k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ type: 'spki', format: 'pem' });
    assert.throws(() => parseCosignPublicKey(secp256k1), invalidBecause(/unsupported ECDSA curve secp256k1/));
    const verifierKeys = [Buffer.from('garbage')];
    const payload = Buffer.from('x');
    const sig: SigstoreSignature = { mimeType: COSIGN_SIGNATURE_MEDIA_TYPE, payload, annotations: { [COSIGN_SIGNATURE_ANNOTATION]: 'AAAA' } };
    await assert.rejects(verifier.verify(sig, verifierKeys), invalidBecause(/public key 1 is not PEM/));
  });
});

describe('.sig manifest reader', () => {
  const layer = (mediaType: string, body = 'x'): Record<string, unknown> => ({
    mediaType,
    digest: Digest.of(body).toString(),
    size: Buffer.byteLength(body),
    annotations: { [COSIGN_SIGNATURE_ANNOTATION]: 'AAAA' },
  });
  const manifest = (o: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: Digest.of('{}').toString(), size: 2 },
    layers: [layer(COSIGN_SIGNATURE_MEDIA_TYPE)],
    ...o,
  }));

  it('keeps simple-signing layers only and accepts OCI without mediaType', () => {
    assert.equal(signatureLayers(manifest({ layers: [layer('application/vnd.oci.image.layer.v1.tar'), layer(COSIGN_SIGNATURE_MEDIA_TYPE)] }), undefined).length, 1);
    assert.equal(signatureLayers(manifest({ mediaType: undefined }), 'application/json').length, 1);
  });

  it('refuses indexes, schema 1, disagreeing media types, bad layers and too many layers', () => {
    const bad = code('INVALID_MANIFEST');
    assert.throws(() => signatureLayers(manifest({ mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }), undefined), bad);
    assert.throws(() => signatureLayers(manifest({ mediaType: undefined, manifests: [] }), undefined), bad);
    assert.throws(() => signatureLayers(manifest({ schemaVersion: 1 }), undefined), bad);
    assert.throws(() => signatureLayers(manifest({}), 'application/vnd.docker.distribution.manifest.v2+json'), bad);
    assert.throws(() => signatureLayers(manifest({ layers: 'x' }), undefined), bad);
    assert.throws(() => signatureLayers(manifest({ layers: [{ ...layer(COSIGN_SIGNATURE_MEDIA_TYPE), digest: 'sha256:zz' }] }), undefined), bad);
    assert.throws(() => signatureLayers(manifest({ layers: Array.from({ length: MAX_COSIGN_LAYERS + 1 }, () => layer(COSIGN_SIGNATURE_MEDIA_TYPE)) }), undefined), bad);
    assert.equal(signatureLayers(manifest({ layers: Array.from({ length: MAX_COSIGN_LAYERS }, () => layer(COSIGN_SIGNATURE_MEDIA_TYPE)) }), undefined).length, MAX_COSIGN_LAYERS);
    assert.throws(() => signatureLayers(Buffer.from('[]'), undefined), bad);
  });

  it('passes other source errors through, and refuses oversized payloads before fetching them', async () => {
    const digest = Digest.of('image');
    const failing = (err: Error, m?: FetchedManifest): ImageSource => ({
      description: 'test',
      getManifest: async () => {
        if (m) return m;
        throw err;
      },
      getBlob: async () => {
        throw new Error('must not fetch');
      },
      close: async () => {},
    });
    assert.deepEqual(await fetchCosignSignatures(failing(new NotFoundError('gone')), digest), []);
    await assert.rejects(fetchCosignSignatures(failing(new ImageTsError('UNAUTHORIZED', 'no')), digest), code('UNAUTHORIZED'));
    const big = manifest({ layers: [{ ...layer(COSIGN_SIGNATURE_MEDIA_TYPE), size: (4 << 20) + 1 }] });
    await assert.rejects(fetchCosignSignatures(failing(new Error('x'), { bytes: big, mediaType: undefined }), digest), code('INVALID_MANIFEST'));
    await assert.rejects(fetchCosignSignatures(failing(new Error('x')), Digest.of('image', 'sha512')), code('UNSUPPORTED'));
  });
});
