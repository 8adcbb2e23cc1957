import { DecryptFailedError, UnsupportedError } from '../errors.js';
import type { Descriptor } from '../image/descriptor.js';
import { isEncryptedLayer } from '../image/media-types.js';
import { decodeBase64 } from './base64.js';
import { PublicLayerOptions } from './layer-options.js';

export const ENC_ANNOTATION_PREFIX = 'org.opencontainers.image.enc.';
export const KEYS_ANNOTATION_PREFIX = 'org.opencontainers.image.enc.keys.';
export const PUBOPTS_ANNOTATION = 'org.opencontainers.image.enc.pubopts';

/** One wrap scheme's recipients: `jwe`, `pkcs7`, `pgp`, `pkcs11` or `provider.<name>`. */
export interface WrappedKeys {
  readonly scheme: string;
  /** Every item wraps the same private options; any one that unwraps is enough. */
  readonly items: readonly Buffer[];
}

/**
 * What an encrypted layer descriptor says about its encryption: who can
 * unwrap its key, and the public half of its cipher options.
 */
export class LayerEncryption {
  private constructor(
    readonly wrapped: readonly WrappedKeys[],
    readonly pub: PublicLayerOptions,
    /** The media type of the plaintext blob. */
    readonly plainMediaType: string,
  ) {}

  static isEncrypted(desc: Descriptor): boolean {
    return isEncryptedLayer(desc.mediaType);
  }

  /** The wrap schemes a descriptor names, without decoding anything: safe to show. */
  static schemes(desc: Descriptor): string[] {
    return Object.keys(desc.annotations ?? {})
      .filter((k) => k.startsWith(KEYS_ANNOTATION_PREFIX))
      .map((k) => k.slice(KEYS_ANNOTATION_PREFIX.length))
      .sort();
  }

  static of(desc: Descriptor): LayerEncryption {
    const annotations = desc.annotations ?? {};
    const what = `layer ${desc.digest}`;
    const pubText = annotations[PUBOPTS_ANNOTATION];
    if (pubText === undefined) throw new DecryptFailedError(`${what} is encrypted but has no ${PUBOPTS_ANNOTATION} annotation`);
    const pubBytes = decodeBase64(pubText);
    if (!pubBytes) throw new DecryptFailedError(`${what}: ${PUBOPTS_ANNOTATION} is not base64`);
    const pub = PublicLayerOptions.parse(pubBytes);

    const wrapped: WrappedKeys[] = [];
    for (const [key, value] of Object.entries(annotations)) {
      if (!key.startsWith(KEYS_ANNOTATION_PREFIX)) continue;
      const scheme = key.slice(KEYS_ANNOTATION_PREFIX.length);
      const items: Buffer[] = [];
      for (const part of value.split(',')) {
        if (part.trim() === '') continue;
        const bytes = decodeBase64(part);
        if (!bytes) throw new DecryptFailedError(`${what}: a ${scheme} recipient is not base64`);
        items.push(bytes);
      }
      if (items.length) wrapped.push({ scheme, items });
    }
    if (wrapped.length === 0) throw new DecryptFailedError(`${what} is encrypted but names no wrapped key`);
    return new LayerEncryption(wrapped, pub, plainMediaType(desc.mediaType));
  }
}

/** ocicrypt only encrypts tar layers; strip the suffix and refuse anything else. */
function plainMediaType(mediaType: string): string {
  const plain = mediaType.slice(0, -'+encrypted'.length);
  if (plain === 'application/vnd.docker.image.rootfs.diff.tar.gzip') return plain;
  if (/^application\/vnd\.oci\.image\.layer\.(nondistributable\.)?v1\.tar(\+gzip|\+zstd)?$/.test(plain)) return plain;
  throw new UnsupportedError(`encrypted layer media type ${mediaType} is not a tar layer`);
}
