import { DecryptFailedError } from '../../../../domain/errors.js';

/**
 * A small DER reader: enough to walk a CMS EnvelopedData. Definite lengths
 * only. It reads tags generically (class, constructed bit, number) so that
 * callers can accept the malformed encodings real producers emit, such as a
 * SEQUENCE tagged as primitive.
 */
export interface Tlv {
  /** The identifier octet as written (first octet only for high tag numbers). */
  readonly tag: number;
  /** 0 universal, 1 application, 2 context-specific, 3 private. */
  readonly cls: number;
  readonly constructed: boolean;
  readonly number: number;
  readonly value: Buffer;
  /** The whole encoding, header included. */
  readonly raw: Buffer;
}

export const UNIVERSAL = 0;
export const CONTEXT = 2;
export const TAG = { INTEGER: 2, OCTET_STRING: 4, OID: 6, SEQUENCE: 16, SET: 17 } as const;

const fail = (what: string, why: string): DecryptFailedError => new DecryptFailedError(`${what}: malformed DER (${why})`);

/** The TLV at `offset`; `what` names the structure for error messages. */
export function readTlv(buf: Buffer, offset: number, what: string): Tlv {
  let p = offset;
  const first = buf[p++];
  if (first === undefined) throw fail(what, 'truncated');
  let number = first & 0x1f;
  if (number === 0x1f) {
    number = 0;
    for (;;) {
      const b = buf[p++];
      if (b === undefined) throw fail(what, 'truncated tag');
      if (number > 0xffffff) throw fail(what, 'tag number too large');
      number = number * 128 + (b & 0x7f);
      if (!(b & 0x80)) break;
    }
  }
  const lenByte = buf[p++];
  if (lenByte === undefined) throw fail(what, 'truncated length');
  let length = lenByte;
  if (lenByte & 0x80) {
    const n = lenByte & 0x7f;
    if (n === 0) throw fail(what, 'indefinite length');
    if (n > 4) throw fail(what, 'length too large');
    length = 0;
    for (let i = 0; i < n; i++) {
      const b = buf[p++];
      if (b === undefined) throw fail(what, 'truncated length');
      length = length * 256 + b;
    }
  }
  if (p + length > buf.length) throw fail(what, 'length beyond the end of the data');
  return {
    tag: first,
    cls: first >> 6,
    constructed: (first & 0x20) !== 0,
    number,
    value: buf.subarray(p, p + length),
    raw: buf.subarray(offset, p + length),
  };
}

/** Every TLV in `buf`, back to back, which must fill it exactly. */
export function readAll(buf: Buffer, what: string): Tlv[] {
  const out: Tlv[] = [];
  let p = 0;
  while (p < buf.length) {
    const t = readTlv(buf, p, what);
    out.push(t);
    p += t.raw.length;
  }
  return out;
}

/** Exactly one TLV filling `buf`. */
export function readSingle(buf: Buffer, what: string): Tlv {
  const t = readTlv(buf, 0, what);
  if (t.raw.length !== buf.length) throw fail(what, 'trailing bytes');
  return t;
}

export const is = (t: Tlv | undefined, cls: number, number: number): t is Tlv => t !== undefined && t.cls === cls && t.number === number;

/** The children of a constructed universal type (SEQUENCE, SET, ...), checking the tag. */
export function childrenOf(t: Tlv | undefined, number: number, what: string): Tlv[] {
  if (!is(t, UNIVERSAL, number) || !t.constructed) throw fail(what, `expected universal ${number} (constructed)`);
  return readAll(t.value, what);
}

export function primitive(t: Tlv | undefined, number: number, what: string): Buffer {
  if (!is(t, UNIVERSAL, number) || t.constructed) throw fail(what, `expected universal ${number}`);
  return t.value;
}

/** Dotted form of an OBJECT IDENTIFIER. */
export function oid(t: Tlv | undefined, what: string): string {
  const v = primitive(t, TAG.OID, what);
  if (v.length === 0) throw fail(what, 'empty OID');
  const arcs: number[] = [];
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (n > 2 ** 45) throw fail(what, 'OID arc too large');
    n = n * 128 + (b & 0x7f);
    if (b & 0x80) {
      if (i === v.length - 1) throw fail(what, 'truncated OID');
      continue;
    }
    if (arcs.length === 0) arcs.push(n < 80 ? Math.floor(n / 40) : 2, n < 80 ? n % 40 : n - 80);
    else arcs.push(n);
    n = 0;
  }
  return arcs.join('.');
}

/** A small non-negative INTEGER. */
export function smallInt(t: Tlv | undefined, what: string): number {
  const v = primitive(t, TAG.INTEGER, what);
  if (v.length === 0 || v.length > 6 || (v[0]! & 0x80) !== 0) throw fail(what, 'expected a small non-negative INTEGER');
  return v.readUIntBE(0, v.length);
}
