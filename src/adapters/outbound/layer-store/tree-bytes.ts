import { lstat, readdir } from 'node:fs/promises';

const SLASH = Buffer.from('/');

/**
 * Bytes a tree holds on its filesystem: allocated blocks (what tmpfs takes
 * from guest memory), each inode once however many names it has. Walked
 * when asked (`df`, `inspect`), never during a pull. Paths stay bytes, so
 * names that are not UTF-8 are counted too.
 */
export async function treeBytes(root: string): Promise<number> {
  const seen = new Set<number>();
  let total = 0;
  const visit = async (path: Buffer): Promise<void> => {
    const st = await lstat(path);
    if (st.nlink > 1 && !st.isDirectory()) {
      if (seen.has(st.ino)) return;
      seen.add(st.ino);
    }
    total += st.blocks * 512;
    if (!st.isDirectory()) return;
    for (const name of await readdir(path, { encoding: 'buffer' })) await visit(Buffer.concat([path, SLASH, name]));
  };
  await visit(Buffer.from(root));
  return total;
}
