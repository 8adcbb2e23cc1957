import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { resolve } from 'node:path';

export interface TreeOptions {
  /** Modification times, in whole seconds. */
  mtimes?: boolean;
  /** Blocks allocated to each regular file: tells a file whose holes were kept from one written out in full. */
  blocks?: boolean;
}

/** Bytes as text: printable ASCII as is, every other byte as \xNN, so names that are not UTF-8 stay distinct. */
function shown(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) out += b >= 0x21 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}

/**
 * A rootfs as comparable data: every path with its type, mode, owner, size,
 * content hash or link target, and xattrs (and, when asked, mtimes in whole
 * seconds and allocated blocks). Two pulls that should agree must produce
 * equal trees. Names and link targets are read as bytes, so a name that is
 * not UTF-8 is compared as written. One `getfattr -R` reads every xattr (a
 * process per file took minutes for a few thousand files).
 */
export async function treeOf(rootfs: string, options: TreeOptions = {}): Promise<string[]> {
  const root = resolve(rootfs);
  // Keyed by the path's bytes (latin1), which is how getfattr's octal escapes decode.
  const xattrs = new Map<string, string>();
  const dump = execFileSync('getfattr', ['-R', '-h', '-d', '-m', '-', '--absolute-names', root], { encoding: 'latin1', maxBuffer: 1 << 28 });
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
  const rootBytes = Buffer.from(root);
  async function walk(rel: Buffer | undefined): Promise<void> {
    const dir = rel ? Buffer.concat([rootBytes, Buffer.from('/'), rel]) : rootBytes;
    const names = (await readdir(dir, { encoding: 'buffer' })).sort(Buffer.compare);
    for (const name of names) {
      const path = rel ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      const full = Buffer.concat([rootBytes, Buffer.from('/'), path]);
      const st = await lstat(full);
      let what: string;
      if (st.isSymbolicLink()) what = `-> ${shown(await readlink(full, { encoding: 'buffer' }))}`;
      else if (st.isFile()) what = createHash('sha256').update(await readFile(full)).digest('hex').slice(0, 16);
      else if (st.isCharacterDevice() || st.isBlockDevice()) what = `dev ${st.rdev}`;
      else what = '';
      const x = st.isSymbolicLink() ? '' : (xattrs.get(full.toString('latin1')) ?? '');
      const mtime = options.mtimes ? ` t${Math.floor(st.mtimeMs / 1000)}` : '';
      const blocks = options.blocks && st.isFile() ? ` b${st.blocks}` : '';
      out.push(`${shown(path)} ${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? st.size : ''} ${st.isFile() ? `n${st.nlink}` : ''} ${what} ${x}${mtime}${blocks}`);
      if (st.isDirectory()) await walk(path);
    }
  }
  await walk(undefined);
  return out;
}
