import type { DecryptConfig } from '../../domain/encryption/decrypt-config.js';

/**
 * Unwraps a layer's private options with local keys, for one annotation
 * scheme (`jwe`, `pkcs7`, `pgp`). Returns undefined when no configured key
 * fits the item, so that the next key or scheme can be tried; throws only for
 * an item that is not that scheme at all.
 */
export interface KeyUnwrapper {
  readonly scheme: string;
  /** Whether the config holds any key this scheme can use. */
  hasKeys(dc: DecryptConfig): boolean;
  unwrap(item: Buffer, dc: DecryptConfig): Promise<Buffer | undefined>;
}
