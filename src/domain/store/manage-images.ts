import { ImageTsError, NotFoundError } from '../errors.js';
import { Digest } from '../image/digest.js';
import { ImageTarget } from '../image/image-target.js';
import type { LayerFormat, LayerStore } from '../../ports/layer/layer-store.js';
import type { Logger } from '../../ports/observability/logger.js';
import type { BundleDirectory } from '../../ports/snapshot/bundle-directory.js';
import type { Snapshotter } from '../../ports/snapshot/snapshotter.js';
import type { BundleRecord, ImageRecord, MetadataStore, StoreState } from '../../ports/store/metadata-store.js';
import { reclaimAbandonedPulls } from './abandoned-pulls.js';
import { undoBundle } from './undo-bundle.js';

export interface LayerUsage {
  readonly diffId: string;
  readonly size: number;
  /** Images and bundles that use the layer; zero means gc may remove it. */
  readonly refs: number;
  /** How the store keeps it and the bytes it holds there; absent when the store cannot tell. */
  readonly stored?: StoredBytes | undefined;
}

/** Bytes a layer holds in the store, in the format it is kept in. */
export interface StoredBytes {
  readonly format: LayerFormat;
  readonly bytes: number;
}

/** An image as `list` shows it: each layer with what it holds in the store. */
export type ListedImage = ImageRecord & { readonly stored: readonly (StoredBytes | null)[]; readonly storedBytes: number };

/** The store's bytes by layer format, as `df` shows them. */
export interface StoreDiskUsage {
  readonly formats: Readonly<Record<LayerFormat, { readonly layers: number; readonly bytes: number }>>;
  readonly layers: number;
  readonly bytes: number;
  /** Bytes of layers no image, bundle or running pull uses: what gc would free. */
  readonly reclaimableBytes: number;
}

/** Finds an image by any of its names, its manifest digest or its config digest. */
export function findImage(state: StoreState, query: string): ImageRecord | undefined {
  if (Digest.isValid(query)) {
    return state.images[query] ?? Object.values(state.images).find((i) => i.configDigest === query);
  }
  let name: string;
  try {
    name = ImageTarget.canonicalName(ImageTarget.parse(query));
  } catch {
    name = query;
  }
  return Object.values(state.images).find((i) => i.names.includes(name) || i.names.includes(query));
}

/**
 * Reference counts are derived, never stored, so they cannot drift from the
 * records. Unexpired leases count too: they protect what running pulls use.
 */
export function layerUsage(state: StoreState, now: Date): LayerUsage[] {
  const refs = new Map<string, number>();
  for (const image of Object.values(state.images)) {
    for (const id of new Set(image.layers.map((l) => l.diffId))) refs.set(id, (refs.get(id) ?? 0) + 1);
  }
  for (const bundle of Object.values(state.bundles)) {
    for (const id of new Set(bundle.layers)) refs.set(id, (refs.get(id) ?? 0) + 1);
  }
  for (const lease of Object.values(state.leases)) {
    if (Date.parse(lease.expiresAt) <= now.getTime()) continue;
    for (const id of new Set(lease.layers)) refs.set(id, (refs.get(id) ?? 0) + 1);
  }
  const ids = new Set([...Object.keys(state.layers), ...refs.keys()]);
  return [...ids].map((diffId) => ({ diffId, size: state.layers[diffId]?.size ?? 0, refs: refs.get(diffId) ?? 0 }));
}

export interface ManageDeps {
  readonly metadata: MetadataStore;
  readonly layers: LayerStore;
  readonly snapshotters: readonly Snapshotter[];
  readonly bundles: BundleDirectory;
  readonly logger: Logger;
  readonly clock: () => Date;
  /** Whether a lease's owner process still runs: gc then undoes pulls that were killed midway. */
  readonly isOwnerAlive?: ((owner: number) => boolean) | undefined;
}

/** list, inspect, rm, gc and bundle rm: the store's housekeeping. */
export class ManageImages {
  constructor(private readonly deps: ManageDeps) {}

  async list(): Promise<ListedImage[]> {
    const state = await this.deps.metadata.read();
    const images = Object.values(state.images).sort((a, b) => (a.names[0] ?? '').localeCompare(b.names[0] ?? ''));
    const stored = await this.storedBytes(images.flatMap((i) => i.layers.map((l) => l.diffId)));
    return images.map((image) => {
      const layers = image.layers.map((l) => stored.get(l.diffId) ?? null);
      return { ...image, stored: layers, storedBytes: layers.reduce((n, l) => n + (l?.bytes ?? 0), 0) };
    });
  }

  async inspect(query: string): Promise<{ image: ImageRecord; layers: LayerUsage[]; bundles: string[] }> {
    const state = await this.deps.metadata.read();
    const image = findImage(state, query);
    if (!image) throw new NotFoundError(`no image ${query} in the store`);
    const usage = new Map(layerUsage(state, this.deps.clock()).map((u) => [u.diffId, u]));
    const stored = await this.storedBytes(image.layers.map((l) => l.diffId));
    return {
      image,
      layers: image.layers.map((l) => {
        const u = usage.get(l.diffId) ?? { diffId: l.diffId, size: 0, refs: 0 };
        const s = stored.get(l.diffId);
        return s ? { ...u, stored: s } : u;
      }),
      bundles: Object.values(state.bundles).filter((b) => b.manifestDigest === image.manifestDigest).map((b) => b.path),
    };
  }

  /** Every committed layer's bytes, summed by format. */
  async df(): Promise<StoreDiskUsage> {
    const state = await this.deps.metadata.read();
    const onDisk = (await this.deps.layers.list()).map((d) => d.toString());
    const stored = await this.storedBytes(onDisk);
    const used = new Set(layerUsage(state, this.deps.clock()).filter((u) => u.refs > 0).map((u) => u.diffId));
    const formats = { directory: { layers: 0, bytes: 0 }, erofs: { layers: 0, bytes: 0 } };
    let reclaimableBytes = 0;
    for (const id of onDisk) {
      const s = stored.get(id);
      if (!s) continue;
      formats[s.format].layers++;
      formats[s.format].bytes += s.bytes;
      if (!used.has(id)) reclaimableBytes += s.bytes;
    }
    return { formats, layers: onDisk.length, bytes: formats.directory.bytes + formats.erofs.bytes, reclaimableBytes };
  }

  /** What each layer holds in the store, one at a time (a directory layer is walked); none when the store cannot tell. */
  private async storedBytes(diffIds: readonly string[]): Promise<Map<string, StoredBytes>> {
    const out = new Map<string, StoredBytes>();
    const footprint = this.deps.layers.footprint?.bind(this.deps.layers);
    if (!footprint) return out;
    for (const id of new Set(diffIds)) {
      if (!Digest.isValid(id)) continue;
      const f = await footprint(Digest.parse(id));
      if (f) out.set(id, { format: f.format, bytes: f.bytes });
    }
    return out;
  }

  /** Drops the name (or, given a digest, every name). Layers stay until gc. */
  async remove(query: string): Promise<ImageRecord> {
    return this.deps.metadata.update((state) => {
      const image = findImage(state, query);
      if (!image) throw new NotFoundError(`no image ${query} in the store`);
      let name: string | undefined;
      try {
        name = Digest.isValid(query) ? undefined : ImageTarget.canonicalName(ImageTarget.parse(query));
      } catch {
        name = query;
      }
      const remaining = name === undefined ? [] : image.names.filter((n) => n !== name && n !== query);
      if (remaining.length === 0) delete state.images[image.manifestDigest];
      else state.images[image.manifestDigest] = { ...image, names: remaining };
      return image;
    });
  }

  /** Removes layers that no image and no bundle uses, and staging left by crashes. */
  async gc(): Promise<{ removedLayers: string[]; freedBytes: number; staleStaging: number }> {
    const staleStaging = await this.deps.layers.cleanStaging();
    const onDisk = (await this.deps.layers.list()).map((d) => d.toString());
    const removed = await this.deps.metadata.update(async (state) => {
      const now = this.deps.clock();
      await reclaimAbandonedPulls(state, now, this.deps);
      const used = new Set(layerUsage(state, now).filter((u) => u.refs > 0).map((u) => u.diffId));
      const victims = new Set([...onDisk, ...Object.keys(state.layers)].filter((id) => !used.has(id)));
      const stored = await this.storedBytes([...victims]);
      let freed = 0;
      for (const id of victims) {
        freed += stored.get(id)?.bytes ?? state.layers[id]?.size ?? 0;
        await this.deps.layers.remove(Digest.parse(id));
        delete state.layers[id];
      }
      return { ids: [...victims], freed };
    });
    return { removedLayers: removed.ids, freedBytes: removed.freed, staleStaging };
  }

  /** Unmounts a bundle's rootfs, deletes its writable dirs, its rootfs and config.json. */
  async removeBundle(path: string): Promise<BundleRecord> {
    const bundlePath = this.deps.bundles.resolve(path);
    const state = await this.deps.metadata.read();
    const record = state.bundles[bundlePath];
    if (!record) throw new ImageTsError('BUNDLE_NOT_FOUND', `no bundle at ${bundlePath} in the store`);
    await undoBundle(this.deps, { ...record, path: bundlePath });
    await this.deps.metadata.update((s) => {
      delete s.bundles[bundlePath];
    });
    return record;
  }
}
