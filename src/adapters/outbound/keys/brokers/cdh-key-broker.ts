import type { ResourceUri } from '../../../../domain/encryption/resource-uri.js';
import type { KeyBroker } from '../../../../ports/keys/key-broker.js';
import { GrpcTransport } from '../../rpc/grpc.js';
import { ProtoReader, singleString } from '../../rpc/protobuf.js';
import { DEFAULT_RPC_TIMEOUT_MS, type RpcTransport } from '../../rpc/rpc.js';
import { TtrpcClient } from '../../rpc/ttrpc.js';
import { keyServiceError } from '../providers/rpc-key-provider.js';

export const CDH_RESOURCE_SERVICE = 'api.GetResourceService';
/** Where CDH listens by default: ttrpc on the guest, gRPC in the gRPC build. */
export const CDH_DEFAULT_TTRPC = 'unix:///run/confidential-containers/cdh.sock';
export const CDH_DEFAULT_GRPC = '127.0.0.1:50000';

/**
 * Resources from the guest's Confidential Data Hub, which attests and talks
 * to the KBS itself: `GetResource{ResourcePath=1}` → `{Resource=1}`. The
 * URI goes without its host, which CDH ignores anyway.
 */
export class CdhKeyBroker implements KeyBroker {
  readonly description: string;

  constructor(
    private readonly transport: RpcTransport,
    private readonly timeoutMs = DEFAULT_RPC_TIMEOUT_MS,
  ) {
    this.description = `CDH (${transport.description})`;
  }

  static overTtrpc(target = CDH_DEFAULT_TTRPC, options: { readonly timeoutMs?: number } = {}): CdhKeyBroker {
    return new CdhKeyBroker(new TtrpcClient(target), options.timeoutMs);
  }

  static overGrpc(target = CDH_DEFAULT_GRPC, options: { readonly timeoutMs?: number } = {}): CdhKeyBroker {
    return new CdhKeyBroker(new GrpcTransport(target), options.timeoutMs);
  }

  async getResource(uri: ResourceUri, signal?: AbortSignal): Promise<Buffer> {
    const path = uri.toString();
    try {
      const reply = await this.transport.unary(CDH_RESOURCE_SERVICE, 'GetResource', singleString(path), { signal, timeoutMs: this.timeoutMs });
      return Buffer.from(ProtoReader.decode(reply).bytes(1));
    } catch (err) {
      throw keyServiceError(`${this.description} for ${path}`, err, signal);
    }
  }

  close(): void {
    this.transport.close();
  }
}
