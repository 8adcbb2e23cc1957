import { decodeName } from './raw-name.js';

/**
 * One 512-byte tar header block, decoded field by field (POSIX ustar, GNU and
 * v7). Written for the unpacker's hot path: a small-file layer has one header
 * per few hundred bytes of content, and decoding through strings, regular
 * expressions and Date objects cost more than the syscalls that follow.
 */
export interface TarHeader {
  /** With the ustar prefix joined on; undefined when the field is empty. */
  readonly path: string | undefined;
  readonly linkpath: string | undefined;
  /** Numeric fields are undefined when the field holds no number. */
  readonly mode: number | undefined;
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  readonly size: number | undefined;
  /** Seconds since the epoch. */
  readonly mtime: number | undefined;
  /** The type flag byte (0 for the old-style regular file). */
  readonly typeflag: number;
  /** Matches the sum of the block's bytes, unsigned or signed as Go's archive/tar and GNU tar accept. */
  readonly checksumValid: boolean;
}

export class TarHeaderError extends Error {}

/** NUL-terminated (or field-wide) name bytes, as decodeName keeps them (bytes that are not UTF-8 survive). */
function text(block: Buffer, off: number, len: number): string | undefined {
  let end = block.indexOf(0, off);
  if (end < 0 || end > off + len) end = off + len;
  return end === off ? undefined : decodeName(block, off, end);
}

/**
 * Octal digits after optional leading spaces, up to the first other byte; or
 * GNU base-256 when the first byte is 0x80 (positive) or 0xff (negative).
 */
export function numeric(block: Buffer, off: number, len: number): number | undefined {
  const first = block[off]!;
  const end = off + len;
  if (first & 0x80) {
    let n = 0;
    if (first === 0x80) {
      for (let i = off + 1; i < end; i++) n = n * 256 + block[i]!;
    } else if (first === 0xff) {
      for (let i = off + 1; i < end; i++) n = n * 256 + (255 - block[i]!);
      n = -(n + 1);
    } else {
      throw new TarHeaderError('invalid base-256 number');
    }
    if (!Number.isSafeInteger(n)) throw new TarHeaderError('number out of range');
    return n;
  }
  let i = off;
  while (i < end && block[i] === 0x20) i++;
  let n = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = block[i]! - 0x30;
    if (c < 0 || c > 7) break;
    n = n * 8 + c;
    digits++;
  }
  return digits === 0 ? undefined : n;
}

const USTAR = Buffer.from('ustar\u000000', 'latin1');

/** The header's byte sum with the checksum field counted as spaces; signed bytes for the old writers that summed so. */
function byteSum(block: Buffer, signed: boolean): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += signed && block[i]! > 127 ? block[i]! - 256 : block[i]!;
  for (let i = 156; i < 512; i++) sum += signed && block[i]! > 127 ? block[i]! - 256 : block[i]!;
  return sum;
}

export function decodeHeader(block: Buffer): TarHeader {
  const sum = numeric(block, 148, 8);
  let path = text(block, 0, 100);
  // Only POSIX ustar has the prefix; GNU keeps atime and ctime there.
  if (block.compare(USTAR, 0, 8, 257, 265) === 0) {
    const prefix = text(block, 345, 155);
    if (prefix !== undefined) path = `${prefix}/${path ?? ''}`;
  }
  return {
    path,
    linkpath: text(block, 157, 100),
    mode: numeric(block, 100, 8),
    uid: numeric(block, 108, 8),
    gid: numeric(block, 116, 8),
    size: numeric(block, 124, 12),
    mtime: numeric(block, 136, 12),
    typeflag: block[156]!,
    checksumValid: sum === byteSum(block, false) || sum === byteSum(block, true),
  };
}
