/**
 * A minimal tar writer for tests: ustar headers plus a PAX extended header
 * whenever a name, link name or number does not fit, or xattrs are given.
 * Names are written verbatim (`../x`, `/abs`, `a/../../b` included) so that
 * tests can build hostile layers byte for byte; a name or link given as
 * bytes is written as those bytes (names that are not UTF-8).
 */

/** 'global' is a global PAX header ('g') holding the entry's `pax` and `paxList` records, not a file. */
export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'global';

export interface TarEntry {
  name: string | Uint8Array;
  type?: TarEntryType;
  content?: string | Uint8Array;
  /** Symlink target or hard link target. */
  linkname?: string | Uint8Array;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch; fractions and times before 1970 go into PAX. */
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  /** Written as PAX `SCHILY.xattr.<name>` records. */
  xattrs?: Record<string, string | Uint8Array>;
  /** Extra raw PAX records. */
  pax?: Record<string, string>;
  /** More raw PAX records, in this order after the others (a key may repeat). */
  paxList?: readonly (readonly [key: string, value: string | Uint8Array])[];
}

export interface TarOptions {
  /** Bytes appended after the end-of-archive blocks. */
  trailer?: Uint8Array;
  /** Leave out the two zero blocks. */
  noEndBlocks?: boolean;
}

const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
  global: 'g',
};

const BLOCK = 512;

function fitsOctal(n: number, width: number): boolean {
  return Number.isInteger(n) && n >= 0 && n < 8 ** (width - 1);
}

function writeOctal(buf: Buffer, off: number, width: number, n: number): void {
  buf.write(n.toString(8).padStart(width - 1, '0') + '\0', off, width, 'ascii');
}

function bytesOf(s: string | Uint8Array): Buffer {
  return typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s);
}

function writeString(buf: Buffer, off: number, width: number, s: string | Uint8Array): void {
  bytesOf(s).copy(buf, off, 0, width);
}

/** One PAX record: `<len> <key>=<value>\n`, where len counts itself. */
function paxRecord(key: string, value: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

function header(fields: {
  name: string | Uint8Array;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string | Uint8Array;
  devmajor: number;
  devminor: number;
}): Buffer {
  const h = Buffer.alloc(BLOCK);
  writeString(h, 0, 100, fields.name);
  writeOctal(h, 100, 8, fields.mode);
  writeOctal(h, 108, 8, fields.uid);
  writeOctal(h, 116, 8, fields.gid);
  writeOctal(h, 124, 12, fields.size);
  writeOctal(h, 136, 12, fields.mtime);
  h.write('        ', 148, 8, 'ascii');
  h.write(fields.typeflag, 156, 1, 'ascii');
  writeString(h, 157, 100, fields.linkname);
  h.write('ustar\u000000', 257, 8, 'binary');
  writeOctal(h, 329, 8, fields.devmajor);
  writeOctal(h, 337, 8, fields.devminor);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

function padded(data: Uint8Array): Buffer[] {
  const rest = data.length % BLOCK;
  return rest === 0 ? [Buffer.from(data)] : [Buffer.from(data), Buffer.alloc(BLOCK - rest)];
}

export function tar(entries: readonly TarEntry[], options: TarOptions = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = typeof e.content === 'string' ? Buffer.from(e.content, 'utf8') : Buffer.from(e.content ?? []);
    const mode = e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644);
    const uid = e.uid ?? 0;
    const gid = e.gid ?? 0;
    const mtime = e.mtime ?? 1_700_000_000;
    const linkname = e.linkname ?? '';
    const records: Buffer[] = [];
    const name = bytesOf(e.name).length > 100 ? `PaxLongName${parts.length}` : e.name;
    if (name !== e.name) records.push(paxRecord('path', bytesOf(e.name)));
    const shortLink = bytesOf(linkname).length > 100 ? 'PaxLongLink' : linkname;
    if (shortLink !== linkname) records.push(paxRecord('linkpath', bytesOf(linkname)));
    if (!fitsOctal(uid, 8)) records.push(paxRecord('uid', Buffer.from(String(uid))));
    if (!fitsOctal(gid, 8)) records.push(paxRecord('gid', Buffer.from(String(gid))));
    if (!fitsOctal(mtime, 12)) records.push(paxRecord('mtime', Buffer.from(String(mtime))));
    for (const [k, v] of Object.entries(e.xattrs ?? {})) {
      records.push(paxRecord(`SCHILY.xattr.${k}`, typeof v === 'string' ? Buffer.from(v, 'utf8') : v));
    }
    for (const [k, v] of Object.entries(e.pax ?? {})) records.push(paxRecord(k, Buffer.from(v, 'utf8')));
    for (const [k, v] of e.paxList ?? []) records.push(paxRecord(k, bytesOf(v)));
    if (type === 'global') {
      const body = Buffer.concat(records);
      parts.push(header({ name: 'GlobalHead', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0, typeflag: 'g', linkname: '', devmajor: 0, devminor: 0 }), ...padded(body));
      continue;
    }
    if (records.length) {
      const body = Buffer.concat(records);
      parts.push(
        header({ name: 'PaxHeader', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0, typeflag: 'x', linkname: '', devmajor: 0, devminor: 0 }),
        ...padded(body),
      );
    }
    parts.push(
      header({
        name,
        mode,
        uid: fitsOctal(uid, 8) ? uid : 0,
        gid: fitsOctal(gid, 8) ? gid : 0,
        size: type === 'file' ? content.length : 0,
        mtime: fitsOctal(Math.floor(mtime), 12) ? Math.floor(mtime) : 0,
        typeflag: TYPEFLAG[type],
        linkname: shortLink,
        devmajor: e.devmajor ?? 0,
        devminor: e.devminor ?? 0,
      }),
    );
    if (type === 'file' && content.length) parts.push(...padded(content));
  }
  if (!options.noEndBlocks) parts.push(Buffer.alloc(2 * BLOCK));
  if (options.trailer) parts.push(Buffer.from(options.trailer));
  return Buffer.concat(parts);
}
