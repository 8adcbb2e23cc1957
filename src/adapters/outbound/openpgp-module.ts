import { lazyImport } from './lazy.js';

/** openpgp is large: only a pgp recipient or a simple-signing requirement loads it, once for both. */
export const openpgp = lazyImport(() => import('openpgp'));
