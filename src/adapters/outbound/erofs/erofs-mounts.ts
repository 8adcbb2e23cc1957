import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImageTsError, UnsupportedError, asImageTsError } from '../../../domain/errors.js';
import type { CommittedLayer } from '../../../ports/layer/layer-store.js';
import { nativeSyscalls } from '../native/syscalls.js';
import { EROFS_MOUNT_FLAGS, mountErofsImage } from './loop-mount.js';
import { fileSha256, findProgram } from './mkfs-erofs.js';
import { veritysetupVerify } from './verity.js';

const run = promisify(execFile);

/**
 * What is checked of a layer image before it is mounted:
 * - `none`: nothing (the image was checked when it was built);
 * - `sha256`: the whole file against the sha256 recorded at commit;
 * - `verity`: its dm-verity tree. Where device-mapper exists the image is
 *   mounted through dm-verity, so every block is checked as it is read;
 *   elsewhere `veritysetup verify` checks it all once before the mount.
 */
export type ErofsCheck = 'none' | 'sha256' | 'verity';

/** dm names of one bundle's verity devices: `imagets-<snapshot id>-<n>`. */
const dmName = (id: string, n: number): string => `imagets-${id}-${n}`;

/** The same veritysetup that hasDeviceMapper found, sbin dirs included. */
const veritysetup = (): string => findProgram('veritysetup') ?? 'veritysetup';

function hasDeviceMapper(): boolean {
  return existsSync('/dev/mapper/control') && findProgram('veritysetup') !== undefined;
}

function damaged(layer: CommittedLayer, what: string): ImageTsError {
  return new ImageTsError('STORE', `layer ${layer.diffId} image fails its ${what} check: the store copy is damaged; remove the image and pull it again`);
}

/** Layers stored as EROFS images, mounted read-only for one bundle's overlay stack. */
export class ErofsMounts {
  constructor(private readonly check: ErofsCheck) {}

  /**
   * Each erofs layer mounted at `dir/<n>`, and the layers with those mounts
   * as their paths; directory layers pass as they are. The checks run at
   * once, the mounts one by one.
   */
  async mountAll(layers: readonly CommittedLayer[], dir: string, id: string): Promise<CommittedLayer[]> {
    if (!layers.some((l) => l.format === 'erofs')) return [...layers];
    const dm = this.check === 'verity' && hasDeviceMapper();
    await Promise.all(layers.map((l) => (l.format === 'erofs' && !dm ? this.verify(l) : undefined)));
    const out: CommittedLayer[] = [];
    for (const [n, layer] of layers.entries()) {
      if (layer.format !== 'erofs') {
        out.push(layer);
        continue;
      }
      const target = join(dir, String(n));
      try {
        await mkdir(target, { recursive: true, mode: 0o700 });
      } catch (err) {
        throw asImageTsError(err);
      }
      if (dm && layer.image?.verity) await this.mountVerity(layer, dmName(id, n), target);
      else mountErofsImage(layer.path, target);
      out.push({ ...layer, path: target });
    }
    return out;
  }

  private async verify(layer: CommittedLayer): Promise<void> {
    const image = layer.image;
    if (!image || this.check === 'none') return;
    if (this.check === 'verity' && image.verity) {
      if (!(await veritysetupVerify(layer.path, image.verity.hashPath, image.verity.rootHash))) throw damaged(layer, 'dm-verity');
      return;
    }
    // sha256, and verity for an image built without a tree
    const got = await fileSha256(layer.path).catch((err: unknown) => {
      throw asImageTsError(err);
    });
    if (got.sha256 !== image.sha256 || got.bytes !== image.bytes) throw damaged(layer, 'sha256');
  }

  /** Not run here (no device-mapper in this sandbox): `veritysetup open` sets up its own loop device. */
  private async mountVerity(layer: CommittedLayer, name: string, target: string): Promise<void> {
    const verity = layer.image?.verity;
    if (!verity) throw new UnsupportedError(`layer ${layer.diffId} has no dm-verity tree`);
    try {
      await run(veritysetup(), ['open', layer.path, name, verity.hashPath, verity.rootHash]);
    } catch (err) {
      throw new ImageTsError('MOUNT_FAILED', `veritysetup open ${name}: ${(err as { stderr?: string }).stderr?.trim() || String(err)}`, { cause: err });
    }
    try {
      nativeSyscalls().mount(`/dev/mapper/${name}`, target, 'erofs', EROFS_MOUNT_FLAGS, null);
    } catch (err) {
      await run(veritysetup(), ['close', name]).catch(() => undefined);
      throw new ImageTsError('MOUNT_FAILED', `mount ${name} on ${target}: ${String(err)}`, { cause: err });
    }
  }

  /**
   * Closes the verity devices of a snapshot (all of them when id is
   * undefined is never asked: only its own). Loop devices need nothing:
   * they were bound with autoclear and go with their mount.
   */
  async closeDevices(id: string | undefined): Promise<void> {
    if (id === undefined || !existsSync('/dev/mapper')) return;
    const prefix = dmName(id, 0).slice(0, -1);
    for (const name of readdirSync('/dev/mapper').filter((n) => n.startsWith(prefix))) {
      await run(veritysetup(), ['close', name]).catch((err: unknown) => {
        throw new ImageTsError('MOUNT_FAILED', `veritysetup close ${name}: ${String(err)}`, { cause: err });
      });
    }
  }
}
