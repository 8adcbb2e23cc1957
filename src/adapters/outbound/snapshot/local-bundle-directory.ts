import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BundleExistsError, ImageTsError, asImageTsError } from '../../../domain/errors.js';
import type { RuntimeSpec } from '../../../domain/runtime/runtime-spec.js';
import type { BundleDirectory } from '../../../ports/snapshot/bundle-directory.js';
import { errnoCode } from '../native/syscalls.js';

/** Same limit as the kernel's path walk. */
const MAX_SYMLINKS = 40;

/** What "not there" looks like during a path walk. */
function isAbsent(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export class LocalBundleDirectory implements BundleDirectory {
  resolve(path: string): string {
    return resolve(path);
  }

  async create(bundle: string): Promise<{ rootfs: string; createdDir: boolean }> {
    const dir = resolve(bundle);
    const rootfs = join(dir, 'rootfs');
    try {
      let existed = true;
      try {
        // lstat: a symlink at the bundle path is never followed; it counts as something already there.
        if (!(await lstat(dir)).isDirectory() || (await readdir(dir)).length > 0) throw new BundleExistsError(dir);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
        existed = false;
      }
      await mkdir(dir, { recursive: true, mode: 0o755 });
      try {
        await mkdir(rootfs, { mode: 0o755 });
      } catch (err) {
        // Another process created the same bundle between our check and here.
        if (errnoCode(err) === 'EEXIST') throw new BundleExistsError(dir);
        throw err;
      }
      return { rootfs, createdDir: !existed };
    } catch (err) {
      throw asImageTsError(err);
    }
  }

  /**
   * Resolves `path` as if rootfs were `/` (like openat2 RESOLVE_IN_ROOT):
   * absolute symlink targets restart at the rootfs, `..` stops at it, at
   * most 40 links. So an image's `/etc/passwd -> ../../../etc/shadow` reads
   * the image's own /etc/shadow, never the host's. Anything that is not a
   * regular file at the end (or a link loop) counts as absent.
   */
  async readRootfsFile(rootfs: string, path: string, maxBytes: number): Promise<string | undefined> {
    const root = resolve(rootfs);
    const todo = path.split('/').reverse();
    const cur: string[] = [];
    let links = 0;
    try {
      while (todo.length > 0) {
        const seg = todo.pop()!;
        if (seg === '' || seg === '.') continue;
        if (seg === '..') {
          cur.pop();
          continue;
        }
        const abs = join(root, ...cur, seg);
        const st = await lstat(abs);
        if (st.isSymbolicLink()) {
          if (++links > MAX_SYMLINKS) return undefined;
          const target = await readlink(abs);
          if (target.startsWith('/')) cur.length = 0;
          todo.push(...target.split('/').reverse());
          continue;
        }
        if (todo.some((s) => s !== '' && s !== '.') && !st.isDirectory()) return undefined;
        cur.push(seg);
      }
      if (cur.length === 0) return undefined; // the root is a directory
      // O_NOFOLLOW: the walk above already resolved every link; O_NONBLOCK: a fifo must not hang us.
      const fh = await open(join(root, ...cur), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        const st = await fh.stat();
        if (!st.isFile()) return undefined;
        if (st.size > maxBytes) throw new ImageTsError('INVALID_LAYER', `${path} in the image is larger than ${maxBytes} bytes`);
        const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
        let n = 0;
        while (n < buf.length) {
          const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
          if (bytesRead === 0) break;
          n += bytesRead;
        }
        if (n > maxBytes) throw new ImageTsError('INVALID_LAYER', `${path} in the image is larger than ${maxBytes} bytes`);
        return buf.subarray(0, n).toString('utf8');
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (isAbsent(err) || errnoCode(err) === 'ELOOP') return undefined;
      throw asImageTsError(err);
    }
  }

  /** Temp file plus rename: a reader sees the old config.json or the new one, never half of one. */
  async writeConfig(bundle: string, spec: RuntimeSpec): Promise<void> {
    const dir = resolve(bundle);
    const tmp = join(dir, `.config.json.${randomBytes(8).toString('hex')}.tmp`);
    try {
      await writeFile(tmp, `${JSON.stringify(spec, null, 2)}\n`, { mode: 0o644, flag: 'wx' });
      await rename(tmp, join(dir, 'config.json'));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw asImageTsError(err);
    }
  }

  async remove(bundle: string, createdDir: boolean): Promise<void> {
    const dir = resolve(bundle);
    try {
      await rm(join(dir, 'config.json'), { force: true });
      await rm(join(dir, 'rootfs'), { recursive: true, force: true });
      if (createdDir) {
        // Only if empty: anything else in it was put there by someone else.
        await rmdir(dir).catch((err: unknown) => {
          const code = errnoCode(err);
          if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        });
      }
    } catch (err) {
      throw asImageTsError(err);
    }
  }
}
