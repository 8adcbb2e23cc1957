import { ImageTsError, KeyBrokerDeniedError, KeyBrokerUnavailableError } from '../../../../domain/errors.js';
import type { KeyProvider } from '../../../../ports/keys/key-provider.js';
import { abortError } from '../../http/transport-errors.js';
import { GrpcTransport, type GrpcTlsOptions } from '../../rpc/grpc.js';
import { ProtoReader, singleBytes } from '../../rpc/protobuf.js';
import { RpcError, clipPeerText, type RpcTransport } from '../../rpc/rpc.js';
import { TtrpcClient } from '../../rpc/ttrpc.js';

export const KEY_PROVIDER_SERVICE = 'keyprovider.KeyProviderService';
export const DEFAULT_RPC_KEY_PROVIDER_TIMEOUT_MS = 60_000;

/**
 * What an RPC failure means to a key-provider or key-broker caller: no answer
 * (transport down, timeout, malformed reply) is UNAVAILABLE, a status that
 * says no is DENIED. Aborts pass through.
 */
export function keyServiceError(who: string, err: unknown, signal: AbortSignal | undefined): ImageTsError {
  if (signal?.aborted) return err instanceof ImageTsError ? err : abortError(signal);
  if (err instanceof RpcError) {
    if (err.unreachable) return new KeyBrokerUnavailableError(`${who} did not answer: ${clipPeerText(err.message)}`, { cause: err });
    return new KeyBrokerDeniedError(`${who} refused: ${clipPeerText(err.message) || `status ${err.status}`}`);
  }
  if (err instanceof ImageTsError && err.code === 'CONFIG_FILE_INVALID') return err;
  return new KeyBrokerUnavailableError(`${who} answered with a malformed message`, { cause: err });
}

/**
 * `keyprovider.KeyProviderService/UnWrapKey`: the protocol JSON in field 1
 * of the request, the answer in field 1 of the response. gRPC and ttrpc
 * differ only in the transport.
 */
export class RpcKeyProvider implements KeyProvider {
  constructor(
    readonly name: string,
    private readonly transport: RpcTransport,
    private readonly timeoutMs = DEFAULT_RPC_KEY_PROVIDER_TIMEOUT_MS,
  ) {}

  get description(): string {
    return `key provider ${this.name} (${this.transport.description})`;
  }

  async unwrapKey(input: Buffer, signal?: AbortSignal): Promise<Buffer> {
    try {
      const reply = await this.transport.unary(KEY_PROVIDER_SERVICE, 'UnWrapKey', singleBytes(input), { signal, timeoutMs: this.timeoutMs });
      return Buffer.from(ProtoReader.decode(reply).bytes(1));
    } catch (err) {
      throw keyServiceError(this.description, err, signal);
    }
  }

  close(): void {
    this.transport.close();
  }
}

export class GrpcKeyProvider extends RpcKeyProvider {
  constructor(name: string, target: string, options: { readonly tls?: GrpcTlsOptions | undefined; readonly timeoutMs?: number | undefined } = {}) {
    super(name, new GrpcTransport(target, { tls: options.tls }), options.timeoutMs);
  }
}

export class TtrpcKeyProvider extends RpcKeyProvider {
  constructor(name: string, target: string, options: { readonly timeoutMs?: number | undefined } = {}) {
    super(name, new TtrpcClient(target), options.timeoutMs);
  }
}
