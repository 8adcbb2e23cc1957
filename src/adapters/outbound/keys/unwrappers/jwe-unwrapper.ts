import type { KeyObject } from 'node:crypto';
import { isObject } from '../../../../domain/image/json-fields.js';
import { errors, flattenedDecrypt, generalDecrypt, type DecryptOptions, type FlattenedJWE, type GeneralJWE, type JWEHeaderParameters } from 'jose';
import type { DecryptConfig } from '../../../../domain/encryption/decrypt-config.js';
import { DecryptFailedError } from '../../../../domain/errors.js';
import type { KeyUnwrapper } from '../../../../ports/keys/key-unwrapper.js';
import { loadPrivateKeys } from './private-keys.js';

// ocicrypt's decrypt acceptance list; RSA-OAEP is the SHA-1 variant skopeo writes.
const OPTIONS: DecryptOptions = {
  keyManagementAlgorithms: ['RSA-OAEP', 'RSA-OAEP-256', 'ECDH-ES+A128KW', 'ECDH-ES+A192KW', 'ECDH-ES+A256KW'],
  contentEncryptionAlgorithms: ['A128CBC-HS256', 'A192CBC-HS384', 'A256CBC-HS512', 'A128GCM', 'A192GCM', 'A256GCM'],
};

type Jwe = { readonly kind: 'flattened'; readonly jwe: FlattenedJWE } | { readonly kind: 'general'; readonly jwe: GeneralJWE };

const optString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const optHeader = (v: unknown): JWEHeaderParameters | undefined => (isObject(v) ? (v as JWEHeaderParameters) : undefined);

/**
 * `org.opencontainers.image.enc.keys.jwe`: a JSON-serialized JWE whose
 * plaintext is the layer's private options, for RSA or EC private keys.
 */
export class JweKeyUnwrapper implements KeyUnwrapper {
  readonly scheme = 'jwe';

  hasKeys(dc: DecryptConfig): boolean {
    return dc.privateKeys.length > 0;
  }

  async unwrap(item: Buffer, dc: DecryptConfig): Promise<Buffer | undefined> {
    const parsed = parseJwe(item);
    for (const key of loadPrivateKeys(dc.privateKeys)) {
      if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec') continue;
      const plaintext = await tryKey(parsed, key);
      if (plaintext) return plaintext;
    }
    return undefined;
  }
}

async function tryKey(parsed: Jwe, key: KeyObject): Promise<Buffer | undefined> {
  try {
    const result = parsed.kind === 'general' ? await generalDecrypt(parsed.jwe, key, OPTIONS) : await flattenedDecrypt(parsed.jwe, key, OPTIONS);
    return Buffer.from(result.plaintext);
  } catch (err) {
    // JWEInvalid never depends on the key: the item itself is broken.
    if (err instanceof errors.JWEInvalid) throw new DecryptFailedError(`jwe recipient is not a valid JWE: ${err.message}`);
    // Wrong key, a key of the wrong type, or an algorithm outside the list: not this key.
    return undefined;
  }
}

/** Flattened or general JSON serialization; go-jose's stray top-level `encrypted_key` in the general form is dropped. */
function parseJwe(item: Buffer): Jwe {
  let json: unknown;
  try {
    json = JSON.parse(item.toString('utf8'));
  } catch {
    throw new DecryptFailedError('jwe recipient is not JSON (compact JWE is not used by ocicrypt)');
  }
  if (!isObject(json)) throw new DecryptFailedError('jwe recipient is not a JSON object');
  const ciphertext = json['ciphertext'];
  if (typeof ciphertext !== 'string') throw new DecryptFailedError('jwe recipient has no ciphertext');
  const shared = {
    ciphertext,
    protected: optString(json['protected']),
    iv: optString(json['iv']),
    tag: optString(json['tag']),
    aad: optString(json['aad']),
    unprotected: optHeader(json['unprotected']),
  };
  const recipients = json['recipients'];
  if (recipients === undefined) {
    return { kind: 'flattened', jwe: { ...shared, encrypted_key: optString(json['encrypted_key']), header: optHeader(json['header']) } };
  }
  if (!Array.isArray(recipients) || recipients.length === 0 || !recipients.every(isObject)) {
    throw new DecryptFailedError('jwe recipient has a malformed recipients list');
  }
  const list = recipients.map((r) => ({ encrypted_key: optString(r['encrypted_key']), header: optHeader(r['header']) }));
  return { kind: 'general', jwe: { ...shared, recipients: list } };
}
