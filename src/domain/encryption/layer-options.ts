import { timingSafeEqual } from 'node:crypto';
import { DecryptFailedError } from '../errors.js';
import { Digest } from '../image/digest.js';
import { decodeBase64 } from './base64.js';
import { isObject, parseJsonObject } from '../image/json-fields.js';

/** The only layer cipher ocicrypt defines. */
export const LAYER_CIPHER = 'AES_256_CTR_HMAC_SHA256';

function bytesField(obj: Record<string, unknown>, key: string, length: number, what: string): Buffer {
  const v = obj[key];
  const bytes = typeof v === 'string' ? decodeBase64(v) : undefined;
  if (!bytes) throw new DecryptFailedError(`${what}: ${key} is missing or not base64`);
  if (bytes.length !== length) throw new DecryptFailedError(`${what}: ${key} must be ${length} bytes, not ${bytes.length}`);
  return bytes;
}

/** `org.opencontainers.image.enc.pubopts`: the cipher and the HMAC of the ciphertext. */
export class PublicLayerOptions {
  private constructor(readonly cipher: string, readonly hmac: Buffer, readonly cipherOptions: Readonly<Record<string, string>>) {}

  static parse(bytes: Buffer): PublicLayerOptions {
    const json = parseJsonObject(bytes, 'public layer options', (m) => new DecryptFailedError(m));
    if (json['cipher'] !== LAYER_CIPHER) {
      throw new DecryptFailedError(`unsupported layer cipher ${JSON.stringify(json['cipher'] ?? '')}; only ${LAYER_CIPHER} is defined`);
    }
    const hmac = bytesField(json, 'hmac', 32, 'public layer options');
    return new PublicLayerOptions(LAYER_CIPHER, hmac, stringMap(json['cipheroptions'], 'public layer options'));
  }

  /** Constant time: the comparison must not tell an attacker how many bytes matched. */
  hmacMatches(computed: Buffer): boolean {
    return computed.length === this.hmac.length && timingSafeEqual(computed, this.hmac);
  }
}

function stringMap(v: unknown, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new DecryptFailedError(`${what}: cipheroptions is not an object`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new DecryptFailedError(`${what}: cipheroptions.${k} is not a string`);
    out[k] = val;
  }
  return out;
}

/**
 * The wrapped secret of a layer ("privopts"): one 32-byte key used for both
 * AES-256-CTR and HMAC-SHA256, the initial 16-byte counter block, and the
 * digest of what was encrypted. Never logged, never written anywhere.
 */
export class PrivateLayerOptions {
  private constructor(readonly symkey: Buffer, readonly nonce: Buffer, readonly digest: Digest | undefined) {}

  /** `public` options win over private ones for a cipher option, as in ocicrypt. */
  static parse(bytes: Buffer, pub?: PublicLayerOptions): PrivateLayerOptions {
    // No parser message here: it could quote key bytes.
    const json = parseJsonObject(bytes, 'the unwrapped layer key', () => new DecryptFailedError('the unwrapped layer key is not ocicrypt private options JSON'));
    const symkey = bytesField(json, 'symkey', 32, 'private layer options');
    const options = { ...stringMap(json['cipheroptions'], 'private layer options'), ...(pub?.cipherOptions ?? {}) };
    const nonce = bytesField(options, 'nonce', 16, 'private layer options');
    let digest: Digest | undefined;
    if (typeof json['digest'] === 'string' && json['digest'] !== '') {
      try {
        digest = Digest.parse(json['digest']);
      } catch {
        throw new DecryptFailedError('private layer options: digest is not a digest');
      }
    }
    return new PrivateLayerOptions(symkey, nonce, digest);
  }
}
