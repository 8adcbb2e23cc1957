import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRegistriesDFile, sigstoreAttachmentsSetting, useSigstoreAttachments } from '../../src/adapters/outbound/signatures/registries-d.js';
import { Digest } from '../../src/domain/image/digest.js';
import { ImageTarget } from '../../src/domain/image/image-target.js';
import { Reference } from '../../src/domain/image/reference.js';
import type { ImagePolicy, PolicySubject, PolicyVerdict } from '../../src/domain/policy/image-policy.js';
import { Policy } from '../../src/domain/policy/policy.js';
import { PolicyGate } from '../../src/domain/policy/policy-gate.js';
import { fetchSigstoreBundles, SIGSTORE_BUNDLE_MEDIA_TYPES } from '../../src/domain/policy/sigstore-bundles.js';
import type { ImageSource } from '../../src/ports/image-source/image-source.js';
import { buildImage } from '../helpers/image-builder.js';
import { tar } from '../helpers/tar-writer.js';
import { MemoryImageSourceFactory } from '../mocks/memory-image-source.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const V02 = 'application/vnd.dev.sigstore.bundle+json;version=0.2';
const REPO = 'example.com/signed/app';
const image = buildImage({ layers: [{ tar: tar([{ name: 'hello', content: 'bundles' }]) }] });
const subject = Digest.parse(image.manifestDigest);
const empty = Buffer.from('{}');

interface ArtifactSpec {
  readonly artifactType?: string;
  readonly configMediaType?: string;
  readonly layers?: readonly Buffer[];
  readonly subject?: string;
}

/** A referrer manifest and its blobs, as cosign attaches a bundle. */
function artifact(spec: ArtifactSpec): { bytes: Buffer; digest: string; blobs: Map<string, Buffer> } {
  const layers = spec.layers ?? [Buffer.from('{"dsseEnvelope":{}}')];
  const bytes = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(spec.artifactType !== undefined ? { artifactType: spec.artifactType } : {}),
    config: { mediaType: spec.configMediaType ?? 'application/vnd.oci.empty.v1+json', digest: Digest.of(empty).toString(), size: 2 },
    layers: layers.map((l) => ({ mediaType: spec.artifactType ?? spec.configMediaType ?? V03, digest: Digest.of(l).toString(), size: l.length })),
    subject: { mediaType: OCI_MANIFEST, digest: spec.subject ?? image.manifestDigest, size: image.manifest.length },
  }));
  return { bytes, digest: Digest.of(bytes).toString(), blobs: new Map([[Digest.of(empty).toString(), empty], ...layers.map((l) => [Digest.of(l).toString(), l] as const)]) };
}

async function sourceWith(specs: readonly ArtifactSpec[], tamper?: (blobs: Map<string, Buffer>) => void): Promise<ImageSource> {
  const factory = new MemoryImageSourceFactory();
  factory.put(REPO, 'v1', { bytes: image.manifest, digest: image.manifestDigest, mediaType: image.manifestMediaType }, image.blobs);
  for (const spec of specs) {
    const a = artifact(spec);
    tamper?.(a.blobs);
    factory.put(REPO, undefined, { bytes: a.bytes, digest: a.digest, mediaType: OCI_MANIFEST }, a.blobs);
  }
  return factory.open(ImageTarget.parse(`${REPO}:v1`));
}

describe('sigstore bundles attached as referrers', () => {
  it('knows the bundle media types of every version', () => {
    for (const t of [V03, V02, 'application/vnd.dev.sigstore.bundle+json;version=0.1']) assert.ok(SIGSTORE_BUNDLE_MEDIA_TYPES.includes(t), t);
  });

  it('reads the one layer of each bundle referrer, typed by artifactType or by its config', async () => {
    const bundle = Buffer.from('{"mediaType":"v0.3","dsseEnvelope":{}}');
    const old = Buffer.from('{"mediaType":"v0.2","dsseEnvelope":{}}');
    const source = await sourceWith([
      { artifactType: V03, layers: [bundle] },
      { configMediaType: V02, layers: [old] },
      { artifactType: 'application/vnd.example.sbom.v1+json', layers: [Buffer.from('{"sbom":1}')] },
    ]);
    const found = await fetchSigstoreBundles(source, subject);
    assert.deepEqual(found.map((b) => [b.mediaType, b.bytes.toString(), b.subject.toString()]).sort(), [
      [V02, old.toString(), image.manifestDigest],
      [V03, bundle.toString(), image.manifestDigest],
    ]);
  });

  it('none: [], and a source that cannot have referrers has none', async () => {
    assert.deepEqual(await fetchSigstoreBundles(await sourceWith([]), subject), []);
    const bare: ImageSource = { description: 'bare', getManifest: async () => ({ bytes: image.manifest, mediaType: undefined }), getBlob: async () => { throw new Error('no'); }, close: async () => undefined };
    assert.deepEqual(await fetchSigstoreBundles(bare, subject), []);
  });

  it('refuses a bundle referrer with other than one layer, or a layer that is not what its digest says', async () => {
    await assert.rejects(fetchSigstoreBundles(await sourceWith([{ artifactType: V03, layers: [Buffer.from('{}'), Buffer.from('{"a":1}')] }]), subject), { code: 'INVALID_MANIFEST' });
    const tampered = await sourceWith([{ artifactType: V03, layers: [Buffer.from('{"dsseEnvelope":{"payload":"x"}}')] }], (blobs) => {
      for (const [d, b] of blobs) if (b.length > 2) blobs.set(d, Buffer.from(b.toString().replace('x', 'y')));
    });
    await assert.rejects(fetchSigstoreBundles(tampered, subject), { code: 'DIGEST_MISMATCH' });
  });

  it('does not trust the list: a manifest served for a listed digest must hash to it and name the subject', async () => {
    const real = await sourceWith([{ artifactType: V03 }]);
    const listed = await real.listReferrers!(subject);
    const other = artifact({ artifactType: V03, subject: Digest.of(Buffer.from('another image')).toString() });
    // A source that lists the referrer but serves other bytes under its digest.
    const lying: ImageSource = { ...real, getManifest: async () => ({ bytes: other.bytes, mediaType: OCI_MANIFEST }), listReferrers: async () => listed };
    await assert.rejects(fetchSigstoreBundles(lying, subject), { code: 'DIGEST_MISMATCH' });
    // A list entry whose manifest names another subject is not a bundle of this image.
    const stranger = await sourceWith([{ artifactType: V03, subject: Digest.of(Buffer.from('another image')).toString() }]);
    const strangerList = [{ descriptor: { mediaType: OCI_MANIFEST, digest: Digest.parse(other.digest), size: other.bytes.length }, artifactType: V03 }];
    const misled: ImageSource = { ...stranger, listReferrers: async () => strangerList };
    assert.deepEqual(await fetchSigstoreBundles(misled, subject), []);
  });
});

describe('registries.d use-sigstore-attachments reaches the policy', () => {
  const ref = (s: string) => Reference.parseNormalized(s);

  it('is undefined unless a section says it; the first scope that says it wins', async () => {
    const config = await parseRegistriesDFile([
      'default-docker:',
      '  use-sigstore-attachments: true',
      'docker:',
      '  example.com/off:',
      '    use-sigstore-attachments: false',
      '  example.com/quiet:',
      '    lookaside: file:///tmp/x',
    ].join('\n'), 'd.yaml');
    assert.equal(sigstoreAttachmentsSetting(config, ref('example.com/off/app')), false);
    assert.equal(sigstoreAttachmentsSetting(config, ref('example.com/quiet/app')), true);
    const none = await parseRegistriesDFile('docker:\n  example.com:\n    lookaside: file:///tmp/x\n', 'e.yaml');
    assert.equal(sigstoreAttachmentsSetting(none, ref('example.com/app')), undefined);
    assert.equal(useSigstoreAttachments(none, ref('example.com/app')), false);
  });

  const gateSeeing = (policyJson: unknown, setting: boolean | undefined) => {
    const seen: PolicySubject[] = [];
    let asked = 0;
    const evaluator = { evaluate: async (_p: Policy, s: PolicySubject): Promise<PolicyVerdict> => {
      seen.push(s);
      return { scope: 'default', allowed: true, signed: false, requirements: [] };
    } } as unknown as ImagePolicy;
    const gate = new PolicyGate(async () => Policy.parse(JSON.stringify(policyJson)), evaluator, undefined, async () => {
      asked++;
      return setting;
    });
    return { gate, seen, asked: () => asked };
  };
  const subjectFor = (physical: Reference | undefined): PolicySubject => ({
    reference: physical, source: {} as ImageSource, physical, manifestDigest: subject, indexDigest: undefined,
  });
  const sigstorePolicy = { default: [{ type: 'sigstoreSigned', keyData: Buffer.from('k').toString('base64') }] };

  it('PolicyGate fills it from registries.d for a policy with a sigstoreSigned requirement', async () => {
    const g = gateSeeing(sigstorePolicy, false);
    await g.gate.judge(subjectFor(ref('example.com/off/app')));
    assert.equal(g.seen[0]?.sigstoreAttachments, false);
  });

  it('and does not read registries.d for other policies, or for an OCI layout', async () => {
    const g = gateSeeing({ default: [{ type: 'insecureAcceptAnything' }] }, false);
    await g.gate.judge(subjectFor(ref('example.com/off/app')));
    assert.equal(g.asked(), 0);
    assert.equal(g.seen[0]?.sigstoreAttachments, undefined);
    const layout = gateSeeing(sigstorePolicy, false);
    await layout.gate.judge(subjectFor(undefined));
    assert.equal(layout.asked(), 0);
  });
});
