import * as fs from 'node:fs';

/** Who owns what we create under root, if that is simply our effective uid and gid. */
export function creationOwner(root: string): { uid: number; gid: number } | undefined {
  const uid = process.geteuid?.();
  const gid = process.getegid?.();
  if (uid === undefined || gid === undefined) return undefined;
  const st = fs.statSync(root);
  return st.mode & 0o2000 || st.gid !== gid ? undefined : { uid, gid }; // 0o2000: setgid
}

/** The process umask, read without the set-and-restore race of process.umask(). */
function readUmask(): number | undefined {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'latin1'));
    return m ? parseInt(m[1]!, 8) : undefined;
  } catch {
    return undefined;
  }
}

/** Read once: the modes a new file gets are its requested mode less these bits. */
export const UMASK = readUmask();
