import { AttestationFailedError, ImageTsError } from '../../../../domain/errors.js';
import type { AttestationAgent, RuntimeMeasurement } from '../../../../ports/keys/attestation-agent.js';
import { abortError } from '../../http/transport-errors.js';
import { GrpcTransport } from '../../rpc/grpc.js';
import { ProtoReader, ProtoWriter, singleBytes, singleString } from '../../rpc/protobuf.js';
import { DEFAULT_RPC_TIMEOUT_MS, RpcError, clipPeerText, type RpcTransport } from '../../rpc/rpc.js';
import { TtrpcClient } from '../../rpc/ttrpc.js';

export const AA_SERVICE = 'attestation_agent.AttestationAgentService';
export const AA_DEFAULT_TTRPC = 'unix:///run/confidential-containers/attestation-agent/attestation-agent.sock';

/** ExtendRuntimeMeasurementResponse.Result. */
export const MeasurementResult = { OK: 0, NOT_SUPPORTED: 1, NOT_ENABLED: 2 } as const;

/**
 * The guest's Attestation Agent over ttrpc or gRPC. Every failure, an
 * unreachable agent included, is ATTESTATION_FAILED: without the agent
 * nothing can be attested.
 */
export class AttestationAgentClient implements AttestationAgent {
  readonly description: string;

  constructor(
    private readonly transport: RpcTransport,
    private readonly timeoutMs = DEFAULT_RPC_TIMEOUT_MS,
  ) {
    this.description = `attestation agent (${transport.description})`;
  }

  static overTtrpc(target = AA_DEFAULT_TTRPC, options: { readonly timeoutMs?: number } = {}): AttestationAgentClient {
    return new AttestationAgentClient(new TtrpcClient(target), options.timeoutMs);
  }

  static overGrpc(target: string, options: { readonly timeoutMs?: number } = {}): AttestationAgentClient {
    return new AttestationAgentClient(new GrpcTransport(target), options.timeoutMs);
  }

  async getTeeType(signal?: AbortSignal): Promise<string> {
    return this.call('GetTeeType', Buffer.alloc(0), signal, (r) => r.string(1));
  }

  async getEvidence(runtimeData: Buffer, signal?: AbortSignal): Promise<Buffer> {
    return this.call('GetEvidence', singleBytes(runtimeData), signal, (r) => Buffer.from(r.bytes(1)));
  }

  async getToken(tokenType: string, signal?: AbortSignal): Promise<Buffer> {
    return this.call('GetToken', singleString(tokenType), signal, (r) => Buffer.from(r.bytes(1)));
  }

  /**
   * NOT_SUPPORTED and NOT_ENABLED are not failures: a TEE without runtime
   * measurement still runs the workload, as with the reference agent.
   */
  async extendRuntimeMeasurement(event: RuntimeMeasurement, signal?: AbortSignal): Promise<void> {
    const request = new ProtoWriter()
      .string(1, event.domain)
      .string(2, event.operation)
      .string(3, event.content)
      .uint64(4, event.registerIndex, true)
      .finish();
    const result = await this.call('ExtendRuntimeMeasurement', request, signal, (r) => r.enum(1));
    if (result !== MeasurementResult.OK && result !== MeasurementResult.NOT_SUPPORTED && result !== MeasurementResult.NOT_ENABLED) {
      throw new AttestationFailedError(`${this.description}: ExtendRuntimeMeasurement answered unknown result ${result}`);
    }
  }

  close(): void {
    this.transport.close();
  }

  private async call<T>(method: string, request: Buffer, signal: AbortSignal | undefined, parse: (r: ProtoReader) => T): Promise<T> {
    let reply: Buffer;
    try {
      reply = await this.transport.unary(AA_SERVICE, method, request, { signal, timeoutMs: this.timeoutMs });
    } catch (err) {
      if (signal?.aborted) throw err instanceof ImageTsError ? err : abortError(signal);
      if (err instanceof RpcError && err.unreachable) {
        throw new AttestationFailedError(`${this.description} is unreachable (${method}): ${clipPeerText(err.message)}`, { cause: err });
      }
      const why = err instanceof RpcError ? clipPeerText(err.message) || `status ${err.status}` : 'transport error';
      throw new AttestationFailedError(`${this.description} failed ${method}: ${why}`, { cause: err });
    }
    try {
      return parse(ProtoReader.decode(reply));
    } catch (err) {
      throw new AttestationFailedError(`${this.description} answered ${method} with a malformed message`, { cause: err });
    }
  }
}
