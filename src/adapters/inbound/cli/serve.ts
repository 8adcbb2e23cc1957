import { rm } from 'node:fs/promises';
import type { Container } from 'inversify';
import { UsageError } from './usage-error.js';
import type { PullImage } from '../../../domain/pull/pull-image.js';
import { KeyBrokerToken, type KeyBroker } from '../../../ports/keys/key-broker.js';
import { LayerStoreToken, type LayerStore } from '../../../ports/layer/layer-store.js';
import type { Logger, LogLevel } from '../../../ports/observability/logger.js';
import { listenGrpc, type GrpcServerHandle } from '../../outbound/rpc/grpc.js';
import { TtrpcServer, ttrpcSocketPath } from '../../outbound/rpc/ttrpc.js';
import { Tokens } from '../../wiring/tokens.js';
import { cdhServices } from '../rpc/cdh-services.js';
import { criServices } from '../rpc/cri-services.js';
import { withDeadline } from '../rpc/status.js';
import { Digest } from '../../../domain/image/digest.js';
import type { ManageImages } from '../../../domain/store/manage-images.js';
import { MetadataStoreToken, type MetadataStore } from '../../../ports/store/metadata-store.js';
import type { Settings } from '../../wiring/image-config-file.js';

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
  /** Kubernetes CRI ImageService, gRPC on a unix socket. */
  readonly cri: readonly string[];
  /** For calls whose client sets no deadline. */
  readonly requestTimeoutMs: number;
}

/** Long enough for a multi-GB image on a slow link; a stuck call still ends. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30 * 60 * 1000;

/**
 * Serves until `stop` resolves (SIGTERM, SIGINT): then it stops accepting,
 * aborts the calls in flight (their pulls undo what they made) and removes
 * its sockets.
 */
export async function serve(container: Container, endpoints: ServeEndpoints, logger: Logger, stop: Promise<void>): Promise<void> {
  if (endpoints.cdhTtrpc.length + endpoints.cdhGrpc.length + endpoints.cri.length === 0) {
    throw new UsageError('serve needs at least one of --cdh-ttrpc unix:///PATH, --cdh-grpc unix:///PATH|HOST:PORT, --cri unix:///PATH');
  }
  await container.get<LayerStore>(LayerStoreToken).cleanStaging();
  const services = withDeadline(cdhServices({
    pull: container.get<PullImage>(Tokens.PullImage),
    broker: container.get<KeyBroker>(KeyBrokerToken),
    logger,
  }), endpoints.requestTimeoutMs);
  const ttrpc: { server: TtrpcServer; path: string }[] = [];
  const grpc: GrpcServerHandle[] = [];
  try {
    for (const target of endpoints.cdhTtrpc) {
      const server = new TtrpcServer().registerServices(services);
      await server.listen(target);
      ttrpc.push({ server, path: ttrpcSocketPath(target) });
    }
    for (const target of endpoints.cdhGrpc) grpc.push(await listenGrpc(target, services));
    if (endpoints.cri.length) {
      const layers = container.get<LayerStore>(LayerStoreToken);
      const metadata = container.get<MetadataStore>(MetadataStoreToken);
      const cri = withDeadline(criServices({
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
      }), endpoints.requestTimeoutMs);
      for (const target of endpoints.cri) grpc.push(await listenGrpc(target, cri));
    }
    logger.log('info', 'serving', { cdhTtrpc: endpoints.cdhTtrpc, cdhGrpc: endpoints.cdhGrpc, cri: endpoints.cri });
    await stop;
    logger.log('info', 'stopping', {});
  } finally {
    await Promise.all([
      ...ttrpc.map(async ({ server, path }) => {
        await server.close();
        await rm(path, { force: true });
      }),
      ...grpc.map(async (g) => {
        await g.close(2000);
        if (g.target.startsWith('unix:')) await rm(g.target.replace(/^unix:(\/\/)?/, ''), { force: true });
      }),
    ]);
  }
}
