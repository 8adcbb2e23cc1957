import { lstat, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { InvalidArgumentError } from '../../../domain/errors.js';
import { errnoCode } from '../../outbound/native/syscalls.js';

/**
 * Where a caller of `serve` may have a bundle made: a `bundle_path` must lie
 * inside one of the roots. The path must be absolute and free of `..`; its
 * parent is resolved through every symlink that exists now and must land
 * inside a resolved root, so a symlink in an existing parent cannot lead out.
 * (The bundle directory itself is never followed: BundleDirectory refuses a symlink
 * there.) No roots: no confinement, as the standalone profile has it.
 */
export class BundleRoots {
  private resolved: Promise<string[]> | undefined;

  constructor(private readonly roots: readonly string[]) {}

  get confined(): boolean {
    return this.roots.length > 0;
  }

  /** The path to use; INVALID_ARGUMENT (nothing created) when it is not inside a root. */
  async check(bundlePath: string): Promise<string> {
    if (!this.confined) return bundlePath;
    const refuse = (why: string): never => {
      throw new InvalidArgumentError(`bundle_path ${JSON.stringify(bundlePath)} ${why}; bundles go under ${this.roots.join(', ')} (serve.bundle_roots)`);
    };
    if (!isAbsolute(bundlePath)) refuse('is not absolute');
    if (bundlePath.split('/').includes('..')) refuse('has a .. component');
    const parent = await resolveExisting(dirname(bundlePath));
    const roots = await (this.resolved ??= Promise.all(this.roots.map((r) => resolveExisting(r))));
    const inside = roots.some((root) => {
      const rel = relative(root, parent);
      return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
    });
    if (!inside) refuse(`resolves to ${join(parent, bundlePath.slice(dirname(bundlePath).length + 1))}, outside every bundle root`);
    return bundlePath;
  }
}

/**
 * The path with every symlink that exists resolved: the longest existing
 * prefix through realpath, the rest (not there yet, so no links) appended.
 */
async function resolveExisting(path: string): Promise<string> {
  const rest: string[] = [];
  let cur = path;
  for (;;) {
    try {
      return join(await realpath(cur), ...rest.reverse());
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      // A dangling symlink on the way is refused: it could later be made to point anywhere.
      if ((await lstat(cur).catch(() => undefined))?.isSymbolicLink()) throw new InvalidArgumentError(`${cur} is a dangling symlink`);
      const up = dirname(cur);
      if (up === cur) return path;
      rest.push(cur.slice(up.length).replace(/^\//, ''));
      cur = up;
    }
  }
}
