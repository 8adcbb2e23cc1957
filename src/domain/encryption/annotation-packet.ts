import { createDecipheriv } from 'node:crypto';
import { DecryptFailedError, UnsupportedError } from '../errors.js';
import { decodeBase64 } from './base64.js';
import { ResourceUri } from './resource-uri.js';
import { parseJsonObject } from '../image/json-fields.js';

export type WrapType = 'A256GCM' | 'A256CTR';

/**
 * The Confidential Containers key provider's recipient item: the layer's
 * private options encrypted under a key-encryption key that lives in a key
 * broker at `kid`. v1 has kid, wrapped_data, iv, wrap_type; v2 adds version,
 * provider, provider_settings and annotations.
 */
export class AnnotationPacket {
  private constructor(
    readonly kid: ResourceUri,
    readonly wrappedData: Buffer,
    readonly iv: Buffer | undefined,
    readonly wrapType: WrapType,
  ) {}

  static parse(bytes: Buffer): AnnotationPacket {
    const json = parseJsonObject(bytes, 'the key provider annotation (AnnotationPacket)', (m) => new DecryptFailedError(m));
    const version = json['version'] ?? '0.1.0';
    if (version !== '0.1.0') throw new UnsupportedError(`AnnotationPacket version ${JSON.stringify(version)} is not supported`);
    const provider = json['provider'] ?? 'kbs';
    if (provider !== 'kbs') throw new UnsupportedError(`AnnotationPacket provider ${JSON.stringify(provider)} is not supported; only kbs`);
    if (typeof json['kid'] !== 'string') throw new DecryptFailedError('AnnotationPacket has no kid');
    const kid = ResourceUri.parse(json['kid']);
    const wrapped = typeof json['wrapped_data'] === 'string' ? decodeBase64(json['wrapped_data']) : undefined;
    if (!wrapped || wrapped.length === 0) throw new DecryptFailedError('AnnotationPacket wrapped_data is missing or not base64');
    const iv = typeof json['iv'] === 'string' ? decodeBase64(json['iv']) : undefined;
    const rawType = json['wrap_type'] ?? 'A256GCM';
    // The sample packet of ocicrypt-rs still spells the GCM type the old way.
    const wrapType = rawType === 'aes_256_gcm' ? 'A256GCM' : rawType;
    if (wrapType !== 'A256GCM' && wrapType !== 'A256CTR') {
      throw new DecryptFailedError(`AnnotationPacket wrap_type ${JSON.stringify(rawType)} is not A256GCM or A256CTR`);
    }
    return new AnnotationPacket(kid, wrapped, iv, wrapType);
  }

  /** Opens wrapped_data with the 32-byte key-encryption key from the broker. */
  unwrap(kek: Buffer): Buffer {
    if (kek.length !== 32) throw new DecryptFailedError(`the key-encryption key ${this.kid} is ${kek.length} bytes, not 32`);
    if (this.wrapType === 'A256CTR') {
      if (this.iv?.length !== 16) throw new DecryptFailedError('AnnotationPacket A256CTR needs a 16-byte iv');
      const d = createDecipheriv('aes-256-ctr', kek, this.iv);
      return Buffer.concat([d.update(this.wrappedData), d.final()]);
    }
    if (this.iv?.length !== 12) throw new DecryptFailedError('AnnotationPacket A256GCM needs a 12-byte iv');
    if (this.wrappedData.length < 16) throw new DecryptFailedError('AnnotationPacket wrapped_data is shorter than a GCM tag');
    const d = createDecipheriv('aes-256-gcm', kek, this.iv);
    d.setAuthTag(this.wrappedData.subarray(this.wrappedData.length - 16));
    try {
      return Buffer.concat([d.update(this.wrappedData.subarray(0, this.wrappedData.length - 16)), d.final()]);
    } catch {
      throw new DecryptFailedError(`the key-encryption key ${this.kid} does not open the layer key (GCM authentication failed)`);
    }
  }
}
