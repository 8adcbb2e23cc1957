/**
 * Whether a process exists: what tells a stale lock or staging dir (its owner
 * was killed) from one in use. EPERM means it exists but belongs to another user.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
