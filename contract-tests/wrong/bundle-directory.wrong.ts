/**
 * Wrong on purpose: a bundle fs that hands out an existing bundle again
 * instead of refusing it, so a second pull would write into the first
 * one's rootfs and config.
 */
import { MemoryBundleDirectory } from '../../test/mocks/memory-snapshot.js';
import { bundleDirectoryContract } from '../bundle-directory.contract.js';

class ReusingBundleDirectory extends MemoryBundleDirectory {
  override async create(bundle: string): Promise<{ rootfs: string; createdDir: boolean }> {
    if (this.bundles.has(bundle)) return { rootfs: `${bundle}/rootfs`, createdDir: false };
    return super.create(bundle);
  }
}

bundleDirectoryContract('wrong: a bundle fs that reuses an existing bundle', async () => {
  const bundles = new ReusingBundleDirectory();
  let n = 0;
  return {
    bundles,
    fresh: () => `/bundles/b${n++}`,
    put: async (_rootfs, path, content) => {
      bundles.rootfsFiles.set(path, content);
    },
    exists: async (b) => bundles.bundles.has(b),
    teardown: async () => undefined,
  };
});
