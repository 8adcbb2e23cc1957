import { DecryptFailedError } from '../errors.js';
import type { KeyBroker } from '../../ports/keys/key-broker.js';
import type { KeyProvider } from '../../ports/keys/key-provider.js';
import { AnnotationPacket } from './annotation-packet.js';
import { keyUnwrapOutput, parseKeyProviderInput } from './key-provider-protocol.js';

/**
 * The Confidential Containers key provider, in process: the item is an
 * AnnotationPacket, its kid names the key-encryption key in the broker, and
 * the private options are opened here. The same code serves the
 * KeyProviderService for other ocicrypt clients.
 */
export class CocoKeyProvider implements KeyProvider {
  constructor(
    private readonly broker: KeyBroker,
    readonly name = 'attestation-agent',
  ) {}

  async unwrapKey(input: Buffer, signal?: AbortSignal): Promise<Buffer> {
    const request = parseKeyProviderInput(input);
    if (!request || request.op !== 'keyunwrap' || !request.annotation) {
      throw new DecryptFailedError('key provider input is not a keyunwrap request with an annotation');
    }
    return keyUnwrapOutput(await this.unwrapPacket(request.annotation, signal));
  }

  async unwrapPacket(item: Buffer, signal?: AbortSignal): Promise<Buffer> {
    const packet = AnnotationPacket.parse(item);
    const kek = await this.broker.getResource(packet.kid, signal);
    return packet.unwrap(kek);
  }
}
