import type { RuntimeSpec } from '../../domain/runtime/runtime-spec.js';

/** The bundle directory: `rootfs/` plus `config.json`. */
export interface BundleDirectory {
  /** Fails with BUNDLE_EXISTS if the directory exists and is not empty; creates it otherwise. */
  create(bundle: string): Promise<{ rootfs: string; createdDir: boolean }>;
  /** Reads a file inside the rootfs, resolving symlinks without leaving it. Undefined if absent. */
  readRootfsFile(rootfs: string, path: string, maxBytes: number): Promise<string | undefined>;
  writeConfig(bundle: string, spec: RuntimeSpec): Promise<void>;
  /** Removes what create and writeConfig made. */
  remove(bundle: string, createdDir: boolean): Promise<void>;
  resolve(path: string): string;
}
