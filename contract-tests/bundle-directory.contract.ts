import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageTsError } from '../src/domain/errors.js';
import { ImageConfig } from '../src/domain/image/image-config.js';
import { buildRuntimeSpec } from '../src/domain/runtime/runtime-spec.js';
import type { BundleDirectory } from '../src/ports/snapshot/bundle-directory.js';
import { buildImage } from '../test/helpers/image-builder.js';

export interface BundleDirectoryFixture {
  readonly bundles: BundleDirectory;
  /** A bundle path that does not exist yet. */
  fresh(): string;
  /** Puts a file into a rootfs as the snapshotter would. */
  put(rootfs: string, path: string, content: string): Promise<void>;
  /** Whether anything of the bundle is left. */
  exists(bundle: string): Promise<boolean>;
  teardown(): Promise<void>;
}

const spec = buildRuntimeSpec(ImageConfig.parse(buildImage({ layers: [] }).config), { uid: 0, gid: 0, additionalGids: [] });

/** What every BundleDirectory must do: refuse a used bundle, read rootfs files, and undo itself. */
export function bundleDirectoryContract(name: string, make: () => Promise<BundleDirectoryFixture>): void {
  describe(`BundleDirectory contract: ${name}`, () => {
    it('creates a bundle once and refuses it a second time with BUNDLE_EXISTS', async () => {
      const f = await make();
      try {
        const b = f.fresh();
        const { rootfs, createdDir } = await f.bundles.create(b);
        assert.equal(rootfs, `${b}/rootfs`);
        assert.equal(createdDir, true);
        await f.bundles.writeConfig(b, spec);
        await assert.rejects(f.bundles.create(b), (e: unknown) => e instanceof ImageTsError && e.code === 'BUNDLE_EXISTS');
        assert.equal(await f.exists(b), true, 'the refused create did not remove it');
      } finally {
        await f.teardown();
      }
    });

    it('reads rootfs files, and undefined for absent ones', async () => {
      const f = await make();
      try {
        const { rootfs } = await f.bundles.create(f.fresh());
        await f.put(rootfs, '/etc/passwd', 'app:x:1:1::/:/bin/sh\n');
        assert.equal(await f.bundles.readRootfsFile(rootfs, '/etc/passwd', 1 << 20), 'app:x:1:1::/:/bin/sh\n');
        assert.equal(await f.bundles.readRootfsFile(rootfs, '/etc/group', 1 << 20), undefined);
      } finally {
        await f.teardown();
      }
    });

    it('remove() takes away what create and writeConfig made', async () => {
      const f = await make();
      try {
        const b = f.fresh();
        const { createdDir } = await f.bundles.create(b);
        await f.bundles.writeConfig(b, spec);
        await f.bundles.remove(b, createdDir);
        assert.equal(await f.exists(b), false);
        await f.bundles.create(b);
      } finally {
        await f.teardown();
      }
    });
  });
}
