import { InvalidArgumentError } from '../errors.js';

/** Key material with the password that opens it, if any. */
export interface KeyMaterial {
  readonly bytes: Buffer;
  readonly password?: Buffer | undefined;
}

/**
 * The keys one pull may use, as ocicrypt's DecryptConfig: private keys (PEM,
 * DER or JWK) for jwe and pkcs7, certificates for pkcs7, OpenPGP secret keys
 * for pgp, and parameters for named key providers. Held in memory only.
 */
export interface DecryptConfig {
  readonly privateKeys: readonly KeyMaterial[];
  readonly certificates: readonly Buffer[];
  readonly gpgPrivateKeys: readonly KeyMaterial[];
  /** `provider:NAME[:PARAMS]` gives NAME → [PARAMS], or the literal `Enabled`. */
  readonly providers: Readonly<Record<string, readonly Buffer[]>>;
}

export const EMPTY_DECRYPT_CONFIG: DecryptConfig = { privateKeys: [], certificates: [], gpgPrivateKeys: [], providers: {} };

export function mergeDecryptConfigs(...configs: readonly DecryptConfig[]): DecryptConfig {
  const providers: Record<string, Buffer[]> = {};
  for (const c of configs) for (const [k, v] of Object.entries(c.providers)) (providers[k] ??= []).push(...v);
  return {
    privateKeys: configs.flatMap((c) => c.privateKeys),
    certificates: configs.flatMap((c) => c.certificates),
    gpgPrivateKeys: configs.flatMap((c) => c.gpgPrivateKeys),
    providers,
  };
}

/** ocicrypt's parameter map, as a key provider receives it: every value base64. */
export function decryptParameters(dc: DecryptConfig): Record<string, string[]> {
  const b64 = (b: Buffer): string => b.toString('base64');
  const out: Record<string, string[]> = {};
  if (dc.privateKeys.length) {
    out['privkeys'] = dc.privateKeys.map((k) => b64(k.bytes));
    out['privkeys-passwords'] = dc.privateKeys.map((k) => b64(k.password ?? Buffer.alloc(0)));
  }
  if (dc.certificates.length) out['x509s'] = dc.certificates.map(b64);
  if (dc.gpgPrivateKeys.length) {
    out['gpg-privatekeys'] = dc.gpgPrivateKeys.map((k) => b64(k.bytes));
    out['gpg-privatekeys-passwords'] = dc.gpgPrivateKeys.map((k) => b64(k.password ?? Buffer.alloc(0)));
  }
  for (const [name, params] of Object.entries(dc.providers)) out[name] = params.map(b64);
  return out;
}

/** A `--decryption-key` argument, before any file is read. */
export type DecryptionKeySpec =
  | { readonly kind: 'file'; readonly path: string; readonly password?: { readonly kind: 'literal' | 'file'; readonly value: string } | undefined }
  | { readonly kind: 'provider'; readonly name: string; readonly params: string };

/**
 * `PATH`, `PATH:pass=PW`, `PATH:file=PWFILE` or `provider:NAME[:PARAMS]`, as
 * skopeo and ocicrypt spell them. A bare `PATH:PW` is read as a path, since
 * paths may contain colons; use `pass=`.
 */
export function parseDecryptionKey(text: string): DecryptionKeySpec {
  if (text.startsWith('provider:')) {
    const rest = text.slice('provider:'.length);
    const colon = rest.indexOf(':');
    const name = colon < 0 ? rest : rest.slice(0, colon);
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new InvalidArgumentError(`--decryption-key provider:NAME needs a provider name`);
    return { kind: 'provider', name, params: colon < 0 ? 'Enabled' : rest.slice(colon + 1) };
  }
  const m = /^(.*?):(pass|file)=(.*)$/s.exec(text);
  if (m) {
    if (m[1] === '') throw new InvalidArgumentError('--decryption-key needs a key file path');
    return { kind: 'file', path: m[1]!, password: { kind: m[2] === 'pass' ? 'literal' : 'file', value: m[3]! } };
  }
  if (text === '') throw new InvalidArgumentError('--decryption-key needs a key file path');
  return { kind: 'file', path: text };
}

export type KeyMaterialKind = 'certificate' | 'gpg-private-key' | 'private-key';

/** Which DecryptConfig list a key file belongs to, judged by its bytes as ocicrypt does. */
export function classifyKeyMaterial(bytes: Buffer): KeyMaterialKind {
  const head = bytes.subarray(0, 4096).toString('latin1');
  if (head.includes('-----BEGIN CERTIFICATE-----')) return 'certificate';
  if (head.includes('-----BEGIN PGP PRIVATE KEY BLOCK-----')) return 'gpg-private-key';
  // A binary OpenPGP secret-key packet: tag 5 in old (0x94-0x97) or new (0xc5) format.
  const first = bytes[0];
  if (first !== undefined && ((first & 0xfc) === 0x94 || first === 0xc5)) return 'gpg-private-key';
  return 'private-key';
}
