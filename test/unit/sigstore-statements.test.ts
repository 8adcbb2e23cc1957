/** The domain's reading of referrer bundles and in-toto statements, before and after the cryptography. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageTsError, SigstoreCheckError, type SigstoreCheck } from '../../src/domain/errors.js';
import { Digest } from '../../src/domain/image/digest.js';
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, statementClaim } from '../../src/domain/policy/in-toto-statement.js';
import { fetchSigstoreBundles } from '../../src/domain/policy/sigstore-bundles.js';
import type { ImageSource } from '../../src/ports/image-source/image-source.js';
import { ReferrersSource } from '../helpers/referrers-source.js';
import { BUNDLE_V03 } from '../helpers/sigstore-material.js';

const D = Digest.of(Buffer.from('image'));
const statement = (o: object): Buffer => Buffer.from(JSON.stringify({
  _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'r.example/app', digest: { sha256: D.encoded } }], predicateType: COSIGN_SIGN_PREDICATE, predicate: {}, ...o,
}));
const check = (c: SigstoreCheck) => (e: unknown): boolean => e instanceof SigstoreCheckError && e.check === c && e.code === 'SIGNATURE_INVALID';

describe('in-toto statements', () => {
  it('gives the subject name of the statement naming this digest (v1 and v0.1)', () => {
    assert.deepEqual(statementClaim(IN_TOTO_PAYLOAD_TYPE, statement({}), D), { name: 'r.example/app' });
    assert.deepEqual(statementClaim(IN_TOTO_PAYLOAD_TYPE, statement({ _type: 'https://in-toto.io/Statement/v0.1', subject: [{ digest: { sha256: D.encoded } }] }), D), { name: undefined });
  });

  it('refuses another digest, another predicate, another payload type or statement type', () => {
    const other = Digest.of(Buffer.from('other'));
    assert.throws(() => statementClaim(IN_TOTO_PAYLOAD_TYPE, statement({}), other), check('statement-subject'));
    assert.throws(() => statementClaim(IN_TOTO_PAYLOAD_TYPE, statement({ subject: [] }), D), check('format'));
    assert.throws(() => statementClaim(IN_TOTO_PAYLOAD_TYPE, statement({ predicateType: 'https://slsa.dev/provenance/v1' }), D), check('format'));
    assert.throws(() => statementClaim('application/json', statement({}), D), check('format'));
    assert.throws(() => statementClaim(IN_TOTO_PAYLOAD_TYPE, statement({ _type: 'x' }), D), check('format'));
    assert.throws(() => statementClaim(IN_TOTO_PAYLOAD_TYPE, Buffer.from('not json'), D), check('format'));
  });
});

describe('referrer bundles', () => {
  const bundle = { mediaType: BUNDLE_V03, bytes: Buffer.from('{"mediaType":"x"}') };

  it('reads the one bundle layer of each referrer naming the subject; none without listReferrers', async () => {
    const src = new ReferrersSource();
    const image = src.putImage();
    src.attachBundle(image, bundle);
    src.attachBundle(image, { mediaType: 'application/spdx+json', bytes: Buffer.from('{}') });
    const found = await fetchSigstoreBundles(src, image);
    assert.equal(found.length, 1);
    assert.deepEqual([found[0]!.mediaType, found[0]!.bytes.toString(), found[0]!.subject.toString()], [BUNDLE_V03, '{"mediaType":"x"}', image.toString()]);
    const layoutLike: ImageSource = { description: 'no referrers', getManifest: (r) => src.getManifest(r), getBlob: (d) => src.getBlob(d), close: async () => undefined };
    assert.deepEqual(await fetchSigstoreBundles(layoutLike, image), []);
  });

  it('skips a referrer whose manifest names another subject; refuses one whose bytes are not its digest', async () => {
    const src = new ReferrersSource();
    const image = src.putImage();
    const other = src.putImage('other');
    const ref = src.attachBundle(other, bundle);
    // The registry lists under `image` a referrer of `other`.
    const listed = await src.listReferrers(other);
    const lying = Object.assign(Object.create(src) as ReferrersSource, { listReferrers: async () => listed });
    assert.deepEqual(await fetchSigstoreBundles(lying, image), []);
    const swapped = Object.assign(Object.create(src) as ReferrersSource, {
      listReferrers: async () => listed,
      getManifest: async (r: string) => (r === ref.toString() ? { bytes: Buffer.from('{}'), mediaType: undefined } : src.getManifest(r)),
    });
    await assert.rejects(fetchSigstoreBundles(swapped, other), (e: unknown) => e instanceof ImageTsError && e.code === 'DIGEST_MISMATCH');
  });
});
