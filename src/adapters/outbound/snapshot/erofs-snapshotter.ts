import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import type { LayerFormat } from '../../../ports/layer/layer-store.js';
import type { SnapshotterName } from '../../../ports/snapshot/snapshotter.js';
import { canBuildErofs } from '../erofs/mkfs-erofs.js';
import { OverlaySnapshotter } from './overlay-snapshotter.js';

/**
 * The overlay stack over layers stored as compressed EROFS images (one file
 * per layer, mounted read-only through a loop device): what a guest whose
 * store sits on tmpfs keeps in memory is the compressed image, not the tree.
 * New layers of its bundles are committed as EROFS; layers already stored
 * as directories are used as they are.
 */
export class ErofsSnapshotter extends OverlaySnapshotter {
  override readonly name: SnapshotterName = 'erofs';
  override readonly layerFormat: LayerFormat = 'erofs';

  override async available(): Promise<boolean> {
    if (!(await super.available()) || !canBuildErofs() || !existsSync('/dev/loop-control')) return false;
    try {
      if (/\terofs$/m.test(await readFile('/proc/filesystems', 'utf8'))) return true;
    } catch {
      return false;
    }
    // Not loaded yet: the first mount loads the module (fs-erofs), if the kernel ships it.
    return existsSync(`/lib/modules/${release()}/kernel/fs/erofs`);
  }
}
