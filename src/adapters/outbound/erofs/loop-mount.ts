import { closeSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UnsupportedError } from '../../../domain/errors.js';
import { mountFailed, unmount } from '../native/mounts.js';
import { MountFlags, errnoCode, nativeSyscalls } from '../native/syscalls.js';

/**
 * How an EROFS layer is mounted: read-only, and with neither setuid nor
 * device nodes honoured through this mount itself, which is only a store
 * path. An overlay that stacks it as a lower dir is not affected: exec and
 * open of the overlay's files check the overlay's own mount, so an image's
 * setuid binaries and device nodes keep working in its containers, and
 * overlayfs finds whiteouts (0:0 char devices) by their inode, never by
 * opening them. test/unit/loop-mount.test.ts holds all three.
 */
export const EROFS_MOUNT_FLAGS = MountFlags.MS_RDONLY | MountFlags.MS_NOSUID | MountFlags.MS_NODEV;

/**
 * Mounts the EROFS image file at `target` through an autoclear loop device:
 * the kernel detaches the device when the mount goes, or when this process
 * dies before it mounted, so no path leaves a loop device bound.
 */
export function mountErofsImage(image: string, target: string): void {
  const native = nativeSyscalls();
  if (!native.loopAttach) throw new UnsupportedError('the native helper predates loop devices: run npm install');
  let attached: [fd: number, device: string];
  try {
    attached = native.loopAttach(resolve(image));
  } catch (err) {
    throw mountFailed(`attach ${image} to a loop device`, err);
  }
  const [fd, device] = attached;
  try {
    native.mount(device, target, 'erofs', EROFS_MOUNT_FLAGS, null);
  } catch (err) {
    throw mountFailed(`mount ${image} (${device}) on ${target}`, err);
  } finally {
    closeSync(fd); // the mount holds the device now, or nothing does and it detaches
  }
}

/**
 * Unmounts an EROFS layer; its loop device detaches with it. A busy mount is
 * detached lazily, and its device goes when the last user does.
 */
export function unmountErofsImage(target: string): void {
  unmount(nativeSyscalls(), target);
}

/**
 * The loop devices ('/dev/loopN') whose backing file is `dirPrefix` or lies
 * under it, read from /sys/block/loopN/loop/backing_file: for leak checks.
 */
export async function loopDevicesBackedBy(dirPrefix: string): Promise<string[]> {
  const prefix = resolve(dirPrefix);
  const under = prefix.endsWith('/') ? prefix : `${prefix}/`;
  const found: string[] = [];
  for (const name of await readdir('/sys/block')) {
    if (!/^loop\d+$/.test(name)) continue;
    let backing: string;
    try {
      backing = (await readFile(join('/sys/block', name, 'loop', 'backing_file'), 'utf8')).replace(/\n$/, '');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue; // not bound (sysfs has no loop/ dir then)
      throw err;
    }
    const file = backing.replace(/ \(deleted\)$/, ''); // the backing file was unlinked while bound
    if (file === prefix || file.startsWith(under)) found.push(`/dev/${name}`);
  }
  return found.sort((a, b) => Number(a.slice(9)) - Number(b.slice(9)));
}
