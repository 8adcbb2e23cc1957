import { createCipheriv, createHmac, randomBytes } from 'node:crypto';

export interface EncryptedBlob {
  readonly ciphertext: Buffer;
  readonly privopts: Buffer;
  /** The pubopts annotation value, base64 as ocicrypt writes it. */
  readonly pubopts: string;
}

/** ocicrypt's layer cipher, written from the spec for test fixtures. */
export function encryptBlob(plain: Buffer, plainDigest: string): EncryptedBlob {
  const symkey = randomBytes(32);
  const nonce = randomBytes(16);
  const c = createCipheriv('aes-256-ctr', symkey, nonce);
  const ciphertext = Buffer.concat([c.update(plain), c.final()]);
  const hmac = createHmac('sha256', symkey).update(ciphertext).digest();
  const privopts = Buffer.from(JSON.stringify({ symkey: symkey.toString('base64'), digest: plainDigest, cipheroptions: { nonce: nonce.toString('base64') } }));
  const pubopts = Buffer.from(JSON.stringify({ cipher: 'AES_256_CTR_HMAC_SHA256', hmac: hmac.toString('base64'), cipheroptions: {} })).toString('base64');
  return { ciphertext, privopts, pubopts };
}

/** The Confidential Containers key provider's item: privopts sealed under a KEK held at `kid`. */
export function annotationPacket(kek: Buffer, privopts: Buffer, kid: string, wrapType: 'A256GCM' | 'A256CTR' = 'A256GCM'): Buffer {
  const iv = randomBytes(wrapType === 'A256GCM' ? 12 : 16);
  let wrapped: Buffer;
  if (wrapType === 'A256GCM') {
    const c = createCipheriv('aes-256-gcm', kek, iv);
    wrapped = Buffer.concat([c.update(privopts), c.final(), c.getAuthTag()]);
  } else {
    const c = createCipheriv('aes-256-ctr', kek, iv);
    wrapped = Buffer.concat([c.update(privopts), c.final()]);
  }
  return Buffer.from(JSON.stringify({ kid, wrapped_data: wrapped.toString('base64'), iv: iv.toString('base64'), wrap_type: wrapType }));
}

export const PROVIDER_AA = 'org.opencontainers.image.enc.keys.provider.attestation-agent';
export const PUBOPTS = 'org.opencontainers.image.enc.pubopts';
