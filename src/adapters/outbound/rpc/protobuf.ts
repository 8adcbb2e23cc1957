import { InvalidArgumentError } from '../../../domain/errors.js';

/**
 * Just enough of the proto3 wire format for the CDH, AA, key-provider and
 * ttrpc messages, which have a handful of scalar fields each: no schema, no
 * code generation. Fields are written in the order the caller writes them.
 */

export class ProtobufError extends InvalidArgumentError {
  constructor(why: string) {
    super(`malformed protobuf message: ${why}`);
  }
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
const MAX_FIELD = 2 ** 29 - 1;
const U64 = (1n << 64n) - 1n;

function varint(value: bigint): Buffer {
  const out: number[] = [];
  let v = value;
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

function smallVarint(value: number): Buffer {
  if (value < 0x80) return Buffer.of(value);
  return varint(BigInt(value));
}

const toBig = (v: number | bigint, what: string): bigint => {
  if (typeof v === 'bigint') return v;
  if (!Number.isSafeInteger(v)) throw new InvalidArgumentError(`${what} ${v} is not a safe integer`);
  return BigInt(v);
};

/**
 * Proto3 implicit presence: scalars equal to their default are left out,
 * unless `present` says the field is `optional` and was set.
 */
export class ProtoWriter {
  private readonly parts: Buffer[] = [];

  private tag(field: number, wire: number): void {
    if (!Number.isInteger(field) || field < 1 || field > MAX_FIELD) throw new InvalidArgumentError(`protobuf field number ${field}`);
    this.parts.push(smallVarint(field * 8 + wire));
  }

  private len(field: number, bytes: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.parts.push(smallVarint(bytes.length), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
    return this;
  }

  string(field: number, value: string | undefined, present = false): this {
    if (value === undefined || (value === '' && !present)) return this;
    return this.len(field, Buffer.from(value, 'utf8'));
  }

  bytes(field: number, value: Uint8Array | undefined, present = false): this {
    if (value === undefined || (value.length === 0 && !present)) return this;
    return this.len(field, value);
  }

  uint64(field: number, value: number | bigint | undefined, present = false): this {
    if (value === undefined) return this;
    const v = toBig(value, 'uint64');
    if (v < 0n || v > U64) throw new InvalidArgumentError(`uint64 ${v} is out of range`);
    if (v === 0n && !present) return this;
    this.tag(field, WIRE_VARINT);
    this.parts.push(varint(v));
    return this;
  }

  /** int64 and int32 alike: negative numbers take ten bytes, as protoc writes them. */
  int64(field: number, value: number | bigint | undefined, present = false): this {
    if (value === undefined) return this;
    const v = toBig(value, 'int64');
    if (v < -(1n << 63n) || v >= 1n << 63n) throw new InvalidArgumentError(`int64 ${v} is out of range`);
    if (v === 0n && !present) return this;
    this.tag(field, WIRE_VARINT);
    this.parts.push(varint(BigInt.asUintN(64, v)));
    return this;
  }

  int32(field: number, value: number | undefined, present = false): this {
    if (value !== undefined && (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31)) {
      throw new InvalidArgumentError(`int32 ${value} is out of range`);
    }
    return this.int64(field, value, present);
  }

  enum(field: number, value: number | undefined, present = false): this {
    return this.int32(field, value, present);
  }

  bool(field: number, value: boolean | undefined, present = false): this {
    if (value === undefined || (!value && !present)) return this;
    this.tag(field, WIRE_VARINT);
    this.parts.push(Buffer.of(value ? 1 : 0));
    return this;
  }

  /** A nested message is always written, even when empty: presence matters for messages. */
  message(field: number, encoded: Uint8Array | ProtoWriter): this {
    return this.len(field, encoded instanceof ProtoWriter ? encoded.finish() : encoded);
  }

  /** map<string,string>: one entry message {key=1; value=2} per pair. */
  map(field: number, entries: Iterable<readonly [string, string]>): this {
    for (const [k, v] of entries) this.message(field, new ProtoWriter().string(1, k).string(2, v));
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

interface Field {
  readonly wire: number;
  /** The varint for WIRE_VARINT; the bytes otherwise. */
  readonly int: bigint;
  readonly data: Buffer;
}

const EMPTY = Buffer.alloc(0);
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A decoded message: every field by number, in wire order. Scalars read the
 * last occurrence (proto3 merge rule); a field of the wrong wire type is an
 * error rather than a silently wrong value. Unknown fields are just not read.
 */
export class ProtoReader {
  private constructor(private readonly fields: ReadonlyMap<number, readonly Field[]>) {}

  static decode(buf: Uint8Array): ProtoReader {
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
    const fields = new Map<number, Field[]>();
    let pos = 0;
    const readVarint = (): bigint => {
      let result = 0n;
      for (let i = 0; i < 10; i++) {
        if (pos >= b.length) throw new ProtobufError('truncated varint');
        const byte = b[pos++]!;
        if (i === 9 && byte > 1) throw new ProtobufError('varint longer than 64 bits');
        result |= BigInt(byte & 0x7f) << BigInt(7 * i);
        if (byte < 0x80) return result;
      }
      throw new ProtobufError('varint longer than 10 bytes');
    };
    const take = (n: number): Buffer => {
      if (n > b.length - pos) throw new ProtobufError('field runs past the end of the message');
      const out = b.subarray(pos, pos + n);
      pos += n;
      return out;
    };
    while (pos < b.length) {
      const key = readVarint();
      const wire = Number(key & 7n);
      const no = key >> 3n;
      if (no < 1n || no > BigInt(MAX_FIELD)) throw new ProtobufError(`field number ${no}`);
      let field: Field;
      switch (wire) {
        case WIRE_VARINT:
          field = { wire, int: readVarint(), data: EMPTY };
          break;
        case WIRE_FIXED64:
          field = { wire, int: 0n, data: take(8) };
          break;
        case WIRE_FIXED32:
          field = { wire, int: 0n, data: take(4) };
          break;
        case WIRE_LEN: {
          const n = readVarint();
          if (n > BigInt(b.length - pos)) throw new ProtobufError('length-delimited field runs past the end of the message');
          field = { wire, int: 0n, data: take(Number(n)) };
          break;
        }
        default:
          throw new ProtobufError(`wire type ${wire} (groups are not proto3)`);
      }
      const list = fields.get(Number(no));
      if (list) list.push(field);
      else fields.set(Number(no), [field]);
    }
    return new ProtoReader(fields);
  }

  has(field: number): boolean {
    return this.fields.has(field);
  }

  private all(field: number, wire: number): readonly Field[] {
    const list = this.fields.get(field) ?? [];
    for (const f of list) if (f.wire !== wire) throw new ProtobufError(`field ${field} has wire type ${f.wire}, expected ${wire}`);
    return list;
  }

  private last(field: number, wire: number): Field | undefined {
    const list = this.all(field, wire);
    return list[list.length - 1];
  }

  bytes(field: number): Buffer {
    return this.last(field, WIRE_LEN)?.data ?? EMPTY;
  }

  string(field: number): string {
    return decodeUtf8(this.bytes(field), field);
  }

  uint64(field: number): bigint {
    return this.last(field, WIRE_VARINT)?.int ?? 0n;
  }

  int64(field: number): bigint {
    return BigInt.asIntN(64, this.uint64(field));
  }

  /** int32 and enum: protoc truncates to 32 bits on read. */
  int32(field: number): number {
    return Number(BigInt.asIntN(32, this.uint64(field)));
  }

  enum(field: number): number {
    return this.int32(field);
  }

  bool(field: number): boolean {
    return this.uint64(field) !== 0n;
  }

  /** A uint64 that must fit a JS number. */
  safeNumber(field: number): number {
    const v = this.uint64(field);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtobufError(`field ${field} exceeds 2^53`);
    return Number(v);
  }

  repeatedBytes(field: number): Buffer[] {
    return this.all(field, WIRE_LEN).map((f) => f.data);
  }

  repeatedStrings(field: number): string[] {
    return this.repeatedBytes(field).map((d) => decodeUtf8(d, field));
  }

  message(field: number): ProtoReader | undefined {
    const f = this.last(field, WIRE_LEN);
    return f ? ProtoReader.decode(f.data) : undefined;
  }

  messages(field: number): ProtoReader[] {
    return this.repeatedBytes(field).map((d) => ProtoReader.decode(d));
  }

  /** map<string,string>; a later entry for the same key wins. */
  map(field: number): Map<string, string> {
    const out = new Map<string, string>();
    for (const entry of this.messages(field)) out.set(entry.string(1), entry.string(2));
    return out;
  }
}

function decodeUtf8(data: Buffer, field: number): string {
  try {
    return utf8.decode(data);
  } catch {
    throw new ProtobufError(`field ${field} is not valid UTF-8`);
  }
}

/** A message whose only field is `bytes` or `string` number 1, as most CDH/AA/key-provider messages are. */
export const singleBytes = (value: Uint8Array): Buffer => new ProtoWriter().bytes(1, value).finish();
export const singleString = (value: string): Buffer => new ProtoWriter().string(1, value).finish();

export interface AnyMessage {
  readonly typeUrl: string;
  readonly value: Buffer;
}

/** google.rpc.Status {int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3}. */
export interface StatusMessage {
  readonly code: number;
  readonly message: string;
  readonly details?: readonly AnyMessage[];
}

export function encodeStatus(s: StatusMessage): Buffer {
  const w = new ProtoWriter().int32(1, s.code).string(2, s.message);
  for (const d of s.details ?? []) w.message(3, new ProtoWriter().string(1, d.typeUrl).bytes(2, d.value));
  return w.finish();
}

export function decodeStatus(buf: Uint8Array): StatusMessage {
  const r = ProtoReader.decode(buf);
  return {
    code: r.int32(1),
    message: r.string(2),
    details: r.messages(3).map((a) => ({ typeUrl: a.string(1), value: a.bytes(2) })),
  };
}
