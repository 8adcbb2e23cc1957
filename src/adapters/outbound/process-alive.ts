/**
 * Whether a process exists: what tells a stale lock or staging dir (its owner
 * was killed) from one in use. EPERM means it exists but belongs to another user.
 */
export function processAlive(pid: number): boolean {
  // kill(0) and kill(-n) signal process groups: they would call any caller alive.
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
