import { asImageTsError } from '../errors.js';
import type { Logger } from '../../ports/observability/logger.js';
import type { BundleDirectory } from '../../ports/snapshot/bundle-directory.js';
import type { Snapshotter } from '../../ports/snapshot/snapshotter.js';
import type { LeaseRecord, StoreState } from '../../ports/store/metadata-store.js';
import { undoBundle } from './undo-bundle.js';

export interface ReclaimDeps {
  readonly snapshotters: readonly Snapshotter[];
  readonly bundles: BundleDirectory;
  readonly logger: Logger;
  /** Whether a lease's owner process still runs; without it only expiry ends a lease. */
  readonly isOwnerAlive?: ((owner: number) => boolean) | undefined;
}

function abandoned(lease: LeaseRecord, deps: ReclaimDeps): boolean {
  return lease.owner !== undefined && deps.isOwnerAlive !== undefined && !deps.isOwnerAlive(lease.owner);
}

/**
 * Ends the leases of pulls whose process died (kill -9, power loss) and
 * undoes the bundle each was making: its overlay mount, its writable dirs,
 * its rootfs and config.json. Runs inside a metadata update, so exactly one
 * process reclaims a lease. A bundle path that a recorded bundle or a live
 * lease now names belongs to someone else and is left alone. Expired leases
 * only stop protecting their layers: their owner may still be running.
 */
export async function reclaimAbandonedPulls(state: StoreState, now: Date, deps: ReclaimDeps): Promise<number> {
  const dead = Object.entries(state.leases).filter(([, lease]) => abandoned(lease, deps));
  for (const [id] of dead) delete state.leases[id];
  for (const [id, lease] of Object.entries(state.leases)) {
    if (Date.parse(lease.expiresAt) <= now.getTime()) delete state.leases[id];
  }
  const claimed = new Set([...Object.keys(state.bundles), ...Object.values(state.leases).flatMap((l) => (l.bundle ? [l.bundle.path] : []))]);
  for (const [id, lease] of dead) {
    const plan = lease.bundle;
    deps.logger.log('info', 'lease.reclaimed', { lease: id, owner: lease.owner, bundle: plan?.path });
    if (!plan || claimed.has(plan.path)) continue;
    try {
      await undoBundle(deps, plan);
    } catch (err) {
      // The lease is gone either way; what could not be undone is reported, not retried forever.
      const e = asImageTsError(err);
      deps.logger.log('warn', 'cleanup-failed', { what: 'abandoned bundle', bundle: plan.path, code: e.code, message: e.message });
    }
  }
  return dead.length;
}
