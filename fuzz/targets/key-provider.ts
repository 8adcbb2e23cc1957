/**
 * What a key provider and an encrypted layer's annotations hand image-ts:
 * the Confidential Containers AnnotationPacket (parsed, then opened with a
 * key-encryption key, both wrap types), key-provider protocol JSON in both
 * directions, the public and private layer options, and resource URIs.
 */
import { AnnotationPacket } from '../../src/domain/encryption/annotation-packet.js';
import { decodeBase64 } from '../../src/domain/encryption/base64.js';
import { parseKeyProviderInput, parseKeyUnwrapOutput } from '../../src/domain/encryption/key-provider-protocol.js';
import { PrivateLayerOptions, PublicLayerOptions } from '../../src/domain/encryption/layer-options.js';
import { ResourceUri } from '../../src/domain/encryption/resource-uri.js';
import { attempt, Finding } from '../lib/verdict.js';

const KEK = Buffer.alloc(32, 7);

export function fuzz(data: Buffer): void {
  const packet = attempt(() => AnnotationPacket.parse(data));
  if (packet) attempt(() => packet.unwrap(KEK));
  const request = parseKeyProviderInput(data);
  if (request?.annotation) attempt(() => AnnotationPacket.parse(request.annotation!));
  attempt(() => parseKeyUnwrapOutput(data, 'fuzz'));
  const pub = attempt(() => PublicLayerOptions.parse(data));
  const priv = attempt(() => PrivateLayerOptions.parse(data, pub));
  if (priv && (priv.symkey.length !== 32 || priv.nonce.length !== 16)) throw new Finding('private options with a wrong key or nonce size parsed');
  const text = data.toString('utf8');
  const uri = attempt(() => ResourceUri.parse(text));
  if (uri) attempt(() => ResourceUri.parse(uri.toString())) ?? (() => { throw new Finding(`${uri} does not parse back`); })();
  decodeBase64(text);
}
