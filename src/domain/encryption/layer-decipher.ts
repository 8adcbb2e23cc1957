import { createDecipheriv, createHmac, type Decipher, type Hmac } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DecryptFailedError } from '../errors.js';
import type { PrivateLayerOptions, PublicLayerOptions } from './layer-options.js';

/**
 * AES-256-CTR over the ciphertext stream, with HMAC-SHA256 of the ciphertext
 * computed on the way (encrypt-then-MAC). The plaintext it emits is unverified
 * until `verify()` passes at the end; callers send it only to staging.
 */
export class LayerDecipher extends Transform {
  private readonly mac: Hmac;
  private readonly aes: Decipher;
  private finalMac: Buffer | undefined;

  constructor(priv: PrivateLayerOptions, private readonly pub: PublicLayerOptions) {
    super();
    this.mac = createHmac('sha256', priv.symkey);
    // Node's CTR carries the full 128-bit counter, as Go's cipher.NewCTR does.
    this.aes = createDecipheriv('aes-256-ctr', priv.symkey, priv.nonce);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.mac.update(chunk);
    done(null, this.aes.update(chunk));
  }

  override _flush(done: TransformCallback): void {
    const tail = this.aes.final();
    this.finalMac = this.mac.digest();
    done(null, tail.length ? tail : undefined);
  }

  /** Throws DECRYPT_FAILED unless the whole stream went through and its HMAC matches. */
  verify(what: string): void {
    if (!this.finalMac) throw new DecryptFailedError(`${what}: ciphertext ended early`);
    if (!this.pub.hmacMatches(this.finalMac)) throw new DecryptFailedError(`${what}: HMAC of the ciphertext does not match; the layer was tampered with or the key is wrong`);
  }
}

/** HMAC only, for re-checking a blob after a failure without decrypting it again. */
export function ciphertextHmac(priv: PrivateLayerOptions): Hmac {
  return createHmac('sha256', priv.symkey);
}
