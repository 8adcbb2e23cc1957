import assert from 'node:assert/strict';
import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { readPrivateKeys } from 'openpgp';
import { CONTEXT, readAll, readSingle, type Tlv } from '../../src/adapters/outbound/keys/unwrappers/der.js';
import { JweKeyUnwrapper } from '../../src/adapters/outbound/keys/unwrappers/jwe-unwrapper.js';
import { PgpKeyUnwrapper } from '../../src/adapters/outbound/keys/unwrappers/pgp-unwrapper.js';
import { Pkcs7KeyUnwrapper, pkcs1v15Separator } from '../../src/adapters/outbound/keys/unwrappers/pkcs7-unwrapper.js';
import { EMPTY_DECRYPT_CONFIG, type DecryptConfig, type KeyMaterial } from '../../src/domain/encryption/decrypt-config.js';
import { LayerDecipher } from '../../src/domain/encryption/layer-decipher.js';
import { LayerEncryption } from '../../src/domain/encryption/layer-encryption.js';
import { PrivateLayerOptions } from '../../src/domain/encryption/layer-options.js';
import { ImageTsError } from '../../src/domain/errors.js';
import type { KeyUnwrapper } from '../../src/ports/keys/key-unwrapper.js';
import {
  disposeTestKeys,
  encryptLayout,
  makeTestKeys,
  readFirstLayer,
  writeSourceLayout,
  type LayoutLayer,
  type SourceLayout,
  type TestKeys,
} from '../harness/encrypted-images.js';

const jwe = new JweKeyUnwrapper();
const pkcs7 = new Pkcs7KeyUnwrapper();
const pgp = new PgpKeyUnwrapper();

const dc = (privateKeys: KeyMaterial[], gpgPrivateKeys: KeyMaterial[] = [], certificates: Buffer[] = []): DecryptConfig => ({
  privateKeys,
  certificates,
  gpgPrivateKeys,
  providers: {},
});
const km = (bytes: Buffer | string, password?: string): KeyMaterial => ({
  bytes: Buffer.from(bytes),
  ...(password === undefined ? {} : { password: Buffer.from(password) }),
});

const items = (layer: LayoutLayer, scheme: string): readonly Buffer[] => {
  const found = LayerEncryption.of(layer.descriptor).wrapped.find((w) => w.scheme === scheme);
  assert.ok(found, `layer has ${scheme} recipients`);
  return found.items;
};

async function decryptLayer(layer: LayoutLayer, privopts: Buffer): Promise<{ plain: Buffer; priv: PrivateLayerOptions }> {
  const enc = LayerEncryption.of(layer.descriptor);
  const priv = PrivateLayerOptions.parse(privopts, enc.pub);
  const decipher = new LayerDecipher(priv, enc.pub);
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      chunks.push(chunk);
      done();
    },
  });
  // Odd-sized chunks so that the CTR stream crosses block boundaries.
  const parts: Buffer[] = [];
  for (let i = 0; i < layer.blob.length; i += 7) parts.push(layer.blob.subarray(i, i + 7));
  await pipeline(Readable.from(parts), decipher, sink);
  decipher.verify('test layer');
  return { plain: Buffer.concat(chunks), priv };
}

/** Unwraps the layer's first `scheme` item and decrypts the layer with it; returns the privopts. */
async function unwrapAndDecrypt(u: KeyUnwrapper, layer: LayoutLayer, config: DecryptConfig, src: SourceLayout): Promise<Buffer> {
  const [item] = items(layer, u.scheme);
  const privopts = await u.unwrap(item!, config);
  assert.ok(privopts, `${u.scheme}: a configured key unwraps the item`);
  const { plain, priv } = await decryptLayer(layer, privopts);
  assert.deepEqual(plain, src.layerBlob);
  assert.equal(priv.digest?.toString(), `sha256:${createHash('sha256').update(plain).digest('hex')}`);
  return privopts;
}

/** A broken item may be rejected with a typed error or simply not unwrap; anything else is a bug. */
async function undefinedOrClean(p: Promise<Buffer | undefined>, unchanged?: Buffer): Promise<void> {
  try {
    const got = await p;
    // Bytes no check covers (a recipient's issuer name, say) may change without harm, but never the result.
    if (got !== undefined && unchanged !== undefined) assert.deepEqual(got, unchanged);
    else assert.equal(got, undefined);
  } catch (err) {
    assert.ok(err instanceof ImageTsError, `expected ImageTsError, got ${String(err)}`);
    assert.ok(err.code === 'DECRYPT_FAILED' || err.code === 'UNSUPPORTED', err.code);
  }
}

const decryptFailed = (e: unknown): boolean => e instanceof ImageTsError && e.code === 'DECRYPT_FAILED';

// --- tiny DER writer, to re-encode skopeo's PKCS#7 in the other encodings producers use ---
function tlv(tag: number, value: Buffer): Buffer {
  const n = value.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, value]);
}

interface Pkcs7Parts {
  readonly envFields: Tlv[];
  readonly eci: Tlv[];
  readonly ciphertext: Buffer;
  readonly nonce: Buffer;
}

function splitPkcs7(item: Buffer): Pkcs7Parts {
  const [type, explicit] = readAll(readSingle(item, 't').value, 't');
  assert.equal(type!.raw.toString('hex'), '06092a864886f70d010703');
  const envFields = readAll(readSingle(explicit!.value, 't').value, 't');
  const eci = readAll(envFields[2]!.value, 't');
  const [, params] = readAll(eci[1]!.value, 't');
  // skopeo 1.9.3: 0x10 (primitive SEQUENCE) around a DER SEQUENCE, content as [0] constructed.
  assert.equal(params!.tag, 0x10);
  const nonce = readAll(readSingle(params!.value, 't').value, 't')[0]!.value;
  const content = eci[2]!;
  assert.ok(content.cls === CONTEXT && content.number === 0);
  const ciphertext = content.constructed ? Buffer.concat(readAll(content.value, 't').map((p) => p.value)) : content.value;
  return { envFields, eci, ciphertext, nonce };
}

function joinPkcs7(parts: Pkcs7Parts, algParams: Buffer, content: Buffer): Buffer {
  const alg = tlv(0x30, Buffer.concat([readAll(parts.eci[1]!.value, 't')[0]!.raw, algParams]));
  const eci = tlv(0x30, Buffer.concat([parts.eci[0]!.raw, alg, content]));
  const env = tlv(0x30, Buffer.concat([parts.envFields[0]!.raw, parts.envFields[1]!.raw, eci]));
  return tlv(0x30, Buffer.concat([Buffer.from('06092a864886f70d010703', 'hex'), tlv(0xa0, env)]));
}

describe('key unwrappers on layers encrypted by skopeo', () => {
  let work: string;
  let keys: TestKeys;
  let src: SourceLayout;
  // Filled by before(); every test runs after it.
  const layers = {} as Record<'rsa' | 'ec' | 'multi' | 'p7' | 'pgp' | 'pgpLocked', LayoutLayer>;
  let rsaKey: KeyObject;
  let ecKey: KeyObject;
  let otherRsa: KeyObject;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'image-ts-unwrap-'));
    keys = await makeTestKeys(join(work, 'keys'));
    src = await writeSourceLayout(join(work, 'src'));
    const jobs: [keyof typeof layers, string[], NodeJS.ProcessEnv?][] = [
      ['rsa', [`jwe:${keys.rsa.publicPem.path}`]],
      ['ec', [`jwe:${keys.ec.publicPem.path}`]],
      ['multi', [`jwe:${keys.rsa.publicPem.path}`, `jwe:${keys.ec.publicPem.path}`]],
      ['p7', [`pkcs7:${keys.x509.certPem.path}`]],
      ['pgp', [`pgp:${keys.gpg.email}`], { GNUPGHOME: keys.gpg.home }],
      ['pgpLocked', [`pgp:${keys.gpgLocked.email}`], { GNUPGHOME: keys.gpgLocked.home }],
    ];
    await Promise.all(
      jobs.map(async ([name, recipients, env]) => {
        const dir = join(work, name);
        await encryptLayout(src.ref, dir, recipients, env);
        layers[name] = await readFirstLayer(dir);
      }),
    );
    rsaKey = createPrivateKey(keys.rsa.pkcs8Pem.bytes);
    ecKey = createPrivateKey(keys.ec.pkcs8Pem.bytes);
    otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  });

  after(async () => {
    if (keys) await disposeTestKeys(keys);
    if (work) await rm(work, { recursive: true, force: true });
  });

  describe('jwe', () => {
    it('unwraps a flattened RSA-OAEP JWE and the layer decrypts', async () => {
      const [item] = items(layers.rsa, 'jwe');
      const json = JSON.parse(item!.toString('utf8')) as Record<string, unknown>;
      assert.equal(json['recipients'], undefined);
      assert.deepEqual(JSON.parse(Buffer.from(String(json['protected']), 'base64url').toString()), { alg: 'RSA-OAEP', enc: 'A256GCM' });
      await unwrapAndDecrypt(jwe, layers.rsa, dc([km(keys.rsa.pkcs8Pem.bytes)]), src);
    });

    it('unwraps a flattened ECDH-ES+A256KW JWE and the layer decrypts', async () => {
      const [item] = items(layers.ec, 'jwe');
      const header = JSON.parse(Buffer.from(String((JSON.parse(item!.toString()) as Record<string, unknown>)['protected']), 'base64url').toString()) as Record<string, unknown>;
      assert.equal(header['alg'], 'ECDH-ES+A256KW');
      await unwrapAndDecrypt(jwe, layers.ec, dc([km(keys.ec.pkcs8Pem.bytes)]), src);
    });

    it('unwraps the general form with two recipients through either key, ignoring the stray encrypted_key', async () => {
      const [item] = items(layers.multi, 'jwe');
      const json = JSON.parse(item!.toString('utf8')) as Record<string, unknown>;
      assert.ok(Array.isArray(json['recipients']) && json['recipients'].length === 2);
      assert.equal(typeof json['encrypted_key'], 'string', 'go-jose writes a top-level encrypted_key in the general form');
      const viaRsa = await unwrapAndDecrypt(jwe, layers.multi, dc([km(keys.rsa.pkcs1Pem.bytes)]), src);
      const viaEc = await unwrapAndDecrypt(jwe, layers.multi, dc([km(keys.ec.pkcs8Pem.bytes)]), src);
      assert.deepEqual(viaRsa, viaEc);
      // A nonsense stray member must not matter either.
      const tampered = Buffer.from(JSON.stringify({ ...json, encrypted_key: 'AAAA' }));
      assert.deepEqual(await jwe.unwrap(tampered, dc([km(keys.ec.pkcs8Pem.bytes)])), viaEc);
    });

    it('opens the RSA item with every private key format ocicrypt accepts', async () => {
      const [item] = items(layers.rsa, 'jwe');
      const expected = await jwe.unwrap(item!, dc([km(keys.rsa.pkcs8Pem.bytes)]));
      assert.ok(expected);
      const formats: Record<string, KeyMaterial> = {
        'PKCS#1 PEM': km(keys.rsa.pkcs1Pem.bytes),
        'PKCS#8 DER': km(rsaKey.export({ format: 'der', type: 'pkcs8' })),
        'PKCS#1 DER': km(rsaKey.export({ format: 'der', type: 'pkcs1' })),
        'JWK': km(JSON.stringify({ ...rsaKey.export({ format: 'jwk' }), alg: 'RSA-OAEP', kid: 'k1' })),
        'legacy-encrypted PEM': km(rsaKey.export({ format: 'pem', type: 'pkcs1', cipher: 'aes-256-cbc', passphrase: 'pw-1' }), 'pw-1'),
        'encrypted PKCS#8 PEM': km(rsaKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-128-cbc', passphrase: 'pw-2' }), 'pw-2'),
        'encrypted PKCS#8 DER': km(rsaKey.export({ format: 'der', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pw-3' }), 'pw-3'),
        'PEM with a password it does not need': km(keys.rsa.pkcs8Pem.bytes, 'unused'),
      };
      for (const [name, material] of Object.entries(formats)) {
        assert.deepEqual(await jwe.unwrap(item!, dc([material])), expected, name);
      }
    });

    it('opens the EC item with SEC1 DER and JWK keys', async () => {
      const [item] = items(layers.ec, 'jwe');
      const expected = await jwe.unwrap(item!, dc([km(keys.ec.pkcs8Pem.bytes)]));
      assert.ok(expected);
      assert.deepEqual(await jwe.unwrap(item!, dc([km(ecKey.export({ format: 'der', type: 'sec1' }))])), expected);
      assert.deepEqual(await jwe.unwrap(item!, dc([km(JSON.stringify(ecKey.export({ format: 'jwk' })))])), expected);
    });

    it('gives undefined for wrong keys, wrong passwords and unusable key files, and finds the right key among them', async () => {
      const [item] = items(layers.rsa, 'jwe');
      const encrypted = rsaKey.export({ format: 'pem', type: 'pkcs1', cipher: 'aes-256-cbc', passphrase: 'right' });
      const wrong: Record<string, KeyMaterial> = {
        'another RSA key': km(otherRsa.export({ format: 'pem', type: 'pkcs8' })),
        'an EC key': km(keys.ec.pkcs8Pem.bytes),
        'no password': km(encrypted),
        'wrong password': km(encrypted, 'wrong'),
        'a public key': km(keys.rsa.publicPem.bytes),
        'a public JWK': km(JSON.stringify(createPrivateKey(keys.rsa.pkcs8Pem.bytes).export({ format: 'jwk' })).replace(/"(d|p|q|dp|dq|qi)":"[^"]*",?/g, '')),
        'a certificate': km(keys.x509.certPem.bytes),
        'garbage': km(Buffer.from('not a key at all')),
      };
      for (const [name, material] of Object.entries(wrong)) assert.equal(await jwe.unwrap(item!, dc([material])), undefined, name);
      const all = Object.values(wrong);
      assert.ok(await jwe.unwrap(item!, dc([...all, km(keys.rsa.pkcs8Pem.bytes)])));
      // The EC item with only RSA keys configured:
      assert.equal(await jwe.unwrap(items(layers.ec, 'jwe')[0]!, dc([km(keys.rsa.pkcs8Pem.bytes)])), undefined);
    });

    it('treats corrupted items as not unwrappable or as DECRYPT_FAILED, never a raw crash', async () => {
      const [item] = items(layers.rsa, 'jwe');
      const config = dc([km(keys.rsa.pkcs8Pem.bytes)]);
      const json = JSON.parse(item!.toString('utf8')) as Record<string, string>;
      const flip = (s: string): string => (s[5] === 'A' ? `${s.slice(0, 5)}B${s.slice(6)}` : `${s.slice(0, 5)}A${s.slice(6)}`);
      for (const field of ['ciphertext', 'tag', 'iv', 'encrypted_key', 'protected']) {
        await undefinedOrClean(jwe.unwrap(Buffer.from(JSON.stringify({ ...json, [field]: flip(json[field]!) })), config));
      }
      assert.equal(await jwe.unwrap(Buffer.from(JSON.stringify({ ...json, ciphertext: flip(json['ciphertext']!) })), config), undefined);
      await assert.rejects(jwe.unwrap(Buffer.from('not json'), config), decryptFailed);
      await assert.rejects(jwe.unwrap(Buffer.from('[1,2]'), config), decryptFailed);
      await assert.rejects(jwe.unwrap(Buffer.from(JSON.stringify({ ...json, ciphertext: 5 })), config), decryptFailed);
      await assert.rejects(jwe.unwrap(Buffer.from(JSON.stringify({ ...json, recipients: [] })), config), decryptFailed);
      await undefinedOrClean(jwe.unwrap(Buffer.from(JSON.stringify({ ...json, protected: Buffer.from('{"alg":"dir","enc":"A256GCM"}').toString('base64url') })), config));
      await undefinedOrClean(jwe.unwrap(item!.subarray(0, item!.length - 10), config));
    });

    it('hasKeys needs private keys', () => {
      assert.equal(jwe.hasKeys(EMPTY_DECRYPT_CONFIG), false);
      assert.equal(jwe.hasKeys(dc([], [km(keys.gpg.secretKeyring.bytes)])), false);
      assert.equal(jwe.hasKeys(dc([km(keys.rsa.pkcs8Pem.bytes)])), true);
    });
  });

  describe('pkcs7', () => {
    it('unwraps skopeo 1.9.3 EnvelopedData (tag 0x10 parameters, constructed [0]) and the layer decrypts', async () => {
      const [item] = items(layers.p7, 'pkcs7');
      const parts = splitPkcs7(item!);
      assert.equal(parts.nonce.length, 12);
      await unwrapAndDecrypt(pkcs7, layers.p7, dc([km(keys.x509.keyPem.bytes)], [], [keys.x509.certPem.bytes]), src);
      // The certificate only helps Go pick a recipient; the key alone is enough.
      await unwrapAndDecrypt(pkcs7, layers.p7, dc([km(keys.x509.keyPem.bytes)]), src);
    });

    it('accepts the other encodings producers use for the GCM parameters and the encrypted content', async () => {
      const [item] = items(layers.p7, 'pkcs7');
      const config = dc([km(keys.x509.keyPem.bytes)]);
      const expected = await pkcs7.unwrap(item!, config);
      assert.ok(expected);
      const parts = splitPkcs7(item!);
      const derParams = tlv(0x30, Buffer.concat([tlv(0x04, parts.nonce), Buffer.from([0x02, 0x01, 0x10])]));
      const quirkParams = tlv(0x10, derParams);
      const bareParams = tlv(0x30, tlv(0x04, parts.nonce)); // icvLen absent: Go still uses 16
      const primitiveContent = tlv(0x80, parts.ciphertext);
      const cut = 50;
      const piecewise = tlv(0xa0, Buffer.concat([tlv(0x04, parts.ciphertext.subarray(0, cut)), tlv(0x04, parts.ciphertext.subarray(cut))]));
      const variants: Record<string, Buffer> = {
        'smallstep: quirk params, primitive [0]': joinPkcs7(parts, quirkParams, primitiveContent),
        'RFC 5084 params, primitive [0]': joinPkcs7(parts, derParams, primitiveContent),
        'RFC 5084 params without icvLen': joinPkcs7(parts, bareParams, primitiveContent),
        'content in two OCTET STRINGs': joinPkcs7(parts, quirkParams, piecewise),
      };
      for (const [name, variant] of Object.entries(variants)) assert.deepEqual(await pkcs7.unwrap(variant, config), expected, name);
    });

    it('gives undefined for keys that do not fit', async () => {
      const [item] = items(layers.p7, 'pkcs7');
      assert.equal(await pkcs7.unwrap(item!, dc([km(keys.rsa.pkcs8Pem.bytes)])), undefined);
      assert.equal(await pkcs7.unwrap(item!, dc([km(keys.ec.pkcs8Pem.bytes), km('junk')])), undefined);
      assert.equal(await pkcs7.unwrap(item!, EMPTY_DECRYPT_CONFIG), undefined);
      assert.ok(await pkcs7.unwrap(item!, dc([km(keys.rsa.pkcs8Pem.bytes), km(keys.ec.pkcs8Pem.bytes), km(keys.x509.keyPem.bytes)])));
    });

    it('treats corrupted items as not unwrappable or as DECRYPT_FAILED', async () => {
      const [item] = items(layers.p7, 'pkcs7');
      const config = dc([km(keys.x509.keyPem.bytes)]);
      const flipAt = (i: number): Buffer => {
        const b = Buffer.from(item!);
        b[i] = b[i]! ^ 0x01;
        return b;
      };
      // Last byte: GCM tag. Around the middle of the RecipientInfo: the RSA ciphertext.
      assert.equal(await pkcs7.unwrap(flipAt(item!.length - 1), config), undefined);
      assert.equal(await pkcs7.unwrap(flipAt(200), config), undefined);
      const good = await pkcs7.unwrap(item!, config);
      for (let i = 0; i < item!.length; i += 3) await undefinedOrClean(pkcs7.unwrap(flipAt(i), config), good);
      await assert.rejects(pkcs7.unwrap(item!.subarray(0, 100), config), decryptFailed);
      await assert.rejects(pkcs7.unwrap(Buffer.from('{"not":"der"}'), config), decryptFailed);
      await assert.rejects(pkcs7.unwrap(Buffer.alloc(0), config), decryptFailed);
    });

    it('removes PKCS#1 v1.5 padding and rejects bad padding', () => {
      const em = (body: number[]): Uint8Array => Uint8Array.from(body);
      const ps = Array.from({ length: 8 }, () => 0xab);
      assert.equal(pkcs1v15Separator(em([0, 2, ...ps, 0, 1, 2, 3])), 10);
      assert.equal(pkcs1v15Separator(em([0, 2, ...ps, 7, 0, 0, 1])), 11);
      assert.equal(pkcs1v15Separator(em([1, 2, ...ps, 0, 1, 2, 3])), -1, 'first octet');
      assert.equal(pkcs1v15Separator(em([0, 1, ...ps, 0, 1, 2, 3])), -1, 'block type');
      assert.equal(pkcs1v15Separator(em([0, 2, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3])), -1, 'PS shorter than 8');
      assert.equal(pkcs1v15Separator(em([0, 2, ...ps, 1, 2, 3])), -1, 'no separator');
    });

    it('hasKeys needs private keys', () => {
      assert.equal(pkcs7.hasKeys(EMPTY_DECRYPT_CONFIG), false);
      assert.equal(pkcs7.hasKeys(dc([], [], [keys.x509.certPem.bytes])), false);
      assert.equal(pkcs7.hasKeys(dc([km(keys.x509.keyPem.bytes)])), true);
    });
  });

  describe('pgp', () => {
    it('unwraps with a binary secret keyring and the layer decrypts', async () => {
      await unwrapAndDecrypt(pgp, layers.pgp, dc([], [km(keys.gpg.secretKeyring.bytes)]), src);
    });

    it('unwraps with a passphrase-protected keyring when the passphrase is given', async () => {
      await unwrapAndDecrypt(pgp, layers.pgpLocked, dc([], [km(keys.gpgLocked.secretKeyring.bytes, keys.gpgLocked.passphrase)]), src);
      const [item] = items(layers.pgpLocked, 'pgp');
      assert.equal(await pgp.unwrap(item!, dc([], [km(keys.gpgLocked.secretKeyring.bytes)])), undefined, 'no passphrase');
      assert.equal(await pgp.unwrap(item!, dc([], [km(keys.gpgLocked.secretKeyring.bytes, 'wrong')])), undefined, 'wrong passphrase');
    });

    it('accepts armored keyrings and keyrings holding several keys', async () => {
      const [item] = items(layers.pgp, 'pgp');
      const [lockedItem] = items(layers.pgpLocked, 'pgp');
      const expected = await pgp.unwrap(item!, dc([], [km(keys.gpg.secretKeyring.bytes)]));
      assert.ok(expected);
      const [key] = await readPrivateKeys({ binaryKeys: new Uint8Array(keys.gpg.secretKeyring.bytes) });
      assert.deepEqual(await pgp.unwrap(item!, dc([], [km(key!.armor())])), expected);
      const both = km(Buffer.concat([keys.gpgLocked.secretKeyring.bytes, keys.gpg.secretKeyring.bytes]), keys.gpgLocked.passphrase);
      assert.deepEqual(await pgp.unwrap(item!, dc([], [both])), expected);
      assert.ok(await pgp.unwrap(lockedItem!, dc([], [both])));
    });

    it('gives undefined for another key', async () => {
      const [item] = items(layers.pgp, 'pgp');
      assert.equal(await pgp.unwrap(item!, dc([], [km(keys.gpgLocked.secretKeyring.bytes, keys.gpgLocked.passphrase)])), undefined);
      assert.equal(await pgp.unwrap(item!, dc([], [km('not a keyring')])), undefined);
      assert.equal(await pgp.unwrap(item!, dc([km(keys.rsa.pkcs8Pem.bytes)])), undefined);
    });

    it('treats corrupted items as not unwrappable or as DECRYPT_FAILED', async () => {
      const [item] = items(layers.pgp, 'pgp');
      const config = dc([], [km(keys.gpg.secretKeyring.bytes)]);
      await assert.rejects(pgp.unwrap(Buffer.from('definitely not OpenPGP'), config), decryptFailed);
      await undefinedOrClean(pgp.unwrap(item!.subarray(0, item!.length - 20), config));
      for (const i of [5, 100, item!.length - 30, item!.length - 1]) {
        const b = Buffer.from(item!);
        b[i] = b[i]! ^ 0x40;
        await undefinedOrClean(pgp.unwrap(b, config));
      }
    });

    it('hasKeys needs OpenPGP secret keys', () => {
      assert.equal(pgp.hasKeys(EMPTY_DECRYPT_CONFIG), false);
      assert.equal(pgp.hasKeys(dc([km(keys.rsa.pkcs8Pem.bytes)])), false);
      assert.equal(pgp.hasKeys(dc([], [km(keys.gpg.secretKeyring.bytes)])), true);
    });
  });
});
