import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { LocalBundleDirectory } from '../src/adapters/outbound/snapshot/local-bundle-directory.js';
import { MemoryBundleDirectory } from '../test/mocks/memory-snapshot.js';
import { bundleDirectoryContract } from './bundle-directory.contract.js';

bundleDirectoryContract('filesystem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'image-ts-bundle-directory-'));
  let n = 0;
  return {
    bundles: new LocalBundleDirectory(),
    fresh: () => join(dir, `b${n++}`),
    put: async (rootfs, path, content) => {
      await mkdir(dirname(join(rootfs, path)), { recursive: true });
      await writeFile(join(rootfs, path), content);
    },
    exists: async (b) => existsSync(b),
    teardown: () => rm(dir, { recursive: true, force: true }),
  };
});

bundleDirectoryContract('in-memory mock', async () => {
  const bundles = new MemoryBundleDirectory();
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
