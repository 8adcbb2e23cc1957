import { ImageTsError, asImageTsError } from '../../../domain/errors.js';
import { UmountFlags, errnoCode, type NativeSyscalls } from './syscalls.js';

/** A failed mount or unmount as MOUNT_FAILED, with the errno name; a full disk stays NO_SPACE. */
export function mountFailed(what: string, err: unknown): ImageTsError {
  const code = errnoCode(err);
  if (code === 'ENOSPC') return asImageTsError(err);
  return new ImageTsError('MOUNT_FAILED', `${what}: ${code ?? (err instanceof Error ? err.message : String(err))}`, { cause: err });
}

/**
 * Unmounts `target`. When something still uses it (a shell, a container) it
 * is detached now and the kernel frees it once idle; a target that is not, or
 * no longer, a mount point (EINVAL, ENOENT) counts as unmounted.
 */
export function unmount(native: NativeSyscalls, target: string): void {
  try {
    native.umount2(target, 0);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EINVAL' || code === 'ENOENT') return;
    if (code !== 'EBUSY') throw mountFailed(`unmount ${target}`, err);
    try {
      native.umount2(target, UmountFlags.MNT_DETACH);
    } catch (err2) {
      throw mountFailed(`unmount ${target}`, err2);
    }
  }
}
