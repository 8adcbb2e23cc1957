import type { Message, PrivateKey } from 'openpgp';

import type { DecryptConfig, KeyMaterial } from '../../../../domain/encryption/decrypt-config.js';
import { DecryptFailedError } from '../../../../domain/errors.js';
import type { KeyUnwrapper } from '../../../../ports/keys/key-unwrapper.js';
import { openpgp } from '../../openpgp-module.js';

// Unlocking runs the S2K once per keyring, not once per layer.
const unlocked = new WeakMap<KeyMaterial, Promise<PrivateKey[]>>();

const ARMOR = '-----BEGIN PGP ';

/**
 * `org.opencontainers.image.enc.keys.pgp`: a binary OpenPGP message to one or
 * more keys, whose literal data is the layer's private options. Keys are
 * secret keyrings (`gpg --export-secret-keys`, binary or armored).
 */
export class PgpKeyUnwrapper implements KeyUnwrapper {
  readonly scheme = 'pgp';

  hasKeys(dc: DecryptConfig): boolean {
    return dc.gpgPrivateKeys.length > 0;
  }

  async unwrap(item: Buffer, dc: DecryptConfig): Promise<Buffer | undefined> {
    const message = await parseMessage(item);
    const keys = (await Promise.all(dc.gpgPrivateKeys.map(keyringOf))).flat();
    if (keys.length === 0) return undefined;
    try {
      const { data } = await (await openpgp()).decrypt({ message, decryptionKeys: keys, format: 'binary', expectSigned: false });
      return Buffer.from(data);
    } catch {
      // No PKESK for these keys, or its session key does not decrypt: not ours.
      return undefined;
    }
  }
}

async function parseMessage(item: Buffer): Promise<Message<Uint8Array | string>> {
  try {
    if (item.subarray(0, 32).toString('latin1').trimStart().startsWith(ARMOR)) {
      return await (await openpgp()).readMessage({ armoredMessage: item.toString('utf8') });
    }
    return await (await openpgp()).readMessage({ binaryMessage: new Uint8Array(item) });
  } catch {
    throw new DecryptFailedError('pgp recipient is not an OpenPGP message');
  }
}

function keyringOf(k: KeyMaterial): Promise<PrivateKey[]> {
  let p = unlocked.get(k);
  if (!p) {
    p = unlock(k);
    unlocked.set(k, p);
  }
  return p;
}

/** The usable secret keys of one keyring; unreadable rings and keys that stay locked are skipped. */
async function unlock(k: KeyMaterial): Promise<PrivateKey[]> {
  let keys: PrivateKey[];
  try {
    keys = k.bytes.subarray(0, 64).toString('latin1').trimStart().startsWith(ARMOR)
      ? await (await openpgp()).readPrivateKeys({ armoredKeys: k.bytes.toString('utf8') })
      : await (await openpgp()).readPrivateKeys({ binaryKeys: new Uint8Array(k.bytes) });
  } catch {
    return [];
  }
  const passphrase = k.password && k.password.length > 0 ? k.password.toString('utf8') : undefined;
  const out: PrivateKey[] = [];
  for (const key of keys) {
    if (key.isDecrypted()) {
      out.push(key);
      continue;
    }
    if (passphrase === undefined) continue;
    try {
      out.push(await (await openpgp()).decryptKey({ privateKey: key, passphrase }));
    } catch {
      // Wrong passphrase for this key; another ring entry may still fit.
    }
  }
  return out;
}
