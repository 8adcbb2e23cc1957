import { resolve } from 'node:path';
import type { Container, ContainerModule } from 'inversify';
import { parseDecryptionKey } from '../../../domain/encryption/decrypt-config.js';
import { ImageTsError, NetworkError, asImageTsError } from '../../../domain/errors.js';
import { Platform } from '../../../domain/image/platform.js';
import type { PullImage, PullResult, VerifyResult } from '../../../domain/pull/pull-image.js';
import type { ListedImage, ManageImages, StoreDiskUsage } from '../../../domain/store/manage-images.js';
import type { Credentials } from '../../../ports/image-source/image-source.js';
import type { LayerStore } from '../../../ports/layer/layer-store.js';
import type { Logger } from '../../../ports/observability/logger.js';
import type { ProgressListener } from '../../../ports/observability/progress.js';
import type { ImageRecord } from '../../../ports/store/metadata-store.js';
import { loadDecryptConfig } from '../../outbound/keys/unwrappers/key-files.js';
import { buildContainer, type Override } from '../../wiring/container.js';
import type { Settings } from '../../wiring/settings-file.js';
import { Tokens } from '../../wiring/tokens.js';
import { startServing, type ServeHandle } from '../cli/serve.js';
import { serveEndpoints, type ServeOverrides } from '../cli/serve-settings.js';
import { LayerStoreToken } from '../../wiring/port-tokens.js';

/** Per-call options of a pull (and, where they apply, of pullToStore and verify). */
export interface PullOptions {
  /** Aborting stops the pull; it undoes what it made (bundle, staging, lease). */
  readonly signal?: AbortSignal | undefined;
  /** For this call only; never logged. Otherwise auth.json and the service's credentials apply. */
  readonly credentials?: Credentials | undefined;
  /** More keys for encrypted layers, in skopeo's forms (PATH, PATH:pass=..., provider:NAME[:PARAMS]). */
  readonly decryptionKeys?: readonly string[] | undefined;
  /** `os/arch[/variant]`, to pick from an index. */
  readonly platform?: string | undefined;
  readonly snapshotter?: 'overlay' | 'copy' | 'erofs' | undefined;
  /** Each layer's start and states, bytes, the snapshot and the end. */
  readonly onProgress?: ProgressListener | undefined;
}

/** What `pull` resolves to: exactly the object `image-ts pull --json` prints. */
export interface PulledBundle {
  readonly reference: string;
  readonly manifestDigest: string;
  readonly configDigest: string;
  readonly bundle: string;
  readonly layers: readonly { readonly digest: string; readonly diffId: string; readonly size: number }[];
}

/** What `pullToStore` resolves to: the image, recorded in the store with its layers, and no bundle. */
export interface PulledImage {
  readonly reference: string;
  readonly manifestDigest: string;
  readonly configDigest: string;
  readonly layers: readonly { readonly digest: string; readonly diffId: string; readonly size: number }[];
}

export type ServeOptions = ServeOverrides;

/** image-ts as a library: every failure rejects with an ImageTsError whose `code` is one of the README's codes. */
export interface ImageService {
  pull(image: string, bundleDir: string, options?: PullOptions): Promise<PulledBundle>;
  pullToStore(image: string, options?: PullOptions): Promise<PulledImage>;
  verify(image: string, options?: Pick<PullOptions, 'signal' | 'credentials' | 'platform'>): Promise<VerifyResult>;
  /** Every image, with the bytes each layer holds in the store. */
  list(): Promise<ListedImage[]>;
  inspect(image: string): ReturnType<ManageImages['inspect']>;
  /** The store's bytes by layer format. */
  df(): Promise<StoreDiskUsage>;
  remove(image: string): Promise<ImageRecord>;
  gc(): ReturnType<ManageImages['gc']>;
  removeBundle(dir: string): Promise<void>;
  /** The CDH and CRI APIs on these endpoints, with the config's serve settings; resolves once all listen. */
  serve(options: ServeOptions): Promise<ServeHandle>;
  /** Stops what serve() started; the service is unusable afterwards. */
  close(): Promise<void>;
}

export function pulledBundle(r: PullResult): PulledBundle {
  return {
    reference: r.reference,
    manifestDigest: r.manifestDigest,
    configDigest: r.configDigest,
    bundle: r.bundle,
    layers: r.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size })),
  };
}

/** A local layout's directory made absolute, so that the image's name does not depend on the caller's cwd. */
const normalize = (image: string): string => (image.startsWith('oci:') ? `oci:${resolve(image.slice(4))}` : image);

/**
 * The service over a container: the one path the CLI, serve and the library
 * take. Construction is the composition root's job (openImageService).
 */
class ContainerImageService implements ImageService {
  private stagingCleaned: Promise<unknown> | undefined;
  private readonly serving = new Set<ServeHandle>();
  private closed = false;

  constructor(private readonly container: Container, private readonly settings: Settings, private readonly logger: Logger) {}

  private get pullImage(): PullImage {
    this.assertOpen();
    return this.container.get<PullImage>(Tokens.PullImage);
  }

  private get manage(): ManageImages {
    this.assertOpen();
    return this.container.get<ManageImages>(Tokens.ManageImages);
  }

  private assertOpen(): void {
    if (this.closed) throw new ImageTsError('INVALID_ARGUMENT', 'the image service is closed');
  }

  /** Staging left by a crashed pull, once per service; staging of live processes is kept. */
  private cleanStaging(): Promise<unknown> {
    return (this.stagingCleaned ??= this.container.get<LayerStore>(LayerStoreToken).cleanStaging());
  }

  /** The caller's signal and pull_timeout_seconds; past the deadline everything stops, reported as NETWORK. */
  private async withDeadline<T>(signal: AbortSignal | undefined, run: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    const ms = this.settings.timeouts.pullMs;
    if (!ms) return run(signal);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new NetworkError(`the pull took longer than pull_timeout_seconds (${ms / 1000} s)`)), ms);
    timer.unref();
    try {
      return await run(signal ? AbortSignal.any([signal, controller.signal]) : controller.signal);
    } catch (err) {
      // Whatever broke first under the abort, the deadline is the reason.
      if (controller.signal.aborted && controller.signal.reason instanceof ImageTsError) throw controller.signal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private platformOf(platform: string | undefined): Platform | undefined {
    const p = platform ?? this.settings.platform;
    return p ? Platform.parse(p) : undefined;
  }

  pull(image: string, bundleDir: string, options: PullOptions = {}): Promise<PulledBundle> {
    return guard(async () => pulledBundle(await this.pullDetailed(image, bundleDir, options)));
  }

  /** The full result, with what only the CLI prints (rootfs, snapshotter, what was fetched). */
  async pullDetailed(image: string, bundleDir: string, options: PullOptions = {}): Promise<PullResult> {
    const pull = this.pullImage;
    await this.cleanStaging();
    const decryptConfig = await loadDecryptConfig([...this.settings.decryptionKeys, ...(options.decryptionKeys ?? [])].map(parseDecryptionKey));
    return this.withDeadline(options.signal, (signal) => pull.execute({
      image: normalize(image),
      bundle: bundleDir,
      platform: this.platformOf(options.platform),
      snapshotter: options.snapshotter ?? this.settings.snapshotter,
      maxConcurrentLayers: this.settings.maxConcurrentLayers,
      credentials: options.credentials,
      decryptConfig,
      signal,
      onProgress: options.onProgress,
    }));
  }

  async pullToStore(image: string, options: PullOptions = {}): Promise<PulledImage> {
    return guard(async () => {
      const pull = this.pullImage;
      await this.cleanStaging();
      const decryptConfig = await loadDecryptConfig([...this.settings.decryptionKeys, ...(options.decryptionKeys ?? [])].map(parseDecryptionKey));
      const r = await this.withDeadline(options.signal, (signal) => pull.pullToStore({
        image: normalize(image),
        platform: this.platformOf(options.platform),
        maxConcurrentLayers: this.settings.maxConcurrentLayers,
        credentials: options.credentials,
        decryptConfig,
        signal,
        onProgress: options.onProgress,
      }));
      return { reference: r.reference, manifestDigest: r.manifestDigest, configDigest: r.configDigest, layers: r.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size })) };
    });
  }

  verify(image: string, options: Pick<PullOptions, 'signal' | 'credentials' | 'platform'> = {}): Promise<VerifyResult> {
    return guard(() => this.pullImage.verify({ image: normalize(image), platform: this.platformOf(options.platform), credentials: options.credentials, signal: options.signal }));
  }

  list(): Promise<ListedImage[]> {
    return guard(() => this.manage.list());
  }

  df(): Promise<StoreDiskUsage> {
    return guard(() => this.manage.df());
  }

  inspect(image: string): ReturnType<ManageImages['inspect']> {
    return guard(() => this.manage.inspect(image));
  }

  remove(image: string): Promise<ImageRecord> {
    return guard(() => this.manage.remove(image));
  }

  gc(): ReturnType<ManageImages['gc']> {
    return guard(() => this.manage.gc());
  }

  async removeBundle(dir: string): Promise<void> {
    await guard(() => this.manage.removeBundle(dir));
  }

  async serve(options: ServeOptions): Promise<ServeHandle> {
    return guard(async () => {
      this.assertOpen();
      const handle = await startServing(this.container, await serveEndpoints(this.settings, options), this.logger);
      this.serving.add(handle);
      return {
        close: async () => {
          if (!this.serving.delete(handle)) return;
          await handle.close();
        },
      };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.serving].map((h) => h.close()));
    this.serving.clear();
  }
}

/** Every rejection is an ImageTsError with a stable code, whatever went wrong underneath. */
async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw asImageTsError(err);
  }
}

export interface OpenOptions {
  readonly settings: Settings;
  readonly logger: Logger;
  readonly credentials?: Credentials | undefined;
  readonly overrides?: readonly Override[] | undefined;
  readonly modules?: readonly ContainerModule[] | undefined;
}

export type ContainerService = ImageService & Pick<ContainerImageService, 'pullDetailed'>;

/** The composition root for every inbound adapter: the profile's modules, then the caller's modules and overrides. */
export async function openImageService(o: OpenOptions): Promise<ContainerService> {
  const container = await buildContainer({ settings: o.settings, logger: o.logger, credentials: o.credentials }, { overrides: o.overrides, modules: o.modules });
  return new ContainerImageService(container, o.settings, o.logger);
}
