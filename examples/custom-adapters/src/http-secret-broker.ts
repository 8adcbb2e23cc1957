import { KeyBrokerDeniedError, KeyBrokerUnavailableError, type KeyBroker, type ResourceUri } from 'image-ts';

/**
 * A key broker backed by an HTTP secret store: GET <base>/secrets/<repo>/<type>/<tag>
 * answers the resource's bytes, 404 when it is not released. A refusal is
 * KEY_BROKER_DENIED and an unreachable store KEY_BROKER_UNAVAILABLE, so
 * image-ts reports both as it reports its own brokers.
 */
export class HttpSecretBroker implements KeyBroker {
  readonly description: string;

  constructor(private readonly base: string) {
    this.description = `HTTP secret store ${base}`;
  }

  async getResource(uri: ResourceUri, signal?: AbortSignal): Promise<Buffer> {
    signal?.throwIfAborted();
    const url = `${this.base}/secrets/${uri.segments.map(encodeURIComponent).join('/')}`;
    let response: Response;
    try {
      response = await fetch(url, { signal: signal ?? null });
    } catch (err) {
      signal?.throwIfAborted();
      throw new KeyBrokerUnavailableError(`${this.description} cannot be reached: ${(err as Error).message}`);
    }
    if (response.status === 404 || response.status === 403) throw new KeyBrokerDeniedError(`${this.description} does not release ${uri.path}`);
    if (!response.ok) throw new KeyBrokerUnavailableError(`${this.description} answered ${response.status}`);
    return Buffer.from(await response.arrayBuffer());
  }
}
