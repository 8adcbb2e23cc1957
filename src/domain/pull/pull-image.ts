import { createHash } from 'node:crypto';
import { type ErrorCode, ImageTsError, UnsupportedError, asImageTsError } from '../errors.js';
import type { Descriptor } from '../image/descriptor.js';
import type { Digest } from '../image/digest.js';
import { ImageTarget } from '../image/image-target.js';
import { layerCompression } from '../image/media-types.js';
import { EMPTY_DECRYPT_CONFIG, type DecryptConfig } from '../encryption/decrypt-config.js';
import { LayerEncryption } from '../encryption/layer-encryption.js';
import type { LayerKeys } from '../encryption/layer-keys.js';
import type { PolicySubject, PolicyVerdict } from '../policy/image-policy.js';
import type { PolicyGate } from '../policy/policy-gate.js';
import type { AttestationAgent } from '../../ports/keys/attestation-agent.js';
import type { Platform } from '../image/platform.js';
import { LayerStateMachine } from '../layer/layer-state.js';
import { UnpackBudget, type UnpackLimits } from '../layer/unpack-limits.js';
import { buildRuntimeSpec } from '../runtime/runtime-spec.js';
import { resolveUser } from '../runtime/user.js';
import type { Credentials, ImageSource, ImageSourceFactory } from '../../ports/image-source/image-source.js';
import type { Decompressor } from '../../ports/layer/decompressor.js';
import type { CommittedLayer, LayerFormat, LayerStore } from '../../ports/layer/layer-store.js';
import type { Logger } from '../../ports/observability/logger.js';
import type { ProgressListener } from '../../ports/observability/progress.js';
import type { BundleDirectory } from '../../ports/snapshot/bundle-directory.js';
import type { SnapshotRecord, Snapshotter, SnapshotterName } from '../../ports/snapshot/snapshotter.js';
import type { MetadataStore, PlannedBundle } from '../../ports/store/metadata-store.js';
import { reclaimAbandonedPulls } from '../store/abandoned-pulls.js';
import { expandShortName, isShortName, type RegistriesConf } from '../registry/registries-conf.js';
import { firstSuccess } from './first-success.js';
import { ImageRecords, type Lease } from './image-records.js';
import { LayerApplier, type LayerJob, type LayerSecret } from './layer-applier.js';
import { Limiter, SingleFlight } from './limiter.js';
import { resolveImage, type ResolvedImage } from './resolve-image.js';

const MAX_ACCOUNT_FILE_BYTES = 4 * 1024 * 1024;

export interface PullRequest {
  readonly image: string;
  readonly bundle: string;
  readonly platform?: Platform | undefined;
  readonly snapshotter?: SnapshotterName | undefined;
  readonly credentials?: Credentials | undefined;
  /** Keys for encrypted layers, on top of the key providers the deployment configures. */
  readonly decryptConfig?: DecryptConfig | undefined;
  readonly maxConcurrentLayers?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ProgressListener | undefined;
}

export interface PulledLayer {
  readonly digest: string;
  readonly diffId: string;
  readonly size: number;
  /** Whether this pull downloaded it, or found it in the store / in flight. */
  readonly fetched: boolean;
}

export interface PullResult {
  readonly reference: string;
  readonly manifestDigest: string;
  readonly indexDigest?: string | undefined;
  readonly configDigest: string;
  readonly bundle: string;
  readonly rootfs: string;
  readonly snapshotter: SnapshotterName;
  readonly layers: readonly PulledLayer[];
}

export interface PullImageOptions {
  readonly hostPlatform: Platform;
  /** Undefined: the first snapshotter that is available here, in binding order. */
  readonly defaultSnapshotter?: SnapshotterName | undefined;
  readonly maxConcurrentLayers: number;
  /** Layer downloads at once across every pull of this process (a service's bound); unbounded when undefined. */
  readonly maxConcurrentDownloads?: number | undefined;
  readonly limits?: UnpackLimits | undefined;
}

export interface PullImageDeps {
  readonly sources: readonly ImageSourceFactory[];
  readonly decompressor: Decompressor;
  readonly layers: LayerStore;
  readonly snapshotters: readonly Snapshotter[];
  readonly bundles: BundleDirectory;
  readonly metadata: MetadataStore;
  readonly logger: Logger;
  readonly clock: () => Date;
  /** Unique ids for leases and snapshots: randomness comes from outside, like the clock. */
  readonly ids: () => string;
  /** Unwraps layer keys; without it an encrypted image cannot be pulled. */
  readonly keys?: LayerKeys | undefined;
  /** Signature policy and admission, checked on every pull; without it every image is admitted. */
  readonly policy?: PolicyGate | undefined;
  /** Told of every successful pull, a cache hit included, when an Attestation Agent is configured. */
  readonly attestation?: AttestationAgent | undefined;
  /** registries.conf, for short-name aliases and unqualified-search-registries; short names go to docker.io without it. */
  readonly registries?: (() => Promise<RegistriesConf | undefined>) | undefined;
  /** This process, named in its leases; with isOwnerAlive, a pull killed midway is undone by the next one. */
  readonly owner?: number | undefined;
  readonly isOwnerAlive?: ((owner: number) => boolean) | undefined;
}

/** The event CDH records after a pull, so that a verifier can see which images a guest ran. */
export const PULL_MEASUREMENT_DOMAIN = 'github.com/confidential-containers';
export const PULL_MEASUREMENT_OPERATION = 'PullImage';

export interface VerifyRequest {
  readonly image: string;
  readonly platform?: Platform | undefined;
  readonly credentials?: Credentials | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface VerifyResult {
  readonly reference: string;
  readonly manifestDigest: string;
  readonly indexDigest: string | undefined;
  readonly encrypted: boolean;
  /** Undefined when no policy is configured. */
  readonly verdict: PolicyVerdict | undefined;
  /** The error a pull would fail with, if any. */
  readonly refusal: { readonly code: ErrorCode; readonly message: string } | undefined;
}

export type StorePullRequest = Omit<PullRequest, 'bundle' | 'snapshotter'>;

/** A request with the format its new layers are committed in, decided by the snapshotter. */
type FormattedRequest = PullRequest & { readonly layerFormat: LayerFormat | undefined };

export interface StorePullResult {
  readonly reference: string;
  readonly manifestDigest: string;
  readonly indexDigest?: string | undefined;
  readonly configDigest: string;
  readonly layers: readonly PulledLayer[];
}

/** An image is encrypted when any of its layers is: that layer's key is then the gate. */
function isEncryptedImage(image: ResolvedImage): boolean {
  return image.manifest.layers.some((l) => LayerEncryption.isEncrypted(l));
}

/**
 * Pull: resolve the manifest, verify and unpack every layer into the shared
 * store, then snapshot a rootfs and write the bundle's config.json. Every
 * byte is checked against a digest before anything is committed, and a
 * failure undoes what this pull made.
 *
 * The per-layer data path is LayerApplier's, resolution resolveImage's and
 * the records ImageRecords'; what stays here (past 400 lines) is the order of
 * a pull and of its undo, which reads best in one place: the lease, the
 * policy gate, the layers, the snapshot, the bundle, and each step's
 * take-back in reverse.
 */
export class PullImage {
  /** Layers being produced right now, by diff_id, so concurrent pulls fetch each once. */
  private readonly inFlight = new SingleFlight<{ committed: CommittedLayer; fetched: boolean }>();
  private readonly downloads: Limiter | undefined;

  private readonly applier: LayerApplier;
  private readonly records: ImageRecords;

  constructor(
    private readonly deps: PullImageDeps,
    private readonly options: PullImageOptions,
  ) {
    this.downloads = options.maxConcurrentDownloads ? new Limiter(options.maxConcurrentDownloads) : undefined;
    const limits = options.limits;
    this.applier = new LayerApplier(deps, limits && { maxEntriesPerLayer: limits.maxEntriesPerLayer, maxPathBytes: limits.maxPathBytes });
    this.records = new ImageRecords(deps);
  }

  /** Ends the lease; a failure to do so is reported, never thrown over the pull's own outcome. */
  private async releaseLease(lease: Lease, failure?: unknown): Promise<void> {
    await this.records.releaseLease(lease, failure).catch((e: unknown) => this.warnCleanup('lease', e));
  }

  async execute(request: PullRequest): Promise<PullResult> {
    const targets = await this.targetsFor(request.image);
    const snapshotter = await this.pickSnapshotter(request.snapshotter);

    const bundlePath = this.deps.bundles.resolve(request.bundle);
    const { rootfs, createdDir } = await this.createBundle(bundlePath);
    let snapshot: SnapshotRecord | undefined;
    const lease: Lease = { id: this.deps.ids(), held: false, produced: new Set() };
    const snapshotId = createHash('sha256').update(`${bundlePath}\0${this.deps.clock().toISOString()}\0${lease.id}`).digest('hex').slice(0, 32);
    const plan: PlannedBundle = { path: bundlePath, createdDir, snapshot: { snapshotter: snapshotter.name, rootfs, id: snapshotId } };
    try {
      const { name, resolved, layers } = await this.fetchImage(targets, { ...request, layerFormat: snapshotter.layerFormat }, lease, plan);

      snapshot = await snapshotter.prepare(snapshotId, layers.map((l) => l.committed), rootfs);
      request.onProgress?.({ type: 'snapshot', snapshotter: snapshotter.name, rootfs });

      const cc = resolved.config.config;
      const needsAccounts = cc?.User !== undefined && cc.User.trim() !== '' && !/^\d+(:\d+)?$/.test(cc.User.trim());
      const passwd = needsAccounts ? await this.deps.bundles.readRootfsFile(rootfs, '/etc/passwd', MAX_ACCOUNT_FILE_BYTES) : undefined;
      const group = needsAccounts ? await this.deps.bundles.readRootfsFile(rootfs, '/etc/group', MAX_ACCOUNT_FILE_BYTES) : undefined;
      const spec = buildRuntimeSpec(resolved.config, resolveUser(cc?.User, passwd, group));
      await this.deps.bundles.writeConfig(bundlePath, spec);

      // Before the bundle is recorded: a measurement that fails undoes the bundle, like any failure.
      await this.measure(request.image, resolved, request.signal);
      const finalSnapshot = snapshot;
      await this.deps.metadata.update((state) => {
        state.bundles[bundlePath] = {
          path: bundlePath,
          image: name,
          manifestDigest: resolved.manifestDigest.toString(),
          layers: layers.map((l) => l.committed.diffId.toString()),
          snapshot: finalSnapshot,
          createdDir,
          createdAt: this.deps.clock().toISOString(),
        };
        // The bundle record now holds the layers; the lease has done its job.
        delete state.leases[lease.id];
      });
      lease.held = false;
      request.onProgress?.({ type: 'done', manifestDigest: resolved.manifestDigest.toString() });
      return {
        reference: name,
        manifestDigest: resolved.manifestDigest.toString(),
        indexDigest: resolved.indexDigest?.toString(),
        configDigest: resolved.configDigest.toString(),
        bundle: bundlePath,
        rootfs,
        snapshotter: snapshotter.name,
        layers: layers.map((l) => l.pulled),
      };
    } catch (err) {
      if (snapshot) await snapshotter.remove(snapshot).catch((e: unknown) => this.warnCleanup('snapshot', e));
      await this.deps.bundles.remove(bundlePath, createdDir).catch((e: unknown) => this.warnCleanup('bundle', e));
      await this.releaseLease(lease, err);
      throw asImageTsError(err);
    }
  }

  /**
   * Pull into the store only, with no bundle: what CRI's PullImage asks. The
   * image is recorded and its layers are referenced by it; policy, keys and
   * measurement are as for a bundle pull.
   */
  async pullToStore(request: StorePullRequest): Promise<StorePullResult> {
    const targets = await this.targetsFor(request.image);
    const lease: Lease = { id: this.deps.ids(), held: false, produced: new Set() };
    try {
      const { name, resolved, layers } = await this.fetchImage(targets, { ...request, bundle: '', layerFormat: this.defaultLayerFormat() }, lease);
      await this.measure(request.image, resolved, request.signal);
      await this.releaseLease(lease);
      return {
        reference: name,
        manifestDigest: resolved.manifestDigest.toString(),
        indexDigest: resolved.indexDigest?.toString(),
        configDigest: resolved.configDigest.toString(),
        layers: layers.map((l) => l.pulled),
      };
    } catch (err) {
      await this.releaseLease(lease, err);
      throw asImageTsError(err);
    }
  }

  /**
   * A pull killed while making this very bundle left it behind: undo that
   * pull (when its owner is dead) and try once more. Costs nothing when the
   * path is free.
   */
  private async createBundle(path: string): Promise<{ rootfs: string; createdDir: boolean }> {
    try {
      return await this.deps.bundles.create(path);
    } catch (err) {
      if (!(err instanceof ImageTsError && err.code === 'BUNDLE_EXISTS')) throw err;
      const reclaimed = await this.deps.metadata.update(async (state) => {
        const leftBehind = Object.values(state.leases).some((l) => l.bundle?.path === path);
        await reclaimAbandonedPulls(state, this.deps.clock(), this.deps);
        return leftBehind && !Object.values(state.leases).some((l) => l.bundle?.path === path);
      });
      if (!reclaimed) throw err;
      return this.deps.bundles.create(path);
    }
  }

  /**
   * What to try for the user's input, in order: the image itself, or for a
   * short name its alias or each unqualified-search registry.
   */
  private async targetsFor(image: string): Promise<ImageTarget[]> {
    const target = ImageTarget.parse(image);
    if (target.kind !== 'registry' || !isShortName(image) || !this.deps.registries) return [target];
    const conf = await this.deps.registries();
    if (!conf) return [target];
    return expandShortName(conf, image).map((name) => ImageTarget.parse(name));
  }

  /**
   * Opens the first candidate whose manifest resolves. Like podman, a short
   * name that no search registry has fails with every registry's error.
   */
  private async openFirst(
    targets: readonly ImageTarget[],
    request: PullRequest,
  ): Promise<{ target: ImageTarget; source: ImageSource; resolved: ResolvedImage }> {
    const open = async (target: ImageTarget): Promise<{ target: ImageTarget; source: ImageSource; resolved: ResolvedImage }> => {
      const factory = this.deps.sources.find((s) => s.supports(target));
      if (!factory) throw new UnsupportedError(`no image source handles ${request.image}`);
      const source = await factory.open(target, { credentials: request.credentials, signal: request.signal });
      try {
        return { target, source, resolved: await resolveImage(source, target, request.platform ?? this.options.hostPlatform, request.signal) };
      } catch (err) {
        await source.close().catch(() => undefined);
        throw err;
      }
    };
    if (targets.length === 1) return open(targets[0]!);
    return firstSuccess(targets, {
      name: (t) => ImageTarget.canonicalName(t),
      summary: `short name ${request.image} resolved nowhere`,
      signal: request.signal,
      attempt: open,
      onMiss: (t, e) => this.deps.logger.log('info', 'short-name.miss', { image: ImageTarget.canonicalName(t), code: e.code }),
    });
  }

  /** Resolve, judge, lease and fetch every layer, then record the image. Shared by both kinds of pull. */
  private async fetchImage(
    targets: readonly ImageTarget[],
    request: FormattedRequest,
    lease: Lease,
    bundle?: PlannedBundle,
  ): Promise<{ name: string; resolved: ResolvedImage; layers: { committed: CommittedLayer; pulled: PulledLayer }[] }> {
    const { target, source, resolved } = await this.openFirst(targets, request);
    let layers: { committed: CommittedLayer; pulled: PulledLayer }[];
    try {
      // Before the store is consulted: a cached image must pass today's policy too.
      await this.deps.policy?.check(this.policySubject(target, source, resolved, request.signal), isEncryptedImage(resolved), ImageTarget.canonicalName(target));
      request.onProgress?.({
        type: 'resolved',
        reference: ImageTarget.canonicalName(target),
        manifestDigest: resolved.manifestDigest.toString(),
        layers: resolved.manifest.layers.length,
      });
      await this.records.takeLease(lease, resolved.config.diffIds.map((d) => d.toString()), bundle);
      layers = await this.fetchLayers(source, resolved, request, lease);
    } finally {
      await source.close();
    }
    const name = ImageTarget.canonicalName(target);
    await this.records.recordImage(name, resolved, layers.map((l) => l.committed));
    return { name, resolved, layers };
  }

  private async measure(image: string, resolved: ResolvedImage, signal: AbortSignal | undefined): Promise<void> {
    await this.deps.attestation?.extendRuntimeMeasurement({
      domain: PULL_MEASUREMENT_DOMAIN,
      operation: PULL_MEASUREMENT_OPERATION,
      content: JSON.stringify({ image, digest: resolved.manifestDigest.toString() }),
    }, signal);
  }

  /** Evaluates the policy and admission for an image without fetching any layer. */
  async verify(request: VerifyRequest): Promise<VerifyResult> {
    const asPull: PullRequest = { image: request.image, bundle: '', platform: request.platform, credentials: request.credentials, signal: request.signal };
    const { target, source, resolved } = await this.openFirst(await this.targetsFor(request.image), asPull);
    try {
      const subject = this.policySubject(target, source, resolved, request.signal);
      const encrypted = isEncryptedImage(resolved);
      const verdict = await this.deps.policy?.judge(subject);
      let refusal: VerifyResult['refusal'];
      try {
        await this.deps.policy?.check(subject, encrypted, ImageTarget.canonicalName(target));
      } catch (err) {
        const e = asImageTsError(err);
        refusal = { code: e.code, message: e.message };
      }
      return {
        reference: ImageTarget.canonicalName(target),
        manifestDigest: resolved.manifestDigest.toString(),
        indexDigest: resolved.indexDigest?.toString(),
        encrypted,
        verdict,
        refusal,
      };
    } finally {
      await source.close();
    }
  }

  private policySubject(target: ImageTarget, source: ImageSource, resolved: ResolvedImage, signal: AbortSignal | undefined): PolicySubject {
    const reference = target.kind === 'registry' ? target.reference : undefined;
    return {
      reference,
      layout: target.kind === 'oci-layout' ? { dir: target.dir, ref: target.ref } : undefined,
      source,
      // Signatures are read where the image was read (a mirror), the policy judges the name the user gave.
      physical: source.physicalReference?.() ?? reference,
      manifestDigest: resolved.manifestDigest,
      indexDigest: resolved.indexDigest,
      signal,
    };
  }

  /** The format a pull with no bundle stores layers in: the configured snapshotter's. */
  private defaultLayerFormat(): LayerFormat | undefined {
    const wanted = this.options.defaultSnapshotter;
    return wanted === undefined ? undefined : this.deps.snapshotters.find((x) => x.name === wanted)?.layerFormat;
  }

  private async pickSnapshotter(name: SnapshotterName | undefined): Promise<Snapshotter> {
    const wanted = name ?? this.options.defaultSnapshotter;
    if (wanted === undefined) {
      for (const s of this.deps.snapshotters) if (await s.available()) return s;
      throw new UnsupportedError('no snapshotter is available here');
    }
    const s = this.deps.snapshotters.find((x) => x.name === wanted);
    if (!s) throw new UnsupportedError(`unknown snapshotter ${wanted}`);
    if (!(await s.available())) throw new UnsupportedError(`the ${s.name} snapshotter is not available here`);
    return s;
  }

  private warnCleanup(what: string, err: unknown): void {
    this.deps.logger.log('warn', 'cleanup-failed', { what, code: asImageTsError(err).code, message: asImageTsError(err).message });
  }

  private async fetchLayers(
    source: ImageSource,
    image: ResolvedImage,
    request: FormattedRequest,
    lease: Lease,
  ): Promise<{ committed: CommittedLayer; pulled: PulledLayer }[]> {
    const budget = new UnpackBudget(this.options.limits ?? {});
    const limit = request.maxConcurrentLayers ?? this.options.maxConcurrentLayers;
    const limiter = new Limiter(limit);
    const layerJobs = new Map<string, Promise<{ committed: CommittedLayer; fetched: boolean }>>();
    const controller = new AbortController();
    const signal = request.signal ? AbortSignal.any([request.signal, controller.signal]) : controller.signal;

    // Every key before any layer byte: a missing key costs no download. Also for
    // layers already in the store, so that holding the plaintext is not a way
    // around the key (as imgcrypt checks authorization).
    const secrets = await this.unwrapKeys(image.manifest.layers, request, limiter);

    const jobs = image.manifest.layers.map((desc, i) => {
      const diffId = image.config.diffIds[i]!;
      // The same diff_id twice in one image is one job.
      const key = diffId.toString();
      let job = layerJobs.get(key);
      if (!job) {
        job = this.layer(source, desc, diffId, secrets[i], limiter, signal, request, budget).then((r) => {
          if (r.fetched) lease.produced.add(key);
          return r;
        });
        layerJobs.set(key, job);
      }
      return job.then((r) => ({
        committed: r.committed,
        pulled: { digest: desc.digest.toString(), diffId: key, size: desc.size, fetched: r.fetched },
      }));
    });
    try {
      return await Promise.all(jobs);
    } catch (err) {
      // One bad layer stops the others; their staging is discarded by their own handlers.
      controller.abort(err);
      await Promise.allSettled(jobs);
      throw err;
    }
  }

  private async unwrapKeys(layers: readonly Descriptor[], request: PullRequest, limiter: Limiter): Promise<(LayerSecret | undefined)[]> {
    const encrypted = layers.some((d) => LayerEncryption.isEncrypted(d));
    if (!encrypted) return layers.map(() => undefined);
    const keys = this.deps.keys;
    const dc = request.decryptConfig ?? EMPTY_DECRYPT_CONFIG;
    return Promise.all(layers.map(async (desc) => {
      if (!LayerEncryption.isEncrypted(desc)) return undefined;
      const encryption = LayerEncryption.of(desc);
      if (!keys) throw new UnsupportedError(`layer ${desc.digest} is encrypted and this deployment has no key unwrapping configured`);
      const options = await limiter.run(() => keys.unwrap(`layer ${desc.digest}`, encryption, dc, request.signal));
      return { encryption, options };
    }));
  }

  private async layer(
    source: ImageSource,
    desc: Descriptor,
    diffId: Digest,
    secret: LayerSecret | undefined,
    limiter: Limiter,
    signal: AbortSignal,
    request: FormattedRequest,
    budget: UnpackBudget,
  ): Promise<{ committed: CommittedLayer; fetched: boolean }> {
    const progress = request.onProgress;
    const what = `layer ${desc.digest}`;
    const machine = new LayerStateMachine((_from, to) =>
      progress?.({ type: 'layer-state', digest: desc.digest.toString(), state: to, size: desc.size }),
    );
    const compression = layerCompression(secret ? secret.encryption.plainMediaType : desc.mediaType);
    if (compression === undefined || !this.deps.decompressor.supports(compression)) {
      throw new UnsupportedError(`layer ${desc.digest} has unsupported media type ${desc.mediaType}`);
    }
    try {
      const existing = await this.deps.layers.get(diffId);
      if (existing) {
        budget.addCommitted(existing.unpackedBytes ?? existing.size, what);
        machine.to('cached');
        return { committed: existing, fetched: false };
      }
      const key = diffId.toString();
      const job: LayerJob = { source, desc, diffId, secret, compression, signal, machine, onProgress: request.onProgress, budget, format: request.layerFormat };
      const flight = this.inFlight.do(key, () => this.produceOnceAcrossProcesses(job, limiter));
      if (flight.shared) machine.to('shared');
      const produced = await flight.promise;
      if (flight.shared) {
        budget.addCommitted(produced.committed.unpackedBytes ?? produced.committed.size, what);
        machine.to('committed');
      }
      return { committed: produced.committed, fetched: !flight.shared && produced.fetched };
    } catch (err) {
      if (!machine.done) machine.to('failed');
      throw err;
    }
  }

  /**
   * One process of those sharing the store produces a layer (containerd's
   * ingest); the others wait for its commit and reuse it, or take over when
   * it fails or dies. They wait outside their download slots, so meanwhile
   * they fetch the image's other layers: processes pulling one image split
   * its layers between them instead of each fetching all.
   */
  private async produceOnceAcrossProcesses(job: LayerJob, limiter: Limiter): Promise<{ committed: CommittedLayer; fetched: boolean }> {
    const { diffId, signal, machine } = job;
    for (;;) {
      const produced = await limiter.run(async () => {
        const attempt = async (): Promise<{ committed: CommittedLayer; fetched: boolean } | undefined> => {
          const ingest = await this.deps.layers.tryIngest(diffId);
          if (!ingest) return undefined;
          try {
            return await this.applier.apply(job);
          } finally {
            ingest.release();
          }
        };
        return this.downloads ? this.downloads.run(attempt) : attempt();
      });
      if (produced) return produced;
      if (machine.state === 'pending') machine.to('shared');
      this.deps.logger.log('info', 'layer.wait-other-process', { diffId: diffId.toString() });
      await this.deps.layers.waitIngest(diffId, signal);
    }
  }
}
