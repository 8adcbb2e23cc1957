import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A rootfs as comparable data: every path with its type, mode, owner, size,
 * content hash or link target, and xattrs. Two pulls that should agree must
 * produce equal trees.
 */
export async function treeOf(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const full = join(root, path);
      const st = await lstat(full);
      let what: string;
      if (st.isSymbolicLink()) what = `-> ${await readlink(full)}`;
      else if (st.isFile()) what = createHash('sha256').update(await readFile(full)).digest('hex').slice(0, 16);
      else if (st.isCharacterDevice() || st.isBlockDevice()) what = `dev ${st.rdev}`;
      else what = '';
      const xattrs = st.isSymbolicLink() ? '' : execFileSync('getfattr', ['-d', '-m', '-', '--absolute-names', full], { encoding: 'utf8' })
        .split('\n').filter((l) => l && !l.startsWith('#')).sort().join(',');
      out.push(`${path} ${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? st.size : ''} ${st.isFile() ? `n${st.nlink}` : ''} ${what} ${xattrs}`);
      if (st.isDirectory()) await walk(path);
    }
  }
  await walk('');
  return out;
}
