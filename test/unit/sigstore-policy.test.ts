/**
 * sigstoreSigned end to end inside the process: policy JSON, the image
 * policy, referrer bundles and `.sig` layers from an in-memory source, and
 * the real verifier (sigstore-js). Verdicts are read by code and check name.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NodeSigstoreVerifier } from '../../src/adapters/outbound/signatures/sigstore-verifier.js';
import { SignatureInvalidError } from '../../src/domain/errors.js';
import type { Digest } from '../../src/domain/image/digest.js';
import { Reference } from '../../src/domain/image/reference.js';
import { ImagePolicy, type PolicySubject, type RequirementVerdict } from '../../src/domain/policy/image-policy.js';
import { Policy } from '../../src/domain/policy/policy.js';
import { ReferrersSource } from '../helpers/referrers-source.js';
import {
  certificateAuthority, cosignKey, cosignPayload, cosignStatement, dsseBundle, leafCertificate, legacyKeylessAnnotations, messageBundle, rekorLog,
} from '../helpers/sigstore-material.js';

const EMAIL = 'signer@example.com';
const ISSUER = 'https://oidc.example.com';
const REPO = 'registry.example.com/team/app';
const ca = certificateAuthority();
const log = rekorLog();
const leaf = leafCertificate(ca, { email: EMAIL, oidcIssuer: ISSUER });
const key = cosignKey();

const policy = new ImagePolicy({
  resources: { load: async (uri) => { throw new Error(`unexpected load of ${uri}`); } },
  simpleSignatures: { getSignatures: async () => [] },
  simpleVerifier: { verify: async () => { throw new SignatureInvalidError('unused'); } },
  sigstoreVerifier: new NodeSigstoreVerifier(),
});

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const fulcioPolicy = (over: object = {}, extra: object = {}): Policy => Policy.parse(JSON.stringify({
  default: [{ type: 'sigstoreSigned', fulcio: { caData: b64(ca.chainPem), oidcIssuer: ISSUER, subjectEmail: EMAIL, ...over }, rekorPublicKeyData: b64(log.publicPem), ...extra }],
}));
const keyPolicy = (extra: object = {}): Policy => Policy.parse(JSON.stringify({
  default: [{ type: 'sigstoreSigned', keyData: b64(key.publicPem), rekorPublicKeyData: b64(log.publicPem), ...extra }],
}));

function subject(source: ReferrersSource, manifestDigest: Digest, over: Partial<PolicySubject> = {}): PolicySubject {
  const reference = Reference.parse(`${REPO}:v1`);
  return { reference, source, physical: reference, manifestDigest, indexDigest: undefined, ...over };
}

async function verdict(p: Policy, s: PolicySubject): Promise<RequirementVerdict> {
  const v = await policy.evaluate(p, s);
  assert.equal(v.requirements.length, 1);
  return v.requirements[0]!;
}

describe('sigstoreSigned with fulcio, pki and bundles', () => {
  it('a keyless bundle attached as a referrer is admitted; another identity is SIGNATURE_INVALID naming the check', async () => {
    const src = new ReferrersSource();
    const image = src.putImage();
    src.attachBundle(image, dsseBundle(cosignStatement(image.toString(), REPO), { signer: { certificate: leaf }, log }));
    const good = await verdict(fulcioPolicy(), subject(src, image));
    assert.equal(good.allowed, true, good.reason);
    assert.equal(good.signed, true);
    const email = await verdict(fulcioPolicy({ subjectEmail: 'other@example.com' }), subject(src, image));
    assert.deepEqual([email.allowed, email.code, email.checks], [false, 'SIGNATURE_INVALID', ['identity']]);
    const issuer = await verdict(fulcioPolicy({ oidcIssuer: 'https://other.example.com' }), subject(src, image));
    assert.deepEqual([issuer.code, issuer.checks], ['SIGNATURE_INVALID', ['identity']]);
  });

  it('a referrer listed without artifactType is read by its manifest', async () => {
    const src = new ReferrersSource();
    const image = src.putImage();
    src.attachBundle(image, dsseBundle(cosignStatement(image.toString(), REPO), { signer: { certificate: leaf }, log }), { listArtifactType: false });
    assert.equal((await verdict(fulcioPolicy(), subject(src, image))).allowed, true);
  });

  it('a statement for another digest: statement-subject', async () => {
    const src = new ReferrersSource();
    const image = src.putImage();
    const other = src.putImage('other');
    src.attachBundle(image, dsseBundle(cosignStatement(other.toString(), REPO), { signer: { certificate: leaf }, log }));
    const v = await verdict(fulcioPolicy(), subject(src, image));
    assert.deepEqual([v.allowed, v.code, v.checks], [false, 'SIGNATURE_INVALID', ['statement-subject']]);
  });

  it('an unsigned image: SIGNATURE_MISSING, attestations attached as bundles included', async () => {
    const src = new ReferrersSource();
    const image = src.putImage();
    src.attachBundle(image, dsseBundle(cosignStatement(image.toString(), REPO), { signer: { certificate: leaf }, log }), { predicateType: 'https://slsa.dev/provenance/v1' });
    assert.equal((await verdict(fulcioPolicy(), subject(src, image))).code, 'SIGNATURE_MISSING');
    assert.equal((await verdict(keyPolicy(), subject(src, image))).code, 'SIGNATURE_MISSING');
  });

  it('keyless .sig layers: admitted by the matching policy; under a key policy, key-kind; a keyed bundle under fulcio, key-kind', async () => {
    const src = new ReferrersSource();
    const image = src.putImage();
    const payload = cosignPayload(REPO, image.toString());
    src.attachSig(image, [{ payload, annotations: legacyKeylessAnnotations(payload, leaf, ca, { log }) }]);
    assert.equal((await verdict(fulcioPolicy(), subject(src, image))).allowed, true);
    const underKey = await verdict(keyPolicy(), subject(src, image));
    assert.deepEqual([underKey.code, underKey.checks], ['SIGNATURE_INVALID', ['key-kind']]);

    const keyed = new ReferrersSource();
    const img2 = keyed.putImage();
    keyed.attachBundle(img2, dsseBundle(cosignStatement(img2.toString(), REPO), { signer: { key }, log }));
    assert.equal((await verdict(keyPolicy(), subject(keyed, img2))).allowed, true);
    const underFulcio = await verdict(fulcioPolicy(), subject(keyed, img2));
    assert.deepEqual([underFulcio.code, underFulcio.checks], ['SIGNATURE_INVALID', ['key-kind']]);
  });

  it('registries.d use-sigstore-attachments: false reads neither the .sig tag nor the referrers', async () => {
    const src = new ReferrersSource();
    const image = src.putImage();
    const payload = cosignPayload(REPO, image.toString());
    src.attachSig(image, [{ payload, annotations: legacyKeylessAnnotations(payload, leaf, ca, { log }) }]);
    src.attachBundle(image, dsseBundle(cosignStatement(image.toString(), REPO), { signer: { certificate: leaf }, log }));
    assert.equal((await verdict(fulcioPolicy(), subject(src, image, { sigstoreAttachments: false }))).code, 'SIGNATURE_MISSING');
    assert.equal((await verdict(fulcioPolicy(), subject(src, image, { sigstoreAttachments: true }))).allowed, true);
    assert.equal((await verdict(fulcioPolicy(), subject(src, image))).allowed, true);
  });

  it('a bundle on the index admits a per-platform pull; one bad and one good signature admit', async () => {
    const src = new ReferrersSource();
    const image = src.putImage();
    const index = src.putImage('index');
    src.attachBundle(index, dsseBundle(cosignStatement(index.toString(), REPO), { signer: { certificate: leaf }, log }));
    assert.equal((await verdict(fulcioPolicy(), subject(src, image))).code, 'SIGNATURE_MISSING');
    assert.equal((await verdict(fulcioPolicy(), subject(src, image, { indexDigest: index }))).allowed, true);
    const stranger = leafCertificate(certificateAuthority('other'), { email: EMAIL, oidcIssuer: ISSUER });
    src.attachBundle(image, dsseBundle(cosignStatement(image.toString(), REPO), { signer: { certificate: stranger }, log }));
    assert.equal((await verdict(fulcioPolicy(), subject(src, image, { indexDigest: index }))).allowed, true);
    const onlyBad = await verdict(fulcioPolicy(), subject(src, image));
    assert.deepEqual([onlyBad.code, onlyBad.checks], ['SIGNATURE_INVALID', ['chain']]);
  });

  it('a message-signature bundle signs the manifest bytes', async () => {
    const src = new ReferrersSource();
    const image = src.putImage();
    const manifest = (await src.getManifest(image.toString())).bytes;
    src.attachBundle(image, messageBundle(manifest, { signer: { certificate: leaf }, log }));
    assert.equal((await verdict(fulcioPolicy(), subject(src, image))).allowed, true);
    const other = src.putImage('other');
    src.attachBundle(other, messageBundle(manifest, { signer: { certificate: leaf }, log }));
    const v = await verdict(fulcioPolicy(), subject(src, other));
    assert.deepEqual([v.code, v.checks], ['SIGNATURE_INVALID', ['statement-subject']]);
  });

  it('signedIdentity applies to the statement subject name with the digest', async () => {
    const src = new ReferrersSource();
    const image = src.putImage();
    src.attachBundle(image, dsseBundle(cosignStatement(image.toString(), REPO), { signer: { certificate: leaf }, log }));
    const same = { signedIdentity: { type: 'exactRepository', dockerRepository: REPO } };
    assert.equal((await verdict(fulcioPolicy({}, same), subject(src, image))).allowed, true);
    const other = { signedIdentity: { type: 'exactRepository', dockerRepository: 'registry.example.com/team/else' } };
    assert.equal((await verdict(fulcioPolicy({}, other), subject(src, image))).code, 'SIGNATURE_INVALID');
    // The default, without signedIdentity: a statement naming another repository is refused.
    const moved = new ReferrersSource();
    const img = moved.putImage();
    moved.attachBundle(img, dsseBundle(cosignStatement(img.toString(), 'registry.example.com/team/else'), { signer: { certificate: leaf }, log }));
    assert.equal((await verdict(fulcioPolicy(), subject(moved, img))).code, 'SIGNATURE_INVALID');
  });

  it('pki: admitted for the email, refused for another', async () => {
    const src = new ReferrersSource();
    const image = src.putImage();
    const pkiLeaf = leafCertificate(ca, { email: EMAIL, notBefore: Math.floor(Date.now() / 1000) - 60 });
    src.attachBundle(image, dsseBundle(cosignStatement(image.toString(), REPO), { signer: { certificate: pkiLeaf } }));
    const pki = (email: string): Policy => Policy.parse(JSON.stringify({
      default: [{ type: 'sigstoreSigned', pki: { caRootsData: b64(ca.rootPem), caIntermediatesData: b64(ca.intermediatePem), subjectEmail: email } }],
    }));
    assert.equal((await verdict(pki(EMAIL), subject(src, image))).allowed, true);
    const v = await verdict(pki('other@example.com'), subject(src, image));
    assert.deepEqual([v.code, v.checks], ['SIGNATURE_INVALID', ['identity']]);
  });
});
