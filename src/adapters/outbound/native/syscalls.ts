import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImageTsError } from '../../../domain/errors.js';

/**
 * Typed view of native/src/syscalls.c. Every call is synchronous; failures
 * throw errors shaped like node's own fs errors (`code` is the errno name,
 * e.g. 'EPERM', 'ENOTSUP'; `syscall`; `path`).
 */
export interface NativeSyscalls {
  /** `mode` carries the file type (fs.constants.S_IFCHR, S_IFBLK, S_IFIFO) and permission bits. */
  mknod(path: NativePath, mode: number, major: number, minor: number): void;
  /** Never follows a symlink at `path`. */
  lsetxattr(path: NativePath, name: string, value: Uint8Array): void;
  /** Null when the attribute is absent (ENODATA). */
  lgetxattr(path: NativePath, name: string): Buffer | null;
  /** Attribute names; empty where the filesystem has no xattr support. */
  llistxattr(path: NativePath): string[];
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  /**
   * Creates a regular file (O_EXCL|O_NOFOLLOW, so EEXIST when the name is
   * taken), writes all of `data`, then applies the owner (flags & 1), the full
   * mode (flags & 2) and the times (seconds), and closes it.
   */
  writeFile(path: NativePath, data: Uint8Array, mode: number, uid: number, gid: number, atime: number, mtime: number, flags: number): void;
  /** The owner, mode and times steps of writeFile for an open descriptor, which stays open (node opened it, node closes it). */
  finishFile(fd: number, mode: number, uid: number, gid: number, atime: number, mtime: number, flags: number): void;
  /** flock(2): false when LOCK_NB was asked and another open file holds the lock. The kernel drops a dead holder's locks. */
  flock(fd: number, operation: number): boolean;
  /** SO_PEERCRED of a connected unix socket: who connected it. */
  peerCred(fd: number): [pid: number, uid: number, gid: number];
  /**
   * lseek(2). With SEEK_DATA or SEEK_HOLE, -1 when no such region starts at
   * or after `offset` (ENXIO). Absent from addons built before it was added.
   */
  readonly lseek?: (fd: number, offset: number, whence: number) => number;
  /**
   * The times of whatever is at `path`, a symlink itself included, in
   * seconds, before 1970 too (node's utimes family reads a negative time as
   * "now"). Absent from addons built before it was added.
   */
  readonly lutimes?: (path: NativePath, atime: number, mtime: number) => void;
  /**
   * Binds the file at `path`, read-only, to a free loop device: the device's
   * open descriptor (close-on-exec) and its path, e.g. '/dev/loop3'. The
   * device is autoclear, so the kernel detaches it when its last opener goes:
   * keep `fd` open until mount(2) holds the device, then close it; the device
   * then goes at umount, or with the process if it dies before mounting, and
   * is never left bound (before Linux 5.8, binding and autoclear are two
   * steps, and a death between them is the exception). Callers take turns by
   * a lock on /dev/loop-control, and a device someone else took first is
   * retried (EBUSY). Absent from addons built before it was added.
   */
  readonly loopAttach?: (path: string) => [fd: number, device: string];
  /** ISA-L gzip decoding (native/src/gunzip.c); present only when the addon was built with libisal. */
  readonly gunzipOpen?: () => GunzipHandle;
  /**
   * Decodes input into fresh chunkSize buffers, returning after maxChunks full
   * ones (0 or absent: no limit): the input bytes consumed, whether output
   * may be pending (push the rest of the input, even none, to get it), then
   * the output as [buffer, bytes used] pairs, flattened.
   */
  readonly gunzipPush?: (handle: GunzipHandle, input: Uint8Array, chunkSize: number, maxChunks?: number) => GunzipOutput;
  /** Throws (code EGZIP) unless the last gzip member ended cleanly. */
  readonly gunzipEnd?: (handle: GunzipHandle) => void;
}

/** A path as a string, or as the bytes of a name that is not UTF-8 (see layer-store/raw-name.ts). */
export type NativePath = string | Uint8Array;

/** lseek whence values from <unistd.h>. */
export const SeekWhence = { SEEK_SET: 0, SEEK_DATA: 3, SEEK_HOLE: 4 } as const;

/** An open ISA-L decoder, owned by the addon. */
export type GunzipHandle = { readonly __brand: 'GunzipHandle' };

/** What gunzipPush returns: [consumed, more, buffer, used, buffer, used, ...]. */
export type GunzipOutput = [consumed: number, more: boolean, ...chunks: (Buffer | number)[]];

/** Flags from <sys/mount.h>. */
export const MountFlags = { MS_RDONLY: 1, MS_NOSUID: 2, MS_NODEV: 4 } as const;
export const UmountFlags = { MNT_FORCE: 1, MNT_DETACH: 2 } as const;
/** Operations from <sys/file.h>. */
export const FlockOps = { LOCK_SH: 1, LOCK_EX: 2, LOCK_NB: 4, LOCK_UN: 8 } as const;

/** The errno name a native (or node fs) error carries, if any. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

const ADDON = join('native', 'build', 'Release', 'syscalls.node');

let loaded: NativeSyscalls | Error | undefined;

/** Walks up from this module so the addon is found from src/ (tsx) and from a compiled dist/ alike. */
function findAddon(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

function load(): NativeSyscalls | Error {
  if (loaded === undefined) {
    try {
      const file = findAddon();
      if (!file) throw new Error(`${ADDON} not found`);
      loaded = createRequire(import.meta.url)(file) as NativeSyscalls;
    } catch (err) {
      loaded = err instanceof Error ? err : new Error(String(err));
    }
  }
  return loaded;
}

/** The native helper; throws UNSUPPORTED when it was not built. Loaded once. */
export function nativeSyscalls(): NativeSyscalls {
  const m = load();
  if (m instanceof Error) throw new ImageTsError('UNSUPPORTED', 'native helper not built: run npm install', { cause: m });
  return m;
}

/** The native helper, or undefined when it was not built. */
export function tryNativeSyscalls(): NativeSyscalls | undefined {
  const m = load();
  return m instanceof Error ? undefined : m;
}
