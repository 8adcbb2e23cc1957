import { lazyImport } from '../../lazy.js';

/**
 * sigstore-js, loaded on first use: only a sigstoreSigned requirement with a
 * certificate trust root or a bundle needs it, and a warm pull never does.
 */
export const sigstoreVerify = lazyImport(() => import('@sigstore/verify'));
export const sigstoreBundle = lazyImport(() => import('@sigstore/bundle'));
export const sigstoreCore = lazyImport(() => import('@sigstore/core'));
