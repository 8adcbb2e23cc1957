import { KeyBrokerDeniedError, KeyBrokerUnavailableError } from '../../src/domain/errors.js';
import type { ResourceUri } from '../../src/domain/encryption/resource-uri.js';
import type { KeyBroker } from '../../src/ports/keys/key-broker.js';

/** Resources in a map; `down` makes it behave like a broker that cannot be reached. */
export class MemoryKeyBroker implements KeyBroker {
  readonly description = 'in-memory key broker';
  readonly requests: string[] = [];
  down = false;
  constructor(private readonly resources: Map<string, Buffer> = new Map()) {}

  set(path: string, value: Buffer): void {
    this.resources.set(path, value);
  }

  async getResource(uri: ResourceUri, signal?: AbortSignal): Promise<Buffer> {
    signal?.throwIfAborted();
    this.requests.push(uri.toString());
    if (this.down) throw new KeyBrokerUnavailableError('in-memory key broker is down');
    const value = this.resources.get(uri.path);
    if (!value) throw new KeyBrokerDeniedError(`resource ${uri} is not released`);
    return Buffer.from(value);
  }
}
