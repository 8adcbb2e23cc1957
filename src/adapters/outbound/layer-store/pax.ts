import { invalidTar } from './invalid-tar.js';
import { decodeName } from './raw-name.js';

/**
 * What the extended headers before an entry say about it: PAX ('x')
 * records, and GNU's long name ('L') and long link ('K') bodies.
 *
 * PAX bodies are parsed byte-exact (node-tar's parser decodes them as
 * UTF-8, which mangles binary xattr values such as security.capability, and
 * drops `SCHILY.xattr.*`). A record with an empty value deletes the key
 * (POSIX pax, "extended header"): the ustar field, or nothing, applies
 * again. An empty `path=` therefore never names the layer root, and an
 * empty `SCHILY.xattr.user.x=` sets no attribute. Global headers ('g') are
 * not read: see the unpacker.
 */
export interface ExtendedHeader {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  atime?: number;
  xattrs?: Map<string, Buffer>;
  sparse?: SparseRecords;
}

/** GNU.sparse.* records: GNU tar's PAX sparse formats 0.0, 0.1 and 1.0. */
export interface SparseRecords {
  /** GNU.sparse.size (0.x) or GNU.sparse.realsize (1.0): the file's size, holes included. */
  realSize?: number;
  numBlocks?: number;
  /** Offset and length pairs, flattened: repeated GNU.sparse.offset and .numbytes (0.0), or GNU.sparse.map (0.1). */
  map?: number[];
  major?: number;
  minor?: number;
  /** The file's name (0.1 and 1.0 put a made-up GNUSparseFile.N/NAME in the header). */
  name?: string;
}

type NumberKey = 'size' | 'uid' | 'gid' | 'mtime' | 'atime';

// As Go's archive/tar reads them: a sign may lead, nothing else may (`0x10`, `1e3`, ` 12`).
const DIGITS = /^\+?[0-9]+$/;
const TIME = /^[+-]?[0-9]+(\.[0-9]*)?$/;
const SCHILY_XATTR = 'SCHILY.xattr.';
const LIBARCHIVE_XATTR = 'LIBARCHIVE.xattr.';
const GNU_SPARSE = 'GNU.sparse.';

/** A non-negative decimal integer, as PAX writes sizes and ids. */
export function paxInteger(s: string, what: string): number {
  const n = DIGITS.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n)) throw invalidTar(`bad ${what} ${JSON.stringify(s.slice(0, 40))}`);
  return n;
}

function paxTime(s: string, key: string): number {
  const n = TIME.test(s) ? Number(s) : NaN;
  // The whole seconds must be a safe integer: the addon makes a time_t of them.
  if (!Number.isSafeInteger(Math.trunc(n))) throw invalidTar(`bad PAX ${key} ${JSON.stringify(s.slice(0, 40))}`);
  return n;
}

/** `%XX` escapes to bytes: libarchive writes an xattr name so that `=`, `%` and unprintable bytes survive. */
function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  const bytes = Buffer.from(s, 'latin1');
  const out = Buffer.alloc(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const hex = bytes[i] === 0x25 && i + 2 < bytes.length ? bytes.toString('latin1', i + 1, i + 3) : '';
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      out[n++] = parseInt(hex, 16);
      i += 2;
    } else {
      out[n++] = bytes[i]!;
    }
  }
  return out.toString('utf8', 0, n);
}

/** PAX records, `<len> <key>=<value>\n`, byte-exact (values may be binary), applied over what `into` holds. */
export function parsePax(body: Buffer, into: ExtendedHeader): void {
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // some writers NUL-pad the body
    const sp = body.indexOf(0x20, pos);
    const lenText = sp > pos ? body.toString('latin1', pos, sp) : '';
    const len = /^[0-9]+$/.test(lenText) ? Number(lenText) : NaN;
    if (!Number.isSafeInteger(len) || len <= sp - pos + 1 || pos + len > body.length || body[pos + len - 1] !== 0x0a) {
      throw invalidTar('malformed PAX record');
    }
    const start = sp + 1;
    const end = pos + len - 1;
    pos += len;
    const eq = body.indexOf(0x3d, start);
    if (eq <= start || eq >= end + 1) throw invalidTar('malformed PAX record');
    const key = body.toString('utf8', start, eq);
    const value = body.subarray(eq + 1, end);
    record(key, value, into);
  }
}

function record(key: string, value: Buffer, into: ExtendedHeader): void {
  const empty = value.length === 0;
  switch (key) {
    case 'path':
    case 'linkpath':
      if (empty) delete into[key];
      else into[key] = decodeName(value, 0, value.length);
      return;
    case 'size':
    case 'uid':
    case 'gid':
      setNumber(into, key, empty ? undefined : paxInteger(value.toString('latin1'), `PAX ${key}`));
      return;
    case 'mtime':
    case 'atime':
      setNumber(into, key, empty ? undefined : paxTime(value.toString('latin1'), key));
      return;
  }
  if (key.startsWith(SCHILY_XATTR)) {
    xattr(into, key.slice(SCHILY_XATTR.length), empty ? undefined : Buffer.from(value));
  } else if (key.startsWith(LIBARCHIVE_XATTR)) {
    // libarchive's own spelling: the name URL-encoded, the value base64 (unpadded).
    xattr(into, percentDecode(key.slice(LIBARCHIVE_XATTR.length)), empty ? undefined : Buffer.from(value.toString('latin1'), 'base64'));
  } else if (key.startsWith(GNU_SPARSE)) {
    sparseRecord(key.slice(GNU_SPARSE.length), value, (into.sparse ??= {}));
  }
  // Anything else (ctime, uname, gname, hdrcharset, comment, other vendors' keys) says nothing we apply.
}

function setNumber(into: ExtendedHeader, key: NumberKey, n: number | undefined): void {
  if (n === undefined) delete into[key];
  else into[key] = n;
}

function xattr(into: ExtendedHeader, name: string, value: Buffer | undefined): void {
  if (name === '') throw invalidTar('PAX xattr record without a name');
  if (value === undefined) into.xattrs?.delete(name);
  else (into.xattrs ??= new Map()).set(name, value);
}

function sparseRecord(key: string, value: Buffer, sparse: SparseRecords): void {
  const text = value.toString('latin1');
  const empty = value.length === 0;
  switch (key) {
    case 'size':
    case 'realsize':
      if (empty) delete sparse.realSize;
      else sparse.realSize = paxInteger(text, `GNU.sparse.${key}`);
      return;
    case 'numblocks':
      if (empty) delete sparse.numBlocks;
      else sparse.numBlocks = paxInteger(text, 'GNU.sparse.numblocks');
      return;
    case 'major':
    case 'minor':
      if (empty) delete sparse[key];
      else sparse[key] = paxInteger(text, `GNU.sparse.${key}`);
      return;
    case 'name':
      if (empty) delete sparse.name;
      else sparse.name = decodeName(value, 0, value.length);
      return;
    case 'map': // 0.1: "offset,size,offset,size,..."
      if (empty) delete sparse.map;
      else sparse.map = text.split(',').map((n) => paxInteger(n, 'GNU.sparse.map'));
      return;
    case 'offset': // 0.0: the pairs come as repeated records, in order
    case 'numbytes': {
      const map = (sparse.map ??= []);
      if ((key === 'offset') !== (map.length % 2 === 0)) throw invalidTar(`GNU.sparse.${key} out of order`);
      map.push(paxInteger(text, `GNU.sparse.${key}`));
      return;
    }
  }
}

/** The name a GNU 'L' or 'K' body holds: up to its first NUL; empty is no name. */
export function longName(body: Buffer): string | undefined {
  let end = body.indexOf(0);
  if (end < 0) end = body.length;
  return end === 0 ? undefined : decodeName(body, 0, end);
}
