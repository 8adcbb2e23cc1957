import type { Container } from 'inversify';
import { UsageError } from './usage-error.js';
import type { PullImage } from '../../../domain/pull/pull-image.js';
import type { KeyBroker } from '../../../ports/keys/key-broker.js';
import type { LayerStore } from '../../../ports/layer/layer-store.js';
import type { Logger, LogLevel } from '../../../ports/observability/logger.js';
import { grpcConnectionSink, listenGrpc, tagUnixPeer, type GrpcServerTls } from '../../outbound/rpc/grpc.js';
import type { RpcServices } from '../../outbound/rpc/rpc.js';
import { TtrpcServer } from '../../outbound/rpc/ttrpc.js';
import { BundleRoots } from '../rpc/bundle-roots.js';
import { CallLimit } from '../rpc/call-limit.js';
import { listenUnix, parseEndpoint, type Endpoint, type SocketAccess } from '../rpc/listeners.js';
import { ResourcePatterns } from '../../../domain/encryption/resource-patterns.js';
import { InvalidArgumentError } from '../../../domain/errors.js';
import { Tokens } from '../../wiring/tokens.js';
import { cdhServices } from '../rpc/cdh-services.js';
import { criServices } from '../rpc/cri-services.js';
import { withDeadline } from '../rpc/status.js';
import { Digest } from '../../../domain/image/digest.js';
import type { ManageImages } from '../../../domain/store/manage-images.js';
import type { MetadataStore } from '../../../ports/store/metadata-store.js';
import type { Settings } from '../../wiring/settings-file.js';
import { KeyBrokerToken, LayerStoreToken, MetadataStoreToken } from '../../wiring/port-tokens.js';

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** One JSON object per line on stderr, for a service's log collector. Fields never hold secrets. */
export class JsonLogger implements Logger {
  private readonly min: number;
  constructor(level: string) {
    const i = LEVELS.indexOf(level as LogLevel);
    if (i < 0) throw new UsageError(`--log-level takes ${LEVELS.join(', ')}`);
    this.min = i;
  }

  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void {
    if (LEVELS.indexOf(level) < this.min) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })}\n`);
  }
}

export interface ServeEndpoints {
  readonly cdhTtrpc: readonly string[];
  readonly cdhGrpc: readonly string[];
  /** Kubernetes CRI ImageService, gRPC on a unix socket (or TCP). */
  readonly cri: readonly string[];
  /** For calls whose client sets no deadline. */
  readonly requestTimeoutMs: number;
  /** Who may connect to the unix sockets. */
  readonly access: SocketAccess;
  /** Mutual TLS for TCP endpoints; required for any that is not loopback. */
  readonly tls?: GrpcServerTls | undefined;
  /** Directories PullImage's bundle_path must lie in; none: anywhere. */
  readonly bundleRoots: readonly string[];
  /** `repo/type/tag` patterns GetResource answers; undefined: every resource. */
  readonly resourcesAllowed?: readonly string[] | undefined;
  /** Calls served at once across every endpoint; the rest wait their turn. */
  readonly maxConcurrentCalls: number;
}

/** Enough for a pod's containers pulling at once; a flood of callers waits instead of starting pulls. */
export const DEFAULT_MAX_CONCURRENT_CALLS = 32;

/** Long enough for a multi-GB image on a slow link; a stuck call still ends. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30 * 60 * 1000;

/** Every endpoint checked before any is opened: a refused one must not leave the others listening. */
function endpointsOf(endpoints: ServeEndpoints): { kind: 'ttrpc' | 'grpc' | 'cri'; endpoint: Endpoint }[] {
  const all = [
    ...endpoints.cdhTtrpc.map((target) => ({ kind: 'ttrpc' as const, target })),
    ...endpoints.cdhGrpc.map((target) => ({ kind: 'grpc' as const, target })),
    ...endpoints.cri.map((target) => ({ kind: 'cri' as const, target })),
  ];
  return all.map(({ kind, target }) => {
    const endpoint = parseEndpoint(target);
    if (endpoint.kind === 'tcp') {
      if (kind === 'ttrpc') throw new InvalidArgumentError(`--cdh-ttrpc ${target}: ttrpc is served on unix sockets only`);
      if (!endpoint.loopback && !endpoints.tls) {
        throw new InvalidArgumentError(
          `${target} is not a loopback address: serving it needs mutual TLS (serve.tls, or --tls-cert, --tls-key and --tls-client-ca)`,
        );
      }
    }
    return { kind, endpoint };
  });
}

/** Endpoints that are listening, until close() stops them. */
export interface ServeHandle {
  /** Stops accepting, aborts the calls in flight (their pulls undo what they made) and removes the sockets. */
  close(): Promise<void>;
}

/** Opens every endpoint (all or none: a failure closes the ones already open). */
export async function startServing(container: Container, endpoints: ServeEndpoints, logger: Logger): Promise<ServeHandle> {
  const planned = endpointsOf(endpoints);
  if (planned.length === 0) {
    throw new InvalidArgumentError('serve needs at least one of --cdh-ttrpc unix:///PATH, --cdh-grpc unix:///PATH|HOST:PORT, --cri unix:///PATH');
  }
  await container.get<LayerStore>(LayerStoreToken).cleanStaging();
  // One limit and one deadline policy for every endpoint; the limit inside, so that waiting counts against the deadline.
  const limit = new CallLimit(endpoints.maxConcurrentCalls);
  const guard = (services: RpcServices): RpcServices => withDeadline(limit.wrap(services), endpoints.requestTimeoutMs);
  const cdh = guard(cdhServices({
    pull: container.get<PullImage>(Tokens.PullImage),
    broker: container.get<KeyBroker>(KeyBrokerToken),
    logger,
    bundleRoots: new BundleRoots(endpoints.bundleRoots),
    resourcesAllowed: endpoints.resourcesAllowed && new ResourcePatterns(endpoints.resourcesAllowed),
  }));
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(closers.splice(0).map((close) => close()));
  };
  try {
    let cri: RpcServices | undefined;
    for (const { kind, endpoint } of planned) {
      const services = kind === 'cri' ? (cri ??= guard(criServicesOf(container, logger))) : cdh;
      if (endpoint.kind === 'tcp') {
        const handle = await listenGrpc(endpoint.address, services, endpoints.tls);
        closers.push(() => handle.close(2000));
      } else if (kind === 'ttrpc') {
        const server = new TtrpcServer().registerServices(services);
        const listener = await listenUnix(endpoint.path, endpoints.access, logger, (socket, peer) => server.serveConnection(socket, peer));
        closers.push(async () => {
          await server.close();
          await listener.close();
        });
      } else {
        const sink = await grpcConnectionSink(services);
        const listener = await listenUnix(endpoint.path, endpoints.access, logger, (socket, peer) => {
          tagUnixPeer(socket, peer);
          sink.serveConnection(socket);
        });
        closers.push(async () => {
          await sink.close(2000);
          await listener.close();
        });
      }
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  logger.log('info', 'serving', {
    cdhTtrpc: endpoints.cdhTtrpc, cdhGrpc: endpoints.cdhGrpc, cri: endpoints.cri,
    socketGroup: endpoints.access.group, bundleRoots: endpoints.bundleRoots, tls: endpoints.tls !== undefined,
  });
  return {
    close: async () => {
      logger.log('info', 'stopping', {});
      await closeAll();
    },
  };
}

/** Serves until `stop` resolves (SIGTERM, SIGINT), then closes. */
export async function serve(container: Container, endpoints: ServeEndpoints, logger: Logger, stop: Promise<void>): Promise<void> {
  const handle = await startServing(container, endpoints, logger);
  try {
    await stop;
  } finally {
    await handle.close();
  }
}

function criServicesOf(container: Container, logger: Logger): RpcServices {
  const layers = container.get<LayerStore>(LayerStoreToken);
  const metadata = container.get<MetadataStore>(MetadataStoreToken);
  return criServices({
    pull: container.get<PullImage>(Tokens.PullImage),
    manage: container.get<ManageImages>(Tokens.ManageImages),
    metadata,
    workDir: container.get<Settings>(Tokens.Settings).workDir,
    usage: async () => {
      let bytes = 0;
      let inodes = 0;
      for (const diffId of Object.keys((await metadata.read()).layers)) {
        const layer = await layers.get(Digest.parse(diffId));
        bytes += layer?.size ?? 0;
        inodes += layer?.entries ?? 0;
      }
      return { bytes, inodes };
    },
    logger,
  });
}
