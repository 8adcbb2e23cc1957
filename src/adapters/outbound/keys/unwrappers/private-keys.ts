import { createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { KeyMaterial } from '../../../../domain/encryption/decrypt-config.js';

// Parsed once per KeyMaterial object; dropped with the DecryptConfig that holds it.
const cache = new WeakMap<KeyMaterial, KeyObject | null>();

/**
 * The private keys among `keys` that node:crypto can open, in order. Accepts
 * what ocicrypt accepts (PEM PKCS#8 / PKCS#1, legacy-encrypted PEM, DER
 * PKCS#8 / PKCS#1 / SEC1, JWK with private members) and a little more
 * (SEC1 PEM, encrypted PKCS#8). Anything else is skipped, not an error:
 * the same list also feeds other schemes.
 */
export function loadPrivateKeys(keys: readonly KeyMaterial[]): KeyObject[] {
  const out: KeyObject[] = [];
  for (const k of keys) {
    let key = cache.get(k);
    if (key === undefined) {
      key = parsePrivateKey(k) ?? null;
      cache.set(k, key);
    }
    if (key) out.push(key);
  }
  return out;
}

export function parsePrivateKey(k: KeyMaterial): KeyObject | undefined {
  const { bytes } = k;
  // node:crypto treats an empty passphrase like none, and an unencrypted key ignores it.
  const passphrase = k.password && k.password.length > 0 ? k.password : undefined;
  const head = bytes.subarray(0, 64).toString('latin1').trimStart();
  if (bytes.includes('-----BEGIN ')) {
    return attempt(() => createPrivateKey({ key: bytes, format: 'pem', ...(passphrase ? { passphrase } : {}) }));
  }
  if (head.startsWith('{')) {
    const jwk = parseJwk(bytes);
    return jwk ? attempt(() => createPrivateKey({ key: jwk, format: 'jwk' })) : undefined;
  }
  return (
    attempt(() => createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8', ...(passphrase ? { passphrase } : {}) })) ??
    attempt(() => createPrivateKey({ key: bytes, format: 'der', type: 'pkcs1' })) ??
    attempt(() => createPrivateKey({ key: bytes, format: 'der', type: 'sec1' }))
  );
}

function parseJwk(bytes: Buffer): JsonWebKey | undefined {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const jwk = json as JsonWebKey;
  // A public JWK would load as a public key; ocicrypt wants the private members.
  return typeof jwk.d === 'string' ? jwk : undefined;
}

function attempt(load: () => KeyObject): KeyObject | undefined {
  try {
    const key = load();
    return key.type === 'private' ? key : undefined;
  } catch {
    return undefined;
  }
}
