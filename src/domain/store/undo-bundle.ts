import { ImageTsError, asImageTsError } from '../errors.js';
import type { BundleDirectory } from '../../ports/snapshot/bundle-directory.js';
import type { Snapshotter } from '../../ports/snapshot/snapshotter.js';
import type { PlannedBundle } from '../../ports/store/metadata-store.js';

/**
 * Takes a bundle apart: its snapshot first (an overlay mount must go before
 * its rootfs can), then its rootfs, config.json and, if we made it, the dir.
 */
export async function undoBundle(
  deps: { readonly snapshotters: readonly Snapshotter[]; readonly bundles: BundleDirectory },
  bundle: PlannedBundle,
): Promise<void> {
  const snapshotter = deps.snapshotters.find((s) => s.name === bundle.snapshot.snapshotter);
  if (!snapshotter) throw new ImageTsError('UNSUPPORTED', `bundle uses unknown snapshotter ${bundle.snapshot.snapshotter}`);
  try {
    await snapshotter.remove(bundle.snapshot);
    await deps.bundles.remove(bundle.path, bundle.createdDir);
  } catch (err) {
    throw asImageTsError(err);
  }
}
