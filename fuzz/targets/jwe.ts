/**
 * A layer's `jwe` recipient (JweKeyUnwrapper): JSON-serialized JWE, flattened
 * or general, tried with an RSA and an EC private key. The keys are
 * fuzz/keys/ (made for fuzzing, guarding nothing) so that seeds encrypted to
 * them reach decryption; an attacker can encrypt to a public key too.
 */
import { readFileSync } from 'node:fs';
import { JweKeyUnwrapper } from '../../src/adapters/outbound/keys/unwrappers/jwe-unwrapper.js';
import type { DecryptConfig } from '../../src/domain/encryption/decrypt-config.js';
import { attemptAsync } from '../lib/verdict.js';

const key = (name: string): Buffer => readFileSync(new URL(`../keys/${name}`, import.meta.url));
const dc: DecryptConfig = {
  privateKeys: [{ bytes: key('rsa.pem') }, { bytes: key('ec.pem') }],
  certificates: [],
  gpgPrivateKeys: [],
  providers: {},
};
const unwrapper = new JweKeyUnwrapper();

export async function fuzz(data: Buffer): Promise<void> {
  await attemptAsync(() => unwrapper.unwrap(data, dc));
}
