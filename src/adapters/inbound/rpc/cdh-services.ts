import { CocoKeyProvider } from '../../../domain/encryption/coco-key-provider.js';
import { ResourceUri } from '../../../domain/encryption/resource-uri.js';
import type { PullImage } from '../../../domain/pull/pull-image.js';
import type { KeyBroker } from '../../../ports/keys/key-broker.js';
import type { Logger } from '../../../ports/observability/logger.js';
import { ProtoReader, ProtoWriter, singleBytes } from '../../outbound/rpc/protobuf.js';
import { RpcError, RpcStatus, type RpcHandler, type RpcServices } from '../../outbound/rpc/rpc.js';
import { peerFields, rpcErrorOf } from './status.js';
import type { BundleRoots } from './bundle-roots.js';
import type { ResourcePatterns } from '../../../domain/encryption/resource-patterns.js';

export const IMAGE_PULL_SERVICE = 'api.ImagePullService';
export const GET_RESOURCE_SERVICE = 'api.GetResourceService';
export const KEY_PROVIDER_SERVICE = 'keyprovider.KeyProviderService';

export interface CdhServiceDeps {
  readonly pull: Pick<PullImage, 'execute'>;
  readonly broker: KeyBroker;
  readonly logger: Logger;
  /** Where PullImage may make bundles; unconfined when absent. */
  readonly bundleRoots?: BundleRoots | undefined;
  /** Which resources GetResource hands out; all when absent. */
  readonly resourcesAllowed?: ResourcePatterns | undefined;
}

function handler(method: string, logger: Logger, body: RpcHandler): RpcHandler {
  return async (payload, ctx) => {
    const started = Date.now();
    try {
      const out = await body(payload, ctx);
      logger.log('info', 'rpc', { method, ok: true, ms: Date.now() - started, ...peerFields(ctx.peer) });
      return out;
    } catch (err) {
      const e = rpcErrorOf(err, ctx.signal);
      logger.log('warn', 'rpc', { method, ok: false, status: e.status, message: e.message, ms: Date.now() - started, ...peerFields(ctx.peer) });
      throw e;
    }
  };
}

/**
 * The Confidential Data Hub's API, wire-identical (package, service, method
 * names, field numbers), over whichever transport serves it:
 * ImagePullService.PullImage, GetResourceService.GetResource (the key
 * broker), KeyProviderService.UnWrapKey (the attestation-agent provider).
 */
export function cdhServices(deps: CdhServiceDeps): RpcServices {
  const provider = new CocoKeyProvider(deps.broker);
  return {
    [IMAGE_PULL_SERVICE]: {
      // ImagePullRequest { string image_url = 1; string bundle_path = 2; } → ImagePullResponse { string manifest_digest = 1; }
      PullImage: handler('PullImage', deps.logger, async (payload, ctx) => {
        const req = ProtoReader.decode(payload);
        const image = req.string(1);
        const bundle = req.string(2);
        if (!image || !bundle) throw new RpcError(RpcStatus.INVALID_ARGUMENT, 'INVALID_ARGUMENT: image_url and bundle_path are required');
        await deps.bundleRoots?.check(bundle);
        const result = await deps.pull.execute({ image, bundle, signal: ctx.signal });
        return new ProtoWriter().string(1, result.manifestDigest).finish();
      }),
    },
    [GET_RESOURCE_SERVICE]: {
      // GetResourceRequest { string ResourcePath = 1; } → GetResourceResponse { bytes Resource = 1; }
      GetResource: handler('GetResource', deps.logger, async (payload, ctx) => {
        const uri = ResourceUri.parse(ProtoReader.decode(payload).string(1));
        deps.resourcesAllowed?.check(uri);
        return singleBytes(await deps.broker.getResource(uri, ctx.signal));
      }),
    },
    [KEY_PROVIDER_SERVICE]: {
      UnWrapKey: handler('UnWrapKey', deps.logger, async (payload, ctx) =>
        singleBytes(await provider.unwrapKey(Buffer.from(ProtoReader.decode(payload).bytes(1)), ctx.signal))),
      WrapKey: handler('WrapKey', deps.logger, async () => {
        throw new RpcError(RpcStatus.UNIMPLEMENTED, 'UNSUPPORTED: WrapKey is not served; image-ts only unwraps');
      }),
    },
  };
}
