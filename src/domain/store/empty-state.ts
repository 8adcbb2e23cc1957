import type { StoreState } from '../../ports/store/metadata-store.js';

/** The state of a store that holds nothing yet. */
export function emptyState(): StoreState {
  return { version: 1, images: {}, layers: {}, bundles: {}, leases: {} };
}
