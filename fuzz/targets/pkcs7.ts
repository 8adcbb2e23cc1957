/**
 * A layer's `pkcs7` recipient (Pkcs7KeyUnwrapper): DER CMS EnvelopedData
 * read by our own DER reader, then RSA key transport and AES content
 * decryption with the private key of fuzz/keys/ (made for fuzzing).
 */
import { readFileSync } from 'node:fs';
import { Pkcs7KeyUnwrapper, pkcs1v15Separator } from '../../src/adapters/outbound/keys/unwrappers/pkcs7-unwrapper.js';
import type { DecryptConfig } from '../../src/domain/encryption/decrypt-config.js';
import { attemptAsync, Finding } from '../lib/verdict.js';

const dc: DecryptConfig = {
  privateKeys: [{ bytes: readFileSync(new URL('../keys/rsa.pem', import.meta.url)) }],
  certificates: [],
  gpgPrivateKeys: [],
  providers: {},
};
const unwrapper = new Pkcs7KeyUnwrapper();

export async function fuzz(data: Buffer): Promise<void> {
  const sep = pkcs1v15Separator(data);
  if (!Number.isInteger(sep) || sep >= data.length) throw new Finding(`pkcs1v15Separator gave ${sep} for ${data.length} bytes`);
  await attemptAsync(() => unwrapper.unwrap(data, dc));
}
