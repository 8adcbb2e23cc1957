import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Unmounts every mount at or below `dir`, deepest first (lazily if busy), so the tree can be removed. */
export function unmountBelow(dir: string): void {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
  for (const m of mounts.sort((a, b) => b.length - a.length)) {
    try {
      execFileSync('umount', [m]);
    } catch {
      execFileSync('umount', ['-l', m]);
    }
  }
}
