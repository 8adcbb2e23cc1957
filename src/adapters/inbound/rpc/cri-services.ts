import { InvalidArgumentError } from '../../../domain/errors.js';
import { Reference } from '../../../domain/image/reference.js';
import type { PullImage } from '../../../domain/pull/pull-image.js';
import { findImage, type ManageImages } from '../../../domain/store/manage-images.js';
import type { Credentials } from '../../../ports/image-source/image-source.js';
import type { Logger } from '../../../ports/observability/logger.js';
import type { ImageRecord, MetadataStore, StoreState } from '../../../ports/store/metadata-store.js';
import { ProtoReader, ProtoWriter } from '../../outbound/rpc/protobuf.js';
import type { RpcHandler, RpcServices } from '../../outbound/rpc/rpc.js';
import { peerFields, rpcErrorOf } from './status.js';

export const CRI_IMAGE_SERVICE = 'runtime.v1.ImageService';

export interface CriServiceDeps {
  readonly pull: Pick<PullImage, 'pullToStore'>;
  readonly manage: Pick<ManageImages, 'remove'>;
  readonly metadata: MetadataStore;
  /** Where the store lives, for ImageFsInfo. */
  readonly workDir: string;
  readonly usage: () => Promise<{ bytes: number; inodes: number }>;
  readonly logger: Logger;
  readonly now?: () => number;
}

/**
 * AuthConfig { username=1, password=2, auth=3, server_address=4,
 * identity_token=5, registry_token=6 }: a pod's pull secret, for this
 * request only. Never logged.
 */
export function credentialsOf(auth: ProtoReader | undefined): Credentials | undefined {
  if (!auth) return undefined;
  const registryToken = auth.string(6);
  if (registryToken) return { kind: 'registry-token', token: registryToken };
  let username = auth.string(1);
  let password = auth.string(2);
  const encoded = auth.string(3);
  if (encoded && !username) {
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new InvalidArgumentError('AuthConfig.auth is not base64 of user:password');
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  const identityToken = auth.string(5);
  if (identityToken) return { kind: 'identity-token', username, token: identityToken };
  if (username) return { kind: 'basic', username, password };
  return undefined;
}

/** The image id kubelet compares: the config digest, as containerd reports it. */
const imageId = (r: ImageRecord): string => r.configDigest;

function repoTags(r: ImageRecord): string[] {
  return r.names.filter((n) => !n.startsWith('oci:') && !n.includes('@'));
}

function repoDigests(r: ImageRecord): string[] {
  const repos = new Set<string>();
  for (const n of r.names) {
    if (n.startsWith('oci:')) continue;
    try {
      repos.add(Reference.parse(n).name);
    } catch {
      // Names were parsed when recorded; one that no longer parses is skipped.
    }
  }
  return [...repos].map((name) => `${name}@${r.manifestDigest}`);
}

function encodeImage(r: ImageRecord, user: string | undefined): ProtoWriter {
  const w = new ProtoWriter().string(1, imageId(r));
  for (const t of repoTags(r)) w.string(2, t, true);
  for (const d of repoDigests(r)) w.string(3, d, true);
  w.uint64(4, Math.max(1, r.size));
  if (user !== undefined && /^\d+$/.test(user)) w.message(5, new ProtoWriter().int64(1, Number(user)));
  else if (user) w.string(6, user);
  w.message(7, new ProtoWriter().string(1, imageId(r)));
  return w;
}

/** `name[:tag]`, `name@digest`, or an image id (`sha256:…`, or its bare hex). */
function lookup(state: StoreState, query: string): ImageRecord | undefined {
  const records = state.images;
  const direct = findImage(state, query) ?? (/^[a-f0-9]{64}$/.test(query) ? findImage(state, `sha256:${query}`) : undefined);
  if (direct) return direct;
  try {
    const ref = Reference.parse(query);
    if (ref.digest) return Object.values(records).find((r) => r.manifestDigest === ref.digest!.toString() && r.names.some((n) => n.startsWith(ref.name)));
  } catch {
    // Not a reference: no such image.
  }
  return undefined;
}

/** Calls that change the store log at info; kubelet's frequent status polls at debug. Every line names the caller. */
const CHANGES = new Set(['PullImage', 'RemoveImage']);

function handler(method: string, logger: Logger, body: RpcHandler): RpcHandler {
  return async (payload, ctx) => {
    try {
      const out = await body(payload, ctx);
      logger.log(CHANGES.has(method) ? 'info' : 'debug', 'rpc', { method: `cri.${method}`, ok: true, ...peerFields(ctx.peer) });
      return out;
    } catch (err) {
      const e = rpcErrorOf(err, ctx.signal);
      logger.log('warn', 'rpc', { method: `cri.${method}`, ok: false, status: e.status, message: e.message, ...peerFields(ctx.peer) });
      throw e;
    }
  };
}

/** Kubernetes CRI `runtime.v1.ImageService`, over gRPC. */
export function criServices(deps: CriServiceDeps): RpcServices {
  const now = deps.now ?? Date.now;
  // uid for a numeric user, username otherwise (CRI: never both); the group part is not reported.
  const userOf = async (r: ImageRecord): Promise<string | undefined> => r.user?.split(':')[0] || undefined;
  return {
    [CRI_IMAGE_SERVICE]: {
      // PullImageRequest { ImageSpec image = 1; AuthConfig auth = 2; PodSandboxConfig sandbox_config = 3; }
      PullImage: handler('PullImage', deps.logger, async (payload, ctx) => {
        const req = ProtoReader.decode(payload);
        const image = req.message(1)?.string(1) ?? '';
        if (!image) throw new InvalidArgumentError('PullImageRequest.image.image is empty');
        const result = await deps.pull.pullToStore({ image, credentials: credentialsOf(req.message(2)), signal: ctx.signal });
        deps.logger.log('info', 'cri.pulled', { image: result.reference, ...peerFields(ctx.peer) });
        return new ProtoWriter().string(1, result.configDigest).finish();
      }),
      // ImageStatusRequest { ImageSpec image = 1; bool verbose = 2; }: absent is OK with no image.
      ImageStatus: handler('ImageStatus', deps.logger, async (payload) => {
        const req = ProtoReader.decode(payload);
        const query = req.message(1)?.string(1) ?? '';
        const state = await deps.metadata.read();
        const record = query ? lookup(state, query) : undefined;
        const w = new ProtoWriter();
        if (!record) return w.finish();
        w.message(1, encodeImage(record, await userOf(record)));
        if (req.bool(2)) {
          w.map(2, [['info', JSON.stringify({
            manifestDigest: record.manifestDigest,
            indexDigest: record.indexDigest,
            mediaType: record.mediaType,
            platform: record.platform,
            pulledAt: record.pulledAt,
            layers: record.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, mediaType: l.mediaType, size: l.size, encryption: l.encryption })),
          })]]);
        }
        return w.finish();
      }),
      // ListImagesRequest { ImageFilter filter = 1 { ImageSpec image = 1 } }
      ListImages: handler('ListImages', deps.logger, async (payload) => {
        const filter = ProtoReader.decode(payload).message(1)?.message(1)?.string(1) ?? '';
        const state = await deps.metadata.read();
        const records = filter ? [lookup(state, filter)].filter((r): r is ImageRecord => r !== undefined) : Object.values(state.images);
        const w = new ProtoWriter();
        for (const r of records) w.message(1, encodeImage(r, await userOf(r)));
        return w.finish();
      }),
      // RemoveImageRequest { ImageSpec image = 1; }: idempotent, and by any name removes the image with all its names.
      RemoveImage: handler('RemoveImage', deps.logger, async (payload) => {
        const query = ProtoReader.decode(payload).message(1)?.string(1) ?? '';
        const record = query ? lookup(await deps.metadata.read(), query) : undefined;
        if (record) await deps.manage.remove(record.manifestDigest).catch((e: unknown) => {
          if (!(e instanceof Error && 'code' in e && e.code === 'NOT_FOUND')) throw e;
        });
        return new ProtoWriter().finish();
      }),
      ImageFsInfo: handler('ImageFsInfo', deps.logger, async () => {
        const { bytes, inodes } = await deps.usage();
        const fs = new ProtoWriter()
          .int64(1, BigInt(now()) * 1_000_000n)
          .message(2, new ProtoWriter().string(1, deps.workDir))
          .message(3, new ProtoWriter().uint64(1, bytes, true))
          .message(4, new ProtoWriter().uint64(1, inodes, true));
        return new ProtoWriter().message(1, fs).finish();
      }),
    },
  };
}

