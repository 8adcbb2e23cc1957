import { constants, createDecipheriv, privateDecrypt, randomBytes, type CipherGCMTypes, type KeyObject } from 'node:crypto';
import type { DecryptConfig } from '../../../../domain/encryption/decrypt-config.js';
import { DecryptFailedError, UnsupportedError } from '../../../../domain/errors.js';
import type { KeyUnwrapper } from '../../../../ports/keys/key-unwrapper.js';
import { childrenOf, CONTEXT, is, oid, primitive, readAll, readSingle, smallInt, TAG, UNIVERSAL, type Tlv } from './der.js';
import { loadPrivateKeys } from './private-keys.js';

const OID_ENVELOPED_DATA = '1.2.840.113549.1.7.3';
const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';

interface ContentCipher {
  readonly mode: 'gcm' | 'cbc';
  /** Nominal key length of the OID, in bytes. */
  readonly keyLength: number;
}

const CONTENT_CIPHERS: Readonly<Record<string, ContentCipher>> = {
  '2.16.840.1.101.3.4.1.6': { mode: 'gcm', keyLength: 16 },
  '2.16.840.1.101.3.4.1.26': { mode: 'gcm', keyLength: 24 },
  '2.16.840.1.101.3.4.1.46': { mode: 'gcm', keyLength: 32 },
  '2.16.840.1.101.3.4.1.2': { mode: 'cbc', keyLength: 16 },
  '2.16.840.1.101.3.4.1.22': { mode: 'cbc', keyLength: 24 },
  '2.16.840.1.101.3.4.1.42': { mode: 'cbc', keyLength: 32 },
};

interface Envelope {
  /** encryptedKey of each rsaEncryption KeyTransRecipientInfo. */
  readonly wrappedKeys: readonly Buffer[];
  readonly cipher: ContentCipher;
  /** GCM nonce or CBC IV. */
  readonly iv: Buffer;
  readonly tagLength: number;
  readonly encrypted: Buffer;
}

const WHAT = 'pkcs7 recipient';
const GCM: Readonly<Record<number, CipherGCMTypes>> = { 16: 'aes-128-gcm', 24: 'aes-192-gcm', 32: 'aes-256-gcm' };

/**
 * `org.opencontainers.image.enc.keys.pkcs7`: a CMS EnvelopedData (RSA
 * PKCS#1 v1.5 key transport, AES-GCM content) holding the layer's private
 * options. Every RSA private key is tried on every recipient, so the
 * certificates are not needed to pick one.
 */
export class Pkcs7KeyUnwrapper implements KeyUnwrapper {
  readonly scheme = 'pkcs7';

  hasKeys(dc: DecryptConfig): boolean {
    return dc.privateKeys.length > 0;
  }

  async unwrap(item: Buffer, dc: DecryptConfig): Promise<Buffer | undefined> {
    const env = parseEnvelope(item);
    for (const key of loadPrivateKeys(dc.privateKeys)) {
      if (key.asymmetricKeyType !== 'rsa') continue;
      for (const wrapped of env.wrappedKeys) {
        const cek = unwrapCek(key, wrapped, env.cipher.keyLength);
        try {
          const plain = decryptContent(env, cek);
          if (plain) return plain;
        } finally {
          cek.fill(0);
        }
      }
    }
    return undefined;
  }
}

function parseEnvelope(item: Buffer): Envelope {
  const contentInfo = childrenOf(readSingle(item, WHAT), TAG.SEQUENCE, `${WHAT} ContentInfo`);
  if (oid(contentInfo[0], `${WHAT} contentType`) !== OID_ENVELOPED_DATA) throw new DecryptFailedError(`${WHAT} is not a CMS EnvelopedData`);
  const explicit = contentInfo[1];
  if (!is(explicit, CONTEXT, 0) || !explicit.constructed) throw new DecryptFailedError(`${WHAT}: EnvelopedData is missing`);
  const fields = childrenOf(readSingle(explicit.value, WHAT), TAG.SEQUENCE, `${WHAT} EnvelopedData`);
  // version, [0] originatorInfo OPTIONAL, recipientInfos, encryptedContentInfo, [1] unprotectedAttrs OPTIONAL
  let i = 1;
  if (is(fields[i], CONTEXT, 0)) i++;
  const recipientInfos = childrenOf(fields[i], TAG.SET, `${WHAT} recipientInfos`);
  const eci = childrenOf(fields[i + 1], TAG.SEQUENCE, `${WHAT} EncryptedContentInfo`);

  const wrappedKeys: Buffer[] = [];
  for (const ri of recipientInfos) {
    // KeyTransRecipientInfo is the only untagged choice; kari/kekri/pwri are [1]..[4].
    if (!is(ri, UNIVERSAL, TAG.SEQUENCE)) continue;
    const [, , keyAlg, encryptedKey] = childrenOf(ri, TAG.SEQUENCE, `${WHAT} KeyTransRecipientInfo`);
    const alg = childrenOf(keyAlg, TAG.SEQUENCE, `${WHAT} keyEncryptionAlgorithm`);
    if (oid(alg[0], `${WHAT} keyEncryptionAlgorithm`) !== OID_RSA_ENCRYPTION) continue;
    wrappedKeys.push(primitive(encryptedKey, TAG.OCTET_STRING, `${WHAT} encryptedKey`));
  }

  const contentAlg = childrenOf(eci[1], TAG.SEQUENCE, `${WHAT} contentEncryptionAlgorithm`);
  const algOid = oid(contentAlg[0], `${WHAT} contentEncryptionAlgorithm`);
  const cipher = CONTENT_CIPHERS[algOid];
  if (!cipher) throw new UnsupportedError(`${WHAT}: content encryption algorithm ${algOid} is not supported`);
  const { iv, tagLength } = cipher.mode === 'gcm' ? gcmParameters(contentAlg[1]) : { iv: primitive(contentAlg[1], TAG.OCTET_STRING, `${WHAT} CBC IV`), tagLength: 0 };
  if (cipher.mode === 'cbc' && iv.length !== 16) throw new DecryptFailedError(`${WHAT}: CBC IV must be 16 bytes`);

  return { wrappedKeys, cipher, iv, tagLength, encrypted: encryptedContent(eci[2]) };
}

/**
 * GCMParameters ::= SEQUENCE { nonce OCTET STRING, icvLen INTEGER DEFAULT 12 }.
 * Go's pkcs7 writes it with tag 0x10 (SEQUENCE without the constructed bit)
 * wrapping a whole DER SEQUENCE, and mozilla/fullsailor tags the nonce 0x84;
 * accept any of these.
 */
function gcmParameters(params: Tlv | undefined): { iv: Buffer; tagLength: number } {
  const what = `${WHAT} GCM parameters`;
  if (!is(params, UNIVERSAL, TAG.SEQUENCE)) throw new DecryptFailedError(`${what} are missing`);
  let inner = readAll(params.value, what);
  const only = inner[0];
  if (!params.constructed && inner.length === 1 && is(only, UNIVERSAL, TAG.SEQUENCE) && only.constructed) inner = readAll(only.value, what);
  const nonce = inner[0];
  if (!nonce || nonce.constructed) throw new DecryptFailedError(`${what}: no nonce`);
  if (nonce.value.length < 12 || nonce.value.length > 16) throw new DecryptFailedError(`${what}: nonce of ${nonce.value.length} bytes`);
  // Go ignores icvLen and always uses a 16-byte tag; honour an explicit value, default to Go.
  const tagLength = inner[1] ? smallInt(inner[1], `${what} icvLen`) : 16;
  if (tagLength < 12 || tagLength > 16) throw new DecryptFailedError(`${what}: ICV length ${tagLength}`);
  return { iv: nonce.value, tagLength };
}

/** `[0] IMPLICIT OCTET STRING`, primitive (0x80) or constructed from OCTET STRING pieces (0xa0). */
function encryptedContent(t: Tlv | undefined): Buffer {
  if (!is(t, CONTEXT, 0)) throw new DecryptFailedError(`${WHAT} has no encrypted content`);
  if (!t.constructed) return t.value;
  const pieces: Buffer[] = [];
  const collect = (parts: Tlv[]): void => {
    for (const p of parts) {
      if (!is(p, UNIVERSAL, TAG.OCTET_STRING)) throw new DecryptFailedError(`${WHAT}: encrypted content is not made of OCTET STRINGs`);
      if (p.constructed) collect(readAll(p.value, WHAT));
      else pieces.push(p.value);
    }
  };
  collect(readAll(t.value, WHAT));
  return Buffer.concat(pieces);
}

/**
 * RSAES-PKCS1-v1_5 decryption of the content-encryption key. Node 20 refuses
 * RSA_PKCS1_PADDING for private decryption (CVE-2023-46809), so the raw RSA
 * result is unpadded here, without early exits; on any padding error a random
 * key of the expected length stands in (RFC 3218 §2.3.2), so a bad padding and
 * a wrong key fail the same way: at the authenticated content decryption.
 */
function unwrapCek(key: KeyObject, wrapped: Buffer, expectedLength: number): Buffer {
  const fallback = randomBytes(expectedLength);
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (!bits) return fallback;
  const k = Math.ceil(bits / 8);
  if (wrapped.length > k) return fallback;
  // Some encoders drop leading zero octets of the RSA ciphertext.
  const input = wrapped.length === k ? wrapped : Buffer.concat([Buffer.alloc(k - wrapped.length), wrapped]);
  let em: Buffer;
  try {
    em = privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, input);
  } catch {
    return fallback;
  }
  try {
    const sep = pkcs1v15Separator(em);
    if (sep < 0) return fallback;
    const len = em.length - sep - 1;
    if (len !== 16 && len !== 24 && len !== 32) return fallback;
    return Buffer.from(em.subarray(sep + 1));
  } finally {
    em.fill(0);
  }
}

/** Index of the 0x00 after `00 02 PS`, PS at least 8 non-zero octets; -1 when the padding is bad. */
export function pkcs1v15Separator(em: Uint8Array): number {
  let bad = em[0]! | (em[1]! ^ 0x02);
  let found = 0;
  let sep = 0;
  for (let i = 2; i < em.length; i++) {
    // 1 when em[i] is zero, computed without a branch on the secret byte.
    const zero = ((em[i]! - 1) >>> 31) & 1;
    const first = zero & (found ^ 1);
    sep |= i & -first;
    found |= zero;
  }
  bad |= found ^ 1;
  bad |= (sep - 10) >>> 31;
  return bad === 0 && em.length >= 11 ? sep : -1;
}

function decryptContent(env: Envelope, cek: Buffer): Buffer | undefined {
  try {
    if (env.cipher.mode === 'gcm') {
      const name = GCM[cek.length];
      if (!name || env.encrypted.length < env.tagLength) return undefined;
      const body = env.encrypted.subarray(0, env.encrypted.length - env.tagLength);
      const tag = env.encrypted.subarray(env.encrypted.length - env.tagLength);
      const d = createDecipheriv(name, cek, env.iv, { authTagLength: env.tagLength });
      d.setAuthTag(tag);
      return Buffer.concat([d.update(body), d.final()]);
    }
    const d = createDecipheriv(`aes-${cek.length * 8}-cbc`, cek, env.iv);
    const plain = Buffer.concat([d.update(env.encrypted), d.final()]);
    // CBC has no integrity check: a wrong key can still unpad; privopts are a JSON object.
    return plain[0] === 0x7b ? plain : undefined;
  } catch {
    return undefined;
  }
}
