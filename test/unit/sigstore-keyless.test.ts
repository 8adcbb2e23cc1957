/**
 * Keyless and bundle verification, each verdict held to sigstore-js as
 * ground truth: the same material goes through sigstore-js directly, with a
 * trust root the test builds itself, and both must agree. Where image-ts is
 * deliberately stricter (hand-written checks), the test says so.
 */
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { bundleFromJSON } from '@sigstore/bundle';
import { X509Certificate } from '@sigstore/core';
import { Verifier, toSignedEntity, type TrustMaterial } from '@sigstore/verify';
import { NodeSigstoreVerifier } from '../../src/adapters/outbound/signatures/sigstore-verifier.js';
import { SignatureInvalidError, SigstoreCheckError, type SigstoreCheck } from '../../src/domain/errors.js';
import { Digest } from '../../src/domain/image/digest.js';
import type { SigstoreTrust } from '../../src/ports/signatures/sigstore-trust.js';
import {
  SIGNED_AT, SIMPLESIGNING_MEDIA_TYPE, certificateAuthority, cosignKey, cosignPayload, cosignStatement, dsseBundle, leafCertificate,
  legacyKeylessAnnotations, messageBundle, rekorLog, type CertificateAuthority, type MadeBundle, type RekorLog,
} from '../helpers/sigstore-material.js';
import { seededRandom } from '../helpers/seeded-random.js';

const EMAIL = 'signer@example.com';
const ISSUER = 'https://oidc.example.com';
const DIGEST = Digest.parse(`sha256:${'ab'.repeat(32)}`);
const ALWAYS = { start: new Date(0), end: new Date(8_640_000_000_000_000) };

const ca = certificateAuthority();
const log = rekorLog();
const leaf = leafCertificate(ca, { email: EMAIL, oidcIssuer: ISSUER });
const verifier = new NodeSigstoreVerifier();

const fulcio = (over: Partial<Extract<SigstoreTrust, { kind: 'fulcio' }>> = {}): SigstoreTrust => ({
  kind: 'fulcio', caCertificates: Buffer.from(ca.chainPem), oidcIssuer: ISSUER, subjectEmail: EMAIL, rekorPublicKeys: [Buffer.from(log.publicPem)], ...over,
});

interface Truth {
  readonly ca?: CertificateAuthority | undefined;
  readonly log?: RekorLog | undefined;
  readonly key?: KeyObject | undefined;
  readonly email?: string | undefined;
  readonly issuer?: string | undefined;
  readonly artifact?: Buffer | undefined;
}

/** sigstore-js alone, with a trust root made here (not by image-ts): does it accept the bundle? */
function sigstoreJsAccepts(json: unknown, t: Truth): boolean {
  const tm: TrustMaterial = {
    certificateAuthorities: t.ca ? [{ certChain: [X509Certificate.parse(Buffer.from(t.ca.root.der)), X509Certificate.parse(Buffer.from(t.ca.intermediate.der))], validFor: ALWAYS }] : [],
    timestampAuthorities: [],
    tlogs: t.log ? [{ logID: t.log.logId, baseURL: `https://${t.log.name}`, publicKey: t.log.key.publicKey, validFor: ALWAYS }] : [],
    ctlogs: [],
    publicKey: () => {
      if (!t.key) throw new Error('no key');
      return { publicKey: t.key, validFor: () => true };
    },
  };
  try {
    const v = new Verifier(tm, { ctlogThreshold: 0, tlogThreshold: t.log ? 1 : 0, timestampThreshold: t.ca && t.log ? 1 : 0 });
    const policy = t.email !== undefined ? { subjectAlternativeName: `^${t.email.replace(/[.+]/g, '\\$&')}$`, extensions: { issuer: t.issuer ?? ISSUER } } : undefined;
    v.verify(toSignedEntity(bundleFromJSON(json), t.artifact), policy);
    return true;
  } catch {
    return false;
  }
}

async function ours(b: { mediaType: string; bytes: Buffer }, trust: SigstoreTrust, artifact?: Buffer): Promise<SigstoreCheck | 'ok'> {
  try {
    await verifier.verifyBundle({ mediaType: b.mediaType, bytes: b.bytes, subject: DIGEST, artifact }, trust);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof SigstoreCheckError, `not a SigstoreCheckError: ${String(err)}`);
    assert.equal(err.code, 'SIGNATURE_INVALID');
    return err.check;
  }
}

/** The bundle JSON changed by `edit`, as new bytes. */
type Obj = Record<string, unknown>;
/** Walks into parsed JSON the test made itself (so the shape is known). */
const dig = (v: unknown, ...path: (string | number)[]): Obj => path.reduce<unknown>((cur, k) => (cur as Obj)[k], v) as Obj;

function tampered(b: MadeBundle, edit: (json: Obj) => void): { mediaType: string; bytes: Buffer; json: unknown } {
  const json = JSON.parse(b.bytes.toString('utf8')) as Obj;
  edit(json);
  return { mediaType: b.mediaType, bytes: Buffer.from(JSON.stringify(json)), json };
}

const flipB64 = (s: string, at = 10): string => {
  const b = Buffer.from(s, 'base64');
  b[at % b.length] = b[at % b.length]! ^ 0x01;
  return b.toString('base64');
};

describe('sigstore bundles (fulcio), against sigstore-js', () => {
  const good = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: leaf }, log });
  const truth: Truth = { ca, log, email: EMAIL };

  it('good: a DSSE v0.3 bundle with proof and promise passes both', async () => {
    assert.equal(sigstoreJsAccepts(good.json, truth), true);
    assert.equal(await ours(good, fulcio()), 'ok');
  });

  it('other email: identity', async () => {
    assert.equal(sigstoreJsAccepts(good.json, { ...truth, email: 'other@example.com' }), false);
    assert.equal(await ours(good, fulcio({ subjectEmail: 'other@example.com' })), 'identity');
    // A regular-expression look-alike of the email must not match (sigstore-js takes a pattern; image-ts anchors and escapes it).
    assert.equal(await ours(good, fulcio({ subjectEmail: 'signer@example.co' })), 'identity');
  });

  it('other issuer: identity', async () => {
    assert.equal(sigstoreJsAccepts(good.json, { ...truth, issuer: 'https://other.example.com' }), false);
    assert.equal(await ours(good, fulcio({ oidcIssuer: 'https://other.example.com' })), 'identity');
  });

  it('a log time outside the certificate window: validity-at-log-time', async () => {
    for (const t of [SIGNED_AT + 3600, SIGNED_AT - 3600]) {
      const b = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: leaf }, log, integratedTime: t });
      assert.equal(sigstoreJsAccepts(b.json, truth), false);
      assert.equal(await ours(b, fulcio()), 'validity-at-log-time');
    }
  });

  it('a flipped signature byte: signature', async () => {
    const b = tampered(good, (j) => {
      const sig = dig(j, 'dsseEnvelope', 'signatures', 0);
      sig['sig'] = flipB64(String(sig['sig']));
    });
    assert.equal(sigstoreJsAccepts(b.json, truth), false);
    assert.equal(await ours(b, fulcio()), 'signature');
  });

  it('a tampered inclusion proof: inclusion-proof', async () => {
    const b = tampered(good, (j) => {
      const hashes = dig(j, 'verificationMaterial', 'tlogEntries', 0, 'inclusionProof', 'hashes') as unknown as string[];
      hashes[0] = flipB64(hashes[0]!, 3);
    });
    assert.equal(sigstoreJsAccepts(b.json, truth), false);
    assert.equal(await ours(b, fulcio()), 'inclusion-proof');
  });

  it('a checkpoint signed by another log: inclusion-proof', async () => {
    const otherLog = rekorLog();
    const b = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: leaf }, log: otherLog, evidence: 'proof' });
    assert.equal(sigstoreJsAccepts(b.json, truth), false);
    assert.notEqual(await ours(b, fulcio()), 'ok');
  });

  it('a tampered SET (v0.1, promise only): set', async () => {
    const v1 = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: leaf, chain: [ca.intermediate, ca.root] }, log, version: '0.1', evidence: 'promise' });
    assert.equal(sigstoreJsAccepts(v1.json, truth), true);
    assert.equal(await ours(v1, fulcio()), 'ok');
    const b = tampered(v1, (j) => {
      const promise = dig(j, 'verificationMaterial', 'tlogEntries', 0, 'inclusionPromise');
      promise['signedEntryTimestamp'] = flipB64(String(promise['signedEntryTimestamp']), 20);
    });
    assert.equal(sigstoreJsAccepts(b.json, truth), false);
    assert.equal(await ours(b, fulcio()), 'set');
  });

  it('v0.2 bundles and message signatures verify too', async () => {
    const v2 = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: leaf, chain: [ca.intermediate] }, log, version: '0.2' });
    assert.equal(sigstoreJsAccepts(v2.json, truth), true);
    assert.equal(await ours(v2, fulcio()), 'ok');
    const manifest = Buffer.from('{"schemaVersion":2}');
    const m = messageBundle(manifest, { signer: { certificate: leaf }, log });
    assert.equal(sigstoreJsAccepts(m.json, { ...truth, artifact: manifest }), true);
    assert.equal(await ours(m, fulcio(), manifest), 'ok');
    // Another artifact: sigstore-js refuses the signature; image-ts first sees the digest is not this manifest's.
    assert.equal(sigstoreJsAccepts(m.json, { ...truth, artifact: Buffer.from('other') }), false);
    assert.equal(await ours(m, fulcio(), Buffer.from('other')), 'statement-subject');
  });

  it('the fulcio CA may be the root alone when the signature carries the intermediate, as containers/image allows', async () => {
    const rootOnly = fulcio({ caCertificates: Buffer.from(ca.rootPem) });
    const withChain = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: leaf, chain: [ca.intermediate, ca.root] }, log, version: '0.2' });
    // sigstore-js given root + intermediate agrees; with the root alone it cannot build the path (it never uses the bundle's chain).
    assert.equal(sigstoreJsAccepts(withChain.json, truth), true);
    assert.equal(await ours(withChain, rootOnly), 'ok');
    assert.equal(await ours(good, rootOnly), 'chain');
    // An intermediate the signature brings that no trusted CA issued extends nothing.
    const rogue = certificateAuthority('rogue');
    const rogueLeaf = leafCertificate(rogue, { email: EMAIL, oidcIssuer: ISSUER });
    const rogueChain = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: rogueLeaf, chain: [rogue.intermediate, rogue.root] }, log, version: '0.2' });
    assert.equal(await ours(rogueChain, rootOnly), 'chain');
    assert.equal(await ours(rogueChain, fulcio()), 'chain');
  });

  it('a leaf from another CA: chain', async () => {
    const other = certificateAuthority('other');
    const stranger = leafCertificate(other, { email: EMAIL, oidcIssuer: ISSUER });
    const b = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: stranger }, log });
    assert.equal(sigstoreJsAccepts(b.json, truth), false);
    assert.equal(await ours(b, fulcio()), 'chain');
  });

  it('no proof-only trusted time for a certificate: log-missing', async () => {
    const b = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: leaf }, log, evidence: 'proof' });
    assert.equal(sigstoreJsAccepts(b.json, truth), false);
    assert.equal(await ours(b, fulcio()), 'log-missing');
  });

  it('stricter than sigstore-js: v1 and v2 issuer extensions must both name the issuer', async () => {
    const split = leafCertificate(ca, { email: EMAIL, oidcIssuerV1: 'https://evil.example.com', oidcIssuerV2: ISSUER });
    const b = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: split }, log });
    assert.equal(sigstoreJsAccepts(b.json, truth), true, 'sigstore-js reads v2 only');
    assert.equal(await ours(b, fulcio()), 'identity');
    const v1only = leafCertificate(ca, { email: EMAIL, oidcIssuerV1: ISSUER, oidcIssuerV2: undefined });
    const c = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: v1only }, log });
    assert.equal(sigstoreJsAccepts(c.json, truth), true);
    assert.equal(await ours(c, fulcio()), 'ok');
  });

  it('a keyless signature under a policy that wants a key, and the reverse: key-kind', async () => {
    const key = cosignKey();
    assert.equal(sigstoreJsAccepts(good.json, { log, key: key.publicKey }), false);
    assert.equal(await ours(good, { kind: 'keys', publicKeys: [Buffer.from(key.publicPem)], rekorPublicKeys: [Buffer.from(log.publicPem)] }), 'key-kind');
    const keyed = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { key }, log });
    assert.equal(sigstoreJsAccepts(keyed.json, truth), false);
    assert.equal(await ours(keyed, fulcio()), 'key-kind');
  });
});

describe('sigstore bundles (keyed), against sigstore-js', () => {
  const key = cosignKey();
  const keyed = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { key }, log });
  const keys = (over: Partial<Extract<SigstoreTrust, { kind: 'keys' }>> = {}): SigstoreTrust => ({
    kind: 'keys', publicKeys: [Buffer.from(key.publicPem)], rekorPublicKeys: [Buffer.from(log.publicPem)], ...over,
  });

  it('good with and without Rekor keys; another key: signature; another log: refused', async () => {
    assert.equal(sigstoreJsAccepts(keyed.json, { log, key: key.publicKey }), true);
    assert.equal(await ours(keyed, keys()), 'ok');
    assert.equal(await ours(keyed, keys({ rekorPublicKeys: undefined })), 'ok');
    const other = cosignKey();
    assert.equal(sigstoreJsAccepts(keyed.json, { log, key: other.publicKey }), false);
    assert.equal(await ours(keyed, keys({ publicKeys: [Buffer.from(other.publicPem)] })), 'signature');
    assert.equal(await ours(keyed, keys({ publicKeys: [Buffer.from(other.publicPem), Buffer.from(key.publicPem)] })), 'ok');
    const otherLog = rekorLog();
    assert.equal(sigstoreJsAccepts(keyed.json, { log: otherLog, key: key.publicKey }), false);
    assert.notEqual(await ours(keyed, keys({ rekorPublicKeys: [Buffer.from(otherLog.publicPem)] })), 'ok');
  });
});

describe('legacy keyless .sig layers, against sigstore-js', () => {
  const payload = cosignPayload('registry.example.com/team/app', DIGEST.toString());
  const sig = (annotations: Record<string, string>) => ({ mimeType: SIMPLESIGNING_MEDIA_TYPE, payload, annotations });
  const check = async (annotations: Record<string, string>, trust: SigstoreTrust = fulcio()): Promise<SigstoreCheck | 'ok'> => {
    try {
      await verifier.verifyKeyless(sig(annotations), trust as Extract<SigstoreTrust, { kind: 'fulcio' | 'pki' }>);
      return 'ok';
    } catch (err) {
      assert.ok(err instanceof SigstoreCheckError, String(err));
      return err.check;
    }
  };
  /** The same layer as the message-signature v0.1 bundle sigstore-js would read. */
  const asBundle = (a: Record<string, string>): unknown => {
    const rekor = JSON.parse(a['dev.sigstore.cosign/bundle']!) as { SignedEntryTimestamp: string; Payload: { body: string; integratedTime: number; logIndex: number; logID: string } };
    const body = JSON.parse(Buffer.from(rekor.Payload.body, 'base64').toString()) as { kind: string; apiVersion: string };
    return {
      mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
      verificationMaterial: {
        x509CertificateChain: { certificates: [{ rawBytes: pemToBase64Der(a['dev.sigstore.cosign/certificate']!) }] },
        tlogEntries: [{
          logIndex: String(rekor.Payload.logIndex), logId: { keyId: Buffer.from(rekor.Payload.logID, 'hex').toString('base64') },
          kindVersion: { kind: body.kind, version: body.apiVersion }, integratedTime: String(rekor.Payload.integratedTime),
          inclusionPromise: { signedEntryTimestamp: rekor.SignedEntryTimestamp }, canonicalizedBody: rekor.Payload.body,
        }],
      },
      messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: Buffer.from(Digest.of(payload).encoded, 'hex').toString('base64') }, signature: a['dev.cosignproject.cosign/signature'] },
    };
  };
  const truth: Truth = { ca, log, email: EMAIL, artifact: payload };

  it('good, other email, other issuer, late log time', async () => {
    const good = legacyKeylessAnnotations(payload, leaf, ca, { log });
    assert.equal(sigstoreJsAccepts(asBundle(good), truth), true);
    assert.equal(await check(good), 'ok');
    assert.equal(sigstoreJsAccepts(asBundle(good), { ...truth, email: 'x@example.com' }), false);
    assert.equal(await check(good, fulcio({ subjectEmail: 'x@example.com' })), 'identity');
    assert.equal(sigstoreJsAccepts(asBundle(good), { ...truth, issuer: 'https://x' }), false);
    assert.equal(await check(good, fulcio({ oidcIssuer: 'https://x' })), 'identity');
    const late = legacyKeylessAnnotations(payload, leaf, ca, { log, integratedTime: SIGNED_AT + 7200 });
    assert.equal(sigstoreJsAccepts(asBundle(late), truth), false);
    assert.equal(await check(late), 'validity-at-log-time');
  });

  it('a flipped signature byte, a SET under another log, no bundle annotation', async () => {
    const good = legacyKeylessAnnotations(payload, leaf, ca, { log });
    const flipped = { ...good, 'dev.cosignproject.cosign/signature': flipB64(good['dev.cosignproject.cosign/signature']!) };
    assert.equal(sigstoreJsAccepts(asBundle(flipped), truth), false);
    assert.equal(await check(flipped), 'signature');
    const foreign = legacyKeylessAnnotations(payload, leaf, ca, { log: rekorLog() });
    assert.equal(sigstoreJsAccepts(asBundle(foreign), truth), false);
    assert.equal(await check(foreign), 'set');
    const { ['dev.sigstore.cosign/bundle']: _, ...unlogged } = good;
    assert.equal(await check(unlogged), 'log-missing');
  });

  it('stricter than sigstore-js: the log entry must bind this certificate, not only this signature', async () => {
    const otherLeaf = leafCertificate(ca, { email: 'other@example.com', oidcIssuer: ISSUER });
    const swapped = legacyKeylessAnnotations(payload, leaf, ca, { log, loggedCertificatePem: otherLeaf.pem });
    assert.equal(sigstoreJsAccepts(asBundle(swapped), truth), true, 'sigstore-js does not compare the logged certificate');
    assert.equal(await check(swapped), 'log-body');
  });

  it('a keyed .sig layer under fulcio: key-kind', async () => {
    const { ['dev.sigstore.cosign/certificate']: _, ...keyedLike } = legacyKeylessAnnotations(payload, leaf, ca, { log });
    assert.equal(await check(keyedLike), 'key-kind');
  });
});

describe('pki, its hand-written chain checked against sigstore-js', () => {
  const now = Math.floor(Date.now() / 1000);
  const pkiLeaf = leafCertificate(ca, { email: EMAIL, hostname: 'build.example.com', notBefore: now - 60 });
  const pki = (over: Partial<Extract<SigstoreTrust, { kind: 'pki' }>> = {}): SigstoreTrust => ({
    kind: 'pki', caRoots: Buffer.from(ca.rootPem), caIntermediates: Buffer.from(ca.intermediatePem), subjectEmail: EMAIL, subjectHostname: undefined, ...over,
  });
  // sigstore-js checks a chain only at a log time: the same leaf, logged now, gives it one to compare verdicts.
  const logged = (certificate = pkiLeaf) => dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate }, log, integratedTime: now });

  it('good with the policy intermediates, or with the chain the bundle carries', async () => {
    assert.equal(sigstoreJsAccepts(logged().json, { ca, log }), true);
    const b = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: pkiLeaf } });
    assert.equal(await ours(b, pki()), 'ok');
    assert.equal(await ours(b, pki({ subjectEmail: undefined, subjectHostname: 'build.example.com' })), 'ok');
    const withChain = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: pkiLeaf, chain: [ca.intermediate] }, version: '0.1' });
    assert.equal(await ours(withChain, pki({ caIntermediates: undefined })), 'ok');
    assert.equal(await ours(b, pki({ caIntermediates: undefined })), 'chain');
  });

  it('another CA: chain, as sigstore-js says', async () => {
    const other = certificateAuthority('other');
    const stranger = leafCertificate(other, { email: EMAIL, notBefore: now - 60 });
    assert.equal(sigstoreJsAccepts(logged(stranger).json, { ca, log }), false);
    assert.equal(await ours(dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: stranger } }), pki()), 'chain');
  });

  it('expired now: chain; other email or host: identity', async () => {
    const expired = leafCertificate(ca, { email: EMAIL, notBefore: now - 7200 });
    assert.equal(await ours(dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: expired } }), pki()), 'chain');
    const b = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: pkiLeaf } });
    assert.equal(await ours(b, pki({ subjectEmail: 'x@example.com' })), 'identity');
    assert.equal(await ours(b, pki({ subjectEmail: undefined, subjectHostname: 'other.example.com' })), 'identity');
  });

  it('a leaf for TLS servers, not code signing, is refused (pki and fulcio)', async () => {
    const server = leafCertificate(ca, { email: EMAIL, oidcIssuer: ISSUER, notBefore: now - 60, codeSigning: false });
    assert.equal(await ours(dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: server } }), pki()), 'chain');
    assert.equal(await ours(logged(server), fulcio()), 'chain');
  });
});

/** The leaf PEM annotation as base64 DER. */
function pemToBase64Der(pem: string): string {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64').toString('base64');
}

describe('untrusted bundle bytes', () => {
  const good = dsseBundle(cosignStatement(DIGEST.toString()), { signer: { certificate: leaf, chain: [ca.intermediate] }, log, version: '0.2' });
  const junk: readonly unknown[] = ['', 'AAAA', '!!', 7, -1, null, {}, [], true, 'x'.repeat(300), Buffer.from('garbage certificate').toString('base64')];

  /** Every leaf of the JSON, by path. */
  function leaves(v: unknown, path: (string | number)[] = []): (string | number)[][] {
    if (Array.isArray(v)) return v.flatMap((x, i) => leaves(x, [...path, i]));
    if (typeof v === 'object' && v !== null) return Object.entries(v).flatMap(([k, x]) => leaves(x, [...path, k]));
    return [path];
  }

  it('whatever field is replaced by whatever, the answer is SIGNATURE_INVALID or a pass, never another error', async () => {
    const random = seededRandom(15);
    const paths = leaves(JSON.parse(good.bytes.toString('utf8')));
    for (let i = 0; i < 150; i++) {
      const json = JSON.parse(good.bytes.toString('utf8')) as Obj;
      const path = paths[Math.floor(random() * paths.length)]!;
      const parent = dig(json, ...path.slice(0, -1));
      parent[path[path.length - 1]!] = junk[Math.floor(random() * junk.length)];
      for (const trust of [fulcio(), { kind: 'pki', caRoots: Buffer.from(ca.rootPem), caIntermediates: undefined, subjectEmail: EMAIL, subjectHostname: undefined } as const]) {
        try {
          await verifier.verifyBundle({ mediaType: good.mediaType, bytes: Buffer.from(JSON.stringify(json)), subject: DIGEST }, trust);
        } catch (err) {
          assert.ok(err instanceof SignatureInvalidError, `${path.join('.')}: ${String(err)}`);
        }
      }
    }
  });

  it('keyless .sig annotations replaced by junk are SIGNATURE_INVALID', async () => {
    const payload = cosignPayload('registry.example.com/team/app', DIGEST.toString());
    const good = legacyKeylessAnnotations(payload, leaf, ca, { log });
    for (const name of Object.keys(good)) {
      for (const value of ['', 'AAAA', '{}', '{"Payload":{}}', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n']) {
        // An empty chain is no chain: the fulcio CA comes from the policy alone.
        if (name === 'dev.sigstore.cosign/chain' && value === '') continue;
        await assert.rejects(
          verifier.verifyKeyless({ mimeType: SIMPLESIGNING_MEDIA_TYPE, payload, annotations: { ...good, [name]: value } }, fulcio() as Extract<SigstoreTrust, { kind: 'fulcio' }>),
          (err: unknown) => err instanceof SignatureInvalidError,
          `${name} = ${JSON.stringify(value)}`,
        );
      }
    }
  });
});
