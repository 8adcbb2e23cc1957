import * as fs from 'node:fs';
import type { NativePath, NativeSyscalls } from './syscalls.js';

/**
 * Access and modification times, in seconds, before 1970 too. Node's
 * utimes family reads a negative time as "now", so a file dated 1960 would
 * get the time of the pull; the addon's calls take any time. Without the
 * addon, node's calls are all there is.
 */
export function setFdTimes(native: NativeSyscalls | undefined, fd: number, atime: number, mtime: number): void {
  if (native) native.finishFile(fd, 0, 0, 0, atime, mtime, 0);
  else fs.futimesSync(fd, atime, mtime);
}

/** The times of whatever is at `path`; a symlink is never followed. */
export function setPathTimes(native: NativeSyscalls | undefined, path: NativePath, atime: number, mtime: number): void {
  if (native?.lutimes) native.lutimes(path, atime, mtime);
  else fs.lutimesSync(typeof path === 'string' ? path : Buffer.from(path), atime, mtime);
}
