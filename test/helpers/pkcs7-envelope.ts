import { X509Certificate, constants, createCipheriv, publicEncrypt, randomBytes } from 'node:crypto';
import { readAll, readSingle } from '../../src/adapters/outbound/keys/unwrappers/der.js';

/** One DER TLV with a definite length. */
function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const value = Buffer.concat(parts);
  const n = value.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else if (n < 0x100) len = Buffer.from([0x81, n]);
  else if (n < 0x10000) len = Buffer.from([0x82, n >> 8, n & 0xff]);
  else len = Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, value]);
}

const OID = {
  envelopedData: '06092a864886f70d010703',
  data: '06092a864886f70d010701',
  rsaEncryption: '06092a864886f70d010101',
  aes256Gcm: '060960864801650304012e',
} as const;
const hex = (h: string): Buffer => Buffer.from(h, 'hex');

/**
 * A CMS EnvelopedData as ocicrypt's pkcs7 wrapper makes one: the plaintext
 * under AES-256-GCM (RFC 5084 parameters, 16-byte tag), its key encrypted to
 * the certificate's RSA key with PKCS#1 v1.5, one KeyTransRecipientInfo
 * naming the certificate by issuer and serial number.
 */
export function pkcs7Envelope(plain: Buffer, certPem: string | Buffer): Buffer {
  const cert = new X509Certificate(certPem);
  // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version, serialNumber, signature, issuer, ... } }
  const tbs = readAll(readSingle(cert.raw, 'certificate').value, 'certificate')[0]!;
  const [, serial, , issuer] = readAll(tbs.value, 'tbsCertificate');
  const cek = randomBytes(32);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', cek, nonce);
  const sealed = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  const encryptedKey = publicEncrypt({ key: cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, cek);
  cek.fill(0);

  const recipient = tlv(0x30,
    tlv(0x02, Buffer.from([0])), // version 0: issuerAndSerialNumber
    tlv(0x30, issuer!.raw, serial!.raw),
    tlv(0x30, hex(OID.rsaEncryption), tlv(0x05)),
    tlv(0x04, encryptedKey));
  const gcmParameters = tlv(0x30, tlv(0x04, nonce), tlv(0x02, Buffer.from([16])));
  const encryptedContentInfo = tlv(0x30,
    hex(OID.data),
    tlv(0x30, hex(OID.aes256Gcm), gcmParameters),
    tlv(0x80, sealed)); // [0] IMPLICIT OCTET STRING, last: its final 16 bytes are the GCM tag
  const envelopedData = tlv(0x30, tlv(0x02, Buffer.from([0])), tlv(0x31, recipient), encryptedContentInfo);
  return tlv(0x30, hex(OID.envelopedData), tlv(0xa0, envelopedData));
}
