/// <reference lib="es2024.string" />
/**
 * Names as the tar holds them: bytes, not necessarily UTF-8. A layer may
 * carry a Latin-1 or Shift-JIS file name; decoding it as UTF-8 would turn
 * each bad byte into U+FFFD, so two names could become one and neither
 * would be made as written.
 *
 * Names stay JavaScript strings, so that path logic, sets and messages work
 * unchanged: valid UTF-8 decodes as usual, and each byte that is not part
 * of a valid UTF-8 sequence becomes the lone surrogate U+DC00 + byte (the
 * scheme Python calls surrogateescape). Valid UTF-8 never decodes to a
 * lone surrogate, so the mapping is one to one and reversible. Such a
 * string must reach the kernel as bytes: `fsPath` turns it back into a
 * Buffer, which node's fs and the native addon take as a path.
 */

import * as fs from 'node:fs';

const REPLACEMENT = '\uFFFD';
const ESCAPE_BASE = 0xdc00;
/** A lone surrogate of the escape range (the `u` flag makes surrogate pairs one code point). */
const ESCAPED = /[\uDC80-\uDCFF]/u;

/** bytes[start, end) as a name: UTF-8, with each invalid byte escaped. */
export function decodeName(bytes: Buffer, start: number, end: number): string {
  const s = bytes.toString('utf8', start, end);
  // U+FFFD appears where decoding failed (or where the name really holds it): only then look closer.
  return s.includes(REPLACEMENT) ? escapeDecode(bytes, start, end) : s;
}

/** Length of the valid UTF-8 sequence at i (RFC 3629: no overlongs, no surrogates, at most U+10FFFF), or 0. */
function sequenceLength(b: Uint8Array, i: number, end: number): number {
  const c = b[i]!;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => i + k < end && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

function escapeDecode(bytes: Buffer, start: number, end: number): string {
  let out = '';
  let run = start; // start of the current run of valid UTF-8
  let i = start;
  while (i < end) {
    const n = sequenceLength(bytes, i, end);
    if (n > 0) {
      i += n;
      continue;
    }
    out += bytes.toString('utf8', run, i) + String.fromCharCode(ESCAPE_BASE + bytes[i]!);
    run = ++i;
  }
  return out + bytes.toString('utf8', run, end);
}

/** The bytes a name stands for: the inverse of decodeName. */
export function encodeName(name: string): Buffer {
  if (!ESCAPED.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (const ch of name) { // by code point: a surrogate pair stays whole
    const u = ch.charCodeAt(0);
    if (ch.length === 1 && u >= ESCAPE_BASE + 0x80 && u <= ESCAPE_BASE + 0xff) {
      if (run) parts.push(Buffer.from(run, 'utf8'));
      run = '';
      parts.push(Buffer.of(u - ESCAPE_BASE));
    } else {
      run += ch;
    }
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** What to hand fs (and the addon) for this path: the string itself unless it holds escaped bytes. */
export function fsPath(path: string): string | Buffer {
  return path.isWellFormed() ? path : encodeName(path);
}

/** Whether a name holds bytes that are not UTF-8. */
export function isRawName(name: string): boolean {
  return !name.isWellFormed();
}

/** A directory's entry names as decodeName gives them, whatever their encoding. */
export function readdirNames(dir: string): string[] {
  const path = fsPath(dir);
  const names = fs.readdirSync(path);
  if (!names.some((n) => n.includes(REPLACEMENT))) return names;
  return fs.readdirSync(path, { encoding: 'buffer' }).map((b) => decodeName(b, 0, b.length));
}
