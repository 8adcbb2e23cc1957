import { ImageTsError } from '../errors.js';

export interface ResolvedUser {
  readonly uid: number;
  readonly gid: number;
  readonly additionalGids: readonly number[];
}

export class UserNotFoundError extends ImageTsError {
  constructor(message: string) {
    super('INVALID_CONFIG', message);
  }
}

interface PasswdEntry { name: string; uid: number; gid: number }
interface GroupEntry { name: string; gid: number; members: string[] }

const MAX_ID = 0xffffffff;

function parseId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : undefined;
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#')) continue;
    const uid = parseId(f[2]!);
    const gid = parseId(f[3]!);
    if (uid !== undefined && gid !== undefined) out.push({ name: f[0]!, uid, gid });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || line.startsWith('#')) continue;
    const gid = parseId(f[2]!);
    if (gid !== undefined) out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').filter(Boolean) });
  }
  return out;
}

/**
 * Resolves an image `User` (`user`, `uid`, `user:group`, `uid:gid`, ...) the
 * way runc/containerd do: names through the rootfs' /etc/passwd and
 * /etc/group, numbers as they are, and supplementary groups from /etc/group.
 */
export function resolveUser(spec: string | undefined, passwd: string | undefined, group: string | undefined): ResolvedUser {
  const value = (spec ?? '').trim();
  if (value === '') return { uid: 0, gid: 0, additionalGids: [] };
  const [userPart, groupPart] = splitOnce(value, ':');
  const users = passwd !== undefined ? parsePasswd(passwd) : [];
  const groups = group !== undefined ? parseGroup(group) : [];

  let uid: number;
  let gid: number;
  let userName: string | undefined;
  const numericUid = parseId(userPart);
  const byName = users.find((u) => u.name === userPart);
  if (byName) {
    uid = byName.uid;
    gid = byName.gid;
    userName = byName.name;
  } else if (numericUid !== undefined) {
    uid = numericUid;
    const entry = users.find((u) => u.uid === numericUid);
    gid = entry?.gid ?? 0;
    userName = entry?.name;
  } else {
    throw new UserNotFoundError(`image user ${JSON.stringify(userPart)} is not in the image's /etc/passwd`);
  }

  if (groupPart !== undefined && groupPart !== '') {
    const g = groups.find((e) => e.name === groupPart);
    const numericGid = parseId(groupPart);
    if (g) gid = g.gid;
    else if (numericGid !== undefined) gid = numericGid;
    else throw new UserNotFoundError(`image group ${JSON.stringify(groupPart)} is not in the image's /etc/group`);
    // An explicit group replaces the supplementary list, as runc does.
    return { uid, gid, additionalGids: [] };
  }
  const additional = userName === undefined
    ? []
    : [...new Set(groups.filter((g) => g.members.includes(userName) && g.gid !== gid).map((g) => g.gid))];
  return { uid, gid, additionalGids: additional };
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
