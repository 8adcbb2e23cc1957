import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageTsError, SignatureInvalidError } from '../../src/domain/errors.js';
import { Digest } from '../../src/domain/image/digest.js';
import { Reference } from '../../src/domain/image/reference.js';
import { ImagePolicy, type PolicySubject } from '../../src/domain/policy/image-policy.js';
import { Policy } from '../../src/domain/policy/policy.js';
import { PolicyGate, admit } from '../../src/domain/policy/policy-gate.js';
import type { ImageSource } from '../../src/ports/image-source/image-source.js';
import type { SigstoreSignature } from '../../src/ports/signatures/signature-verifier.js';

const D1 = Digest.parse(`sha256:${'1'.repeat(64)}`);
const D2 = Digest.parse(`sha256:${'2'.repeat(64)}`);
const code = (c: string) => (e: unknown): boolean => e instanceof ImageTsError && e.code === c;

const simplePayload = (ref: string, digest: Digest) => Buffer.from(JSON.stringify({
  critical: { identity: { 'docker-reference': ref }, image: { 'docker-manifest-digest': digest.toString() }, type: 'atomic container signature' },
  optional: {},
}));
const cosignPayload = (ref: string, digest: Digest) => Buffer.from(JSON.stringify({
  critical: { identity: { 'docker-reference': ref }, image: { 'docker-manifest-digest': digest.toString() }, type: 'cosign container image signature' },
  optional: null,
}));

/** A signature is "valid" when its bytes start with `good:`; the payload follows. */
function fixture(opts: { simple?: Buffer[]; cosign?: Map<string, SigstoreSignature[]>; served?: Buffer[]; load?: (uri: string) => Promise<Buffer> } = {}) {
  const loaded: string[] = [];
  const source: ImageSource = {
    description: 'fake',
    getManifest: async () => { throw new Error('unused'); },
    getBlob: async () => { throw new Error('unused'); },
    close: async () => undefined,
    ...(opts.served ? { getSimpleSignatures: async () => opts.served } : {}),
  };
  // fetchCosignSignatures reads `sha256-<hex>.sig` manifests; feed it through a fake source instead.
  const cosignSource: ImageSource = {
    ...source,
    getManifest: async (ref) => {
      const sigs = opts.cosign?.get(ref);
      if (!sigs) throw new ImageTsError('NOT_FOUND', 'no such tag');
      const layers = sigs.map((s, i) => ({ mediaType: s.mimeType, digest: Digest.of(s.payload, 'sha256').toString(), size: s.payload.length, annotations: { ...s.annotations, i: String(i) } }));
      return { bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'0'.repeat(64)}`, size: 2 }, layers })), mediaType: 'application/vnd.oci.image.manifest.v1+json' };
    },
    getBlob: async (desc) => {
      const { Readable } = await import('node:stream');
      for (const sigs of opts.cosign?.values() ?? []) for (const s of sigs) if (Digest.of(s.payload, 'sha256').equals(desc.digest)) return Readable.from([s.payload]);
      throw new ImageTsError('NOT_FOUND', 'blob');
    },
  };
  const policy = new ImagePolicy({
    resources: { load: async (uri) => { loaded.push(uri); return opts.load ? opts.load(uri) : Buffer.from(`ring:${uri}`); } },
    simpleSignatures: { getSignatures: async () => opts.simple ?? [] },
    simpleVerifier: {
      verify: async (sig, rings) => {
        const text = sig.toString();
        if (!text.startsWith('good:')) throw new SignatureInvalidError('bad signature');
        if (!rings.some((r) => r.toString().includes('trusted'))) throw new SignatureInvalidError('unknown key');
        return { payload: Buffer.from(text.slice('good:'.length)), keyIdentity: 'ABCD' };
      },
    },
    sigstoreVerifier: {
      verify: async (sig, keys) => {
        if (sig.annotations['ok'] !== 'yes' || !keys.some((k) => k.toString() === 'cosign-key')) throw new SignatureInvalidError('cosign signature does not verify');
      },
      verifyKeyless: async () => {
        throw new SignatureInvalidError('keyless not modelled by this double');
      },
      verifyBundle: async () => {
        throw new SignatureInvalidError('bundles not modelled by this double');
      },
    },
  });
  return { policy, source: opts.cosign ? cosignSource : source, loaded };
}

const subject = (source: ImageSource, over: Partial<PolicySubject> = {}): PolicySubject => ({
  reference: Reference.parse('example.com/ns/app:v1'), source, physical: Reference.parse('example.com/ns/app:v1'), manifestDigest: D1, indexDigest: undefined, ...over,
});
const signedBy = (keyPath: string, extra: object = {}) => Policy.parse(JSON.stringify({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath, ...extra }] }));

describe('ImagePolicy', () => {
  it('one good signature among bad ones is enough; keys come through the resource loader', async () => {
    const f = fixture({ simple: [Buffer.from('junk'), Buffer.from(`good:${simplePayload('example.com/ns/app:v1', D1).toString()}`)] });
    const v = await f.policy.evaluate(signedBy('kbs:///default/keys/trusted'), subject(f.source));
    assert.deepEqual([v.allowed, v.signed, v.requirements[0]?.reason], [true, true, 'signed by ABCD']);
    assert.deepEqual(f.loaded, ['kbs:///default/keys/trusted']);
  });

  it('lists every reason when no signature passes; a missing one is SIGNATURE_MISSING', async () => {
    const f = fixture({ simple: [Buffer.from('junk'), Buffer.from(`good:${simplePayload('example.com/ns/app:v1', D2).toString()}`)] });
    const v = await f.policy.evaluate(signedBy('/trusted.gpg'), subject(f.source));
    assert.equal(v.allowed, false);
    assert.equal(v.requirements[0]?.code, 'SIGNATURE_INVALID');
    assert.match(v.requirements[0]!.reason, /None of the signatures were accepted, reasons: bad signature; Signature for docker digest/);
    const none = fixture();
    const m = await none.policy.evaluate(signedBy('/trusted.gpg'), subject(none.source));
    assert.equal(m.requirements[0]?.code, 'SIGNATURE_MISSING');
  });

  it('checks the identity against the logical reference', async () => {
    const sig = Buffer.from(`good:${simplePayload('example.com/ns/other:v1', D1).toString()}`);
    const f = fixture({ simple: [sig] });
    assert.equal((await f.policy.evaluate(signedBy('/trusted.gpg'), subject(f.source))).allowed, false);
    const mirrorSig = Buffer.from(`good:${simplePayload('example.com/ns/app:v1', D1).toString()}`);
    const g = fixture({ simple: [mirrorSig] });
    // Read from a mirror, judged as the name the user gave.
    const v = await g.policy.evaluate(signedBy('/trusted.gpg'), subject(g.source, { physical: Reference.parse('mirror.example/ns/app:v1') }));
    assert.equal(v.allowed, true);
  });

  it('prefers signatures the registry serves over the lookaside', async () => {
    const f = fixture({ simple: [], served: [Buffer.from(`good:${simplePayload('example.com/ns/app:v1', D1).toString()}`)] });
    assert.equal((await f.policy.evaluate(signedBy('/trusted.gpg'), subject(f.source))).allowed, true);
  });

  it('cosign: a signature of the index digest is accepted for a per-platform pull; identity defaults to the repository', async () => {
    const sig: SigstoreSignature = { mimeType: 'application/vnd.dev.cosign.simplesigning.v1+json', payload: cosignPayload('example.com/ns/app', D2), annotations: { ok: 'yes' } };
    const f = fixture({ cosign: new Map([[`sha256-${'2'.repeat(64)}.sig`, [sig]]]), load: async () => Buffer.from('cosign-key') });
    const p = Policy.parse(JSON.stringify({ default: [{ type: 'sigstoreSigned', keyPath: '/k.pub' }] }));
    assert.equal((await f.policy.evaluate(p, subject(f.source, { indexDigest: D2 }))).allowed, true);
    assert.equal((await f.policy.evaluate(p, subject(f.source))).requirements[0]?.code, 'SIGNATURE_MISSING', 'without the index, no .sig for the instance');
    const other = Policy.parse(JSON.stringify({ default: [{ type: 'sigstoreSigned', keyPath: '/k.pub', signedIdentity: { type: 'exactRepository', dockerRepository: 'example.com/ns/else' } }] }));
    assert.equal((await f.policy.evaluate(other, subject(f.source, { indexDigest: D2 }))).allowed, false);
  });

  it('reject, signedBaseLayer and non-GPG key types deny; keyless with no signature is SIGNATURE_MISSING', async () => {
    const f = fixture({ cosign: new Map() });
    const deny = async (json: object): Promise<string | undefined> => (await f.policy.evaluate(Policy.parse(JSON.stringify({ default: [json] })), subject(f.source))).requirements[0]?.code;
    assert.equal(await deny({ type: 'reject' }), 'POLICY_DENIED');
    assert.equal(await deny({ type: 'signedBaseLayer', baseLayerIdentity: { type: 'matchRepository' } }), 'POLICY_DENIED');
    assert.equal(await deny({ type: 'signedBy', keyType: 'X509Certificates', keyPath: '/x' }), 'POLICY_DENIED');
    assert.equal(await deny({ type: 'sigstoreSigned', fulcio: { caData: 'eA==', oidcIssuer: 'i', subjectEmail: 'e' }, rekorPublicKeyData: 'eA==' }), 'SIGNATURE_MISSING');
    assert.equal(await deny({ type: 'sigstoreSigned', pki: { caRootsData: 'eA==', subjectEmail: 'e' } }), 'SIGNATURE_MISSING');
  });

  it('a requirement that cannot load its key fails the pull with that error, not a denial', async () => {
    const f = fixture({ simple: [Buffer.from('good:x')], load: async () => { throw new ImageTsError('KEY_BROKER_UNAVAILABLE', 'down'); } });
    await assert.rejects(f.policy.evaluate(signedBy('kbs:///a/b/c'), subject(f.source)), code('KEY_BROKER_UNAVAILABLE'));
  });
});

describe('PolicyGate and admission', () => {
  it('enforce names the scope and requirement', async () => {
    const f = fixture();
    const gate = new PolicyGate(async () => Policy.parse(JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }], transports: { docker: { 'example.com/ns': [{ type: 'reject' }] } } })), f.policy);
    await assert.rejects(gate.check(subject(f.source), false, 'example.com/ns/app:v1'), (e: unknown) =>
      code('POLICY_DENIED')(e) && /scope "example.com\/ns", requirement reject/.test((e as Error).message));
  });
  it('the matrix: encrypted always; plaintext signed and unsigned as configured', () => {
    const off = { unencryptedSigned: false, unencryptedUnsigned: false };
    admit(true, false, off, 'x');
    admit(true, true, off, 'x');
    assert.throws(() => admit(false, true, off, 'x'), code('UNENCRYPTED_IMAGE_REJECTED'));
    assert.throws(() => admit(false, false, { unencryptedSigned: true, unencryptedUnsigned: false }, 'x'), code('UNENCRYPTED_IMAGE_REJECTED'));
    admit(false, true, { unencryptedSigned: true, unencryptedUnsigned: false }, 'x');
    admit(false, false, { unencryptedSigned: true, unencryptedUnsigned: true }, 'x');
  });
});
