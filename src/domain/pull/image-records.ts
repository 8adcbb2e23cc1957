import { LayerEncryption } from '../encryption/layer-encryption.js';
import { ImageTsError } from '../errors.js';
import { Digest } from '../image/digest.js';
import { Platform } from '../image/platform.js';
import { reclaimAbandonedPulls, type ReclaimDeps } from '../store/abandoned-pulls.js';
import { layerUsage } from '../store/manage-images.js';
import type { CommittedLayer, LayerStore } from '../../ports/layer/layer-store.js';
import type { ImageRecord, MetadataStore, PlannedBundle, StoreState } from '../../ports/store/metadata-store.js';
import type { ResolvedImage } from './resolve-image.js';

/** Long enough for any pull; short enough that a crashed pull does not pin layers for long. */
const LEASE_MS = 6 * 60 * 60 * 1000;

/** A running pull's claim on the layers it needs, so that gc leaves them alone. */
export interface Lease {
  readonly id: string;
  held: boolean;
  /** Layers this pull committed itself, to take back when it fails on a limit. */
  readonly produced: Set<string>;
}

export interface RecordsDeps extends ReclaimDeps {
  readonly metadata: MetadataStore;
  readonly layers: LayerStore;
  readonly clock: () => Date;
  /** This process, named in its leases. */
  readonly owner?: number | undefined;
}

/** What the store records of pulls: leases while they run, the image when one succeeds. */
export class ImageRecords {
  constructor(private readonly deps: RecordsDeps) {}

  /** Before any layer is looked up: gc must not take what this pull is about to use. A dead pull's lease goes first. */
  async takeLease(lease: Lease, diffIds: readonly string[], bundle: PlannedBundle | undefined): Promise<void> {
    await this.deps.metadata.update(async (state) => {
      const now = this.deps.clock();
      await reclaimAbandonedPulls(state, now, this.deps);
      state.leases[lease.id] = { layers: [...diffIds], expiresAt: new Date(now.getTime() + LEASE_MS).toISOString(), owner: this.deps.owner, bundle };
    });
    lease.held = true;
  }

  /**
   * Ends the lease. A pull stopped by a limit also takes back the layers it
   * committed and nothing else uses: the image will not fit on a retry, so
   * they are not worth keeping (other failures keep them, for the next try).
   */
  async releaseLease(lease: Lease, failure?: unknown): Promise<void> {
    if (!lease.held) return;
    const takeBack = failure instanceof ImageTsError && failure.code === 'LIMIT_EXCEEDED' ? lease.produced : new Set<string>();
    await this.deps.metadata.update(async (state) => {
      delete state.leases[lease.id];
      if (takeBack.size === 0) return;
      const used = new Set(layerUsage(state, this.deps.clock()).filter((u) => u.refs > 0).map((u) => u.diffId));
      for (const id of takeBack) {
        if (used.has(id)) continue;
        await this.deps.layers.remove(Digest.parse(id));
        delete state.layers[id];
      }
    });
    lease.held = false;
  }

  /** The image under its name (a name points at one image), and its layers, in one update. */
  async recordImage(name: string, image: ResolvedImage, committed: readonly CommittedLayer[]): Promise<void> {
    const now = this.deps.clock().toISOString();
    await this.deps.metadata.update((state) => recordInto(state, name, image, committed, now));
  }
}

function recordInto(state: StoreState, name: string, image: ResolvedImage, committed: readonly CommittedLayer[], now: string): void {
  const manifestDigest = image.manifestDigest.toString();
  const previous = state.images[manifestDigest];
  // Re-pointing a tag drops it from the old image.
  for (const [digest, record] of Object.entries(state.images)) {
    if (digest !== manifestDigest && record.names.includes(name)) {
      record.names.splice(record.names.indexOf(name), 1);
      if (record.names.length === 0) delete state.images[digest];
    }
  }
  const record: ImageRecord = {
    names: [...new Set([...(previous?.names ?? []), name])],
    manifestDigest,
    indexDigest: image.indexDigest?.toString(),
    configDigest: image.configDigest.toString(),
    mediaType: image.manifest.mediaType,
    platform: Platform.format(image.platform),
    layers: image.manifest.layers.map((l, i) => ({
      digest: l.digest.toString(),
      diffId: image.config.diffIds[i]!.toString(),
      mediaType: l.mediaType,
      size: l.size,
      ...(LayerEncryption.isEncrypted(l) ? { encryption: LayerEncryption.schemes(l) } : {}),
    })),
    size: image.manifest.layers.reduce((n, l) => n + l.size, image.manifest.config.size),
    pulledAt: now,
    ...(image.config.config?.User ? { user: image.config.config.User } : {}),
  };
  state.images[manifestDigest] = record;
  for (const layer of committed) {
    state.layers[layer.diffId.toString()] ??= {
      diffId: layer.diffId.toString(),
      size: layer.size,
      whiteoutFormat: layer.whiteoutFormat,
      committedAt: now,
    };
  }
}
