import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A rootfs as comparable data: every path with its type, mode, owner, size,
 * content hash or link target, and xattrs (and, when asked, mtimes in whole seconds). Two pulls that should agree must
 * produce equal trees. One `getfattr -R` reads every xattr (a process per
 * file took minutes for a few thousand files).
 */
export async function treeOf(root: string, options: { mtimes?: boolean } = {}): Promise<string[]> {
  const xattrs = new Map<string, string>();
  const dump = execFileSync('getfattr', ['-R', '-d', '-m', '-', '--absolute-names', root], { encoding: 'utf8', maxBuffer: 1 << 28 });
  let file: string | undefined;
  let lines: string[] = [];
  const flush = (): void => {
    if (file !== undefined) xattrs.set(file, lines.sort().join(','));
  };
  for (const line of dump.split('\n')) {
    if (line.startsWith('# file: ')) {
      flush();
      file = line.slice('# file: '.length).replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
      lines = [];
    } else if (line && !line.startsWith('#')) {
      lines.push(line);
    }
  }
  flush();
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const full = join(root, path);
      const st = await lstat(full);
      let what: string;
      if (st.isSymbolicLink()) what = `-> ${await readlink(full)}`;
      else if (st.isFile()) what = createHash('sha256').update(await readFile(full)).digest('hex').slice(0, 16);
      else if (st.isCharacterDevice() || st.isBlockDevice()) what = `dev ${st.rdev}`;
      else what = '';
      const x = st.isSymbolicLink() ? '' : (xattrs.get(full) ?? '');
      const mtime = options.mtimes ? ` t${Math.floor(st.mtimeMs / 1000)}` : '';
      out.push(`${path} ${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? st.size : ''} ${st.isFile() ? `n${st.nlink}` : ''} ${what} ${x}${mtime}`);
      if (st.isDirectory()) await walk(path);
    }
  }
  await walk('');
  return out;
}

