/**
 * In-process stand-ins for the guest services image-ts talks to: an ocicrypt
 * KeyProviderService (backed by CocoKeyProvider), CDH's GetResourceService
 * and the Attestation Agent, each over gRPC or ttrpc, on a temporary unix
 * socket (or 127.0.0.1 for gRPC over TCP). Errors look like CDH's: INTERNAL
 * with `[CDH] [ERROR]: …`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CocoKeyProvider } from '../../src/domain/encryption/coco-key-provider.js';
import { ResourceUri } from '../../src/domain/encryption/resource-uri.js';
import { ImageTsError } from '../../src/domain/errors.js';
import { AA_SERVICE } from '../../src/adapters/outbound/keys/attestation/aa-client.js';
import { CDH_RESOURCE_SERVICE } from '../../src/adapters/outbound/keys/brokers/cdh-key-broker.js';
import { KEY_PROVIDER_SERVICE } from '../../src/adapters/outbound/keys/providers/rpc-key-provider.js';
import { listenGrpc } from '../../src/adapters/outbound/rpc/grpc.js';
import { ProtoReader, ProtoWriter, singleBytes, singleString } from '../../src/adapters/outbound/rpc/protobuf.js';
import { RpcError, RpcStatus, type RpcHandler, type RpcServices } from '../../src/adapters/outbound/rpc/rpc.js';
import { TtrpcServer } from '../../src/adapters/outbound/rpc/ttrpc.js';
import type { AttestationAgent } from '../../src/ports/keys/attestation-agent.js';
import type { KeyBroker } from '../../src/ports/keys/key-broker.js';

export type ServiceTransport = 'grpc' | 'ttrpc';

export interface StartedService {
  readonly transport: ServiceTransport;
  /** What a client dials: `unix:///…/x.sock` or, for gRPC over TCP, `127.0.0.1:port`. */
  readonly target: string;
  stop(): Promise<void>;
}

export interface ServeOptions {
  /** gRPC only: listen on 127.0.0.1 with a free port instead of a unix socket. */
  readonly tcp?: boolean;
}

/** CDH answers every failure with INTERNAL and a `[CDH] [ERROR]: ` prefix; the AA with INTERNAL too. */
function internalErrors(prefix: string, handler: RpcHandler): RpcHandler {
  return async (payload, ctx) => {
    try {
      return await handler(payload, ctx);
    } catch (err) {
      if (err instanceof RpcError) throw err;
      const message = err instanceof ImageTsError ? err.message : 'unexpected error';
      throw new RpcError(RpcStatus.INTERNAL, `${prefix}${message}`);
    }
  };
}

const cdhStyle = (h: RpcHandler): RpcHandler => internalErrors('[CDH] [ERROR]: ', h);
const aaStyle = (h: RpcHandler): RpcHandler => internalErrors('', h);

export function keyProviderServices(broker: KeyBroker): RpcServices {
  const provider = new CocoKeyProvider(broker);
  return {
    [KEY_PROVIDER_SERVICE]: {
      UnWrapKey: cdhStyle(async (payload, ctx) => singleBytes(await provider.unwrapKey(Buffer.from(ProtoReader.decode(payload).bytes(1)), ctx.signal))),
    },
  };
}

export function cdhServices(broker: KeyBroker): RpcServices {
  return {
    [CDH_RESOURCE_SERVICE]: {
      GetResource: cdhStyle(async (payload, ctx) => singleBytes(await broker.getResource(ResourceUri.parse(ProtoReader.decode(payload).string(1)), ctx.signal))),
    },
    ...keyProviderServices(broker),
  };
}

export function attestationAgentServices(aa: AttestationAgent): RpcServices {
  return {
    [AA_SERVICE]: {
      GetTeeType: aaStyle(async (_p, ctx) => singleString(await aa.getTeeType(ctx.signal))),
      GetEvidence: aaStyle(async (p, ctx) => singleBytes(await aa.getEvidence(Buffer.from(ProtoReader.decode(p).bytes(1)), ctx.signal))),
      GetToken: aaStyle(async (p, ctx) => singleBytes(await aa.getToken(ProtoReader.decode(p).string(1), ctx.signal))),
      ExtendRuntimeMeasurement: aaStyle(async (p, ctx) => {
        const r = ProtoReader.decode(p);
        await aa.extendRuntimeMeasurement(
          { domain: r.string(1), operation: r.string(2), content: r.string(3), registerIndex: r.has(4) ? r.safeNumber(4) : undefined },
          ctx.signal,
        );
        return new ProtoWriter().enum(1, 0).finish();
      }),
    },
  };
}

/** A fresh directory for a socket; the path stays short enough for sun_path. */
export async function socketDir(): Promise<{ readonly dir: string; readonly cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'image-ts-rpc-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A unix target where nothing listens (the directory exists, the socket does not). */
export async function deadTarget(): Promise<{ readonly target: string; readonly cleanup: () => Promise<void> }> {
  const { dir, cleanup } = await socketDir();
  return { target: `unix://${join(dir, 'nobody.sock')}`, cleanup };
}

export async function serveServices(transport: ServiceTransport, services: RpcServices, options: ServeOptions = {}): Promise<StartedService> {
  if (transport === 'grpc' && options.tcp) {
    const handle = await listenGrpc('127.0.0.1:0', services);
    return { transport, target: handle.target, stop: () => handle.close(500) };
  }
  const { dir, cleanup } = await socketDir();
  const target = `unix://${join(dir, `${transport}.sock`)}`;
  if (transport === 'grpc') {
    const handle = await listenGrpc(target, services);
    return {
      transport,
      target,
      stop: async () => {
        await handle.close(500);
        await cleanup();
      },
    };
  }
  const server = new TtrpcServer().registerServices(services);
  await server.listen(target);
  return {
    transport,
    target,
    stop: async () => {
      await server.close();
      await cleanup();
    },
  };
}

export const startKeyProviderService = (transport: ServiceTransport, broker: KeyBroker, options?: ServeOptions): Promise<StartedService> =>
  serveServices(transport, keyProviderServices(broker), options);

export const startCdhService = (transport: ServiceTransport, broker: KeyBroker, options?: ServeOptions): Promise<StartedService> =>
  serveServices(transport, cdhServices(broker), options);

export const startAttestationAgentService = (transport: ServiceTransport, aa: AttestationAgent, options?: ServeOptions): Promise<StartedService> =>
  serveServices(transport, attestationAgentServices(aa), options);
