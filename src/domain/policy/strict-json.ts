/**
 * A JSON reader for security-relevant documents (policy.json, signature
 * payloads). JSON.parse keeps the last of two equal keys and forgets key
 * order; containers/image rejects duplicates and reports errors in document
 * order, so this parser keeps every entry, in order, and lets the caller
 * decide. Grammar is RFC 8259, as strict as Go's encoding/json.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/** An object's entries in document order; duplicates are kept unless the parser rejected them. */
export class JsonObject {
  constructor(readonly entries: ReadonlyArray<readonly [string, JsonValue]>) {}

  /** The last value for `key`, as JSON.parse would pick it. */
  get(key: string): JsonValue | undefined {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const entry = this.entries[i]!;
      if (entry[0] === key) return entry[1];
    }
    return undefined;
  }

  has(key: string): boolean {
    return this.entries.some(([k]) => k === key);
  }

  /** The first key that occurs twice, if any. */
  firstDuplicateKey(): string | undefined {
    const seen = new Set<string>();
    for (const [key] of this.entries) {
      if (seen.has(key)) return key;
      seen.add(key);
    }
    return undefined;
  }
}

export type Fail = (message: string) => Error;

export interface StrictJsonOptions {
  /** `reject` (default) fails with `Duplicate key "X"` anywhere in the document; `keep` leaves that to the reader. */
  duplicateKeys?: 'reject' | 'keep';
}

/** Deep enough for any real policy or payload; shallow enough not to blow the stack. */
const MAX_DEPTH = 1000;

/** Parses one JSON value; anything but whitespace after it is an error. Failures go through `fail`. */
export function parseStrictJson(input: Uint8Array | string, fail: Fail, options: StrictJsonOptions = {}): JsonValue {
  const text = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  return new Parser(text, fail, options.duplicateKeys !== 'keep').document();
}

/** How Go's encoding/json names a JSON value's kind in type errors. */
export function jsonKind(v: JsonValue): 'null' | 'bool' | 'number' | 'string' | 'array' | 'object' {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'string') return 'string';
  return Array.isArray(v) ? 'array' : 'object';
}

/**
 * containers/image's paranoid object walk: the value must be an object; each
 * key, in document order, must not repeat (`Duplicate key "X"`) and must be
 * known to `resolve` (`Unknown key "X"`); its value goes to the returned
 * handler before the next key is looked at, so errors come out in order.
 */
export function walkObject(value: JsonValue, fail: Fail, resolve: (key: string) => ((v: JsonValue) => void) | undefined): void {
  if (!(value instanceof JsonObject)) throw fail(`JSON object expected, got "${goTokenText(value)}"`);
  const seen = new Set<string>();
  for (const [key, v] of value.entries) {
    if (seen.has(key)) throw fail(`Duplicate key "${key}"`);
    seen.add(key);
    const handler = resolve(key);
    if (!handler) throw fail(`Unknown key "${key}"`);
    handler(v);
  }
}

/** walkObject where every listed field is mandatory and nothing else is allowed. */
export function walkExactFields(value: JsonValue, fail: Fail, fields: Readonly<Record<string, (v: JsonValue) => void>>): void {
  const seen = new Set<string>();
  walkObject(value, fail, (key) => {
    if (!Object.hasOwn(fields, key)) return undefined;
    seen.add(key);
    return fields[key];
  });
  for (const key of Object.keys(fields)) {
    if (!seen.has(key)) throw fail(`Key "${key}" missing in a JSON object`);
  }
}

/** What Go's `%s` prints for the first token of a value, for "JSON object expected" errors. */
function goTokenText(v: JsonValue): string {
  if (v === null) return '%!s(<nil>)';
  if (typeof v === 'boolean') return `%!s(bool=${v})`;
  if (typeof v === 'number') return `%!s(float64=${v})`;
  if (typeof v === 'string') return v;
  return '[';
}

/**
 * Go's base64.StdEncoding.Decode, which encoding/json uses for []byte
 * fields: padding required, CR and LF skipped anywhere, non-zero trailing
 * bits tolerated. A failure reports the byte offset Go would, so the message
 * `illegal base64 data at input byte N` matches containers/image's.
 */
export function decodeGoBase64(text: string): Buffer | { errorAt: number } {
  const src = Buffer.from(text, 'utf8');
  const out: number[] = [];
  let si = 0;
  for (;;) {
    const quad: number[] = [];
    while (quad.length < 4) {
      if (si === src.length) {
        if (quad.length === 0) return Buffer.from(out);
        return { errorAt: si - quad.length };
      }
      const c = src[si++]!;
      const d = base64Value(c);
      if (d >= 0) {
        quad.push(d);
        continue;
      }
      if (c === 0x0a || c === 0x0d) continue;
      if (c !== 0x3d || quad.length < 2) return { errorAt: si - 1 };
      // '=': the final quantum. Two data characters need a second '='.
      if (quad.length === 2) {
        while (si < src.length && (src[si] === 0x0a || src[si] === 0x0d)) si++;
        if (si === src.length) return { errorAt: src.length };
        if (src[si] !== 0x3d) return { errorAt: si - 1 };
        si++;
      }
      while (si < src.length && (src[si] === 0x0a || src[si] === 0x0d)) si++;
      if (si < src.length) return { errorAt: si };
      const v = quad.reduce((acc, x) => (acc << 6) | x, 0) << (6 * (4 - quad.length));
      out.push((v >> 16) & 0xff);
      if (quad.length === 3) out.push((v >> 8) & 0xff);
      return Buffer.from(out);
    }
    const v = (quad[0]! << 18) | (quad[1]! << 12) | (quad[2]! << 6) | quad[3]!;
    out.push((v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
  }
}

function base64Value(c: number): number {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26;
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52;
  if (c === 0x2b) return 62;
  if (c === 0x2f) return 63;
  return -1;
}

const ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class Parser {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly fail: Fail,
    private readonly rejectDuplicates: boolean,
  ) {}

  document(): JsonValue {
    const value = this.value(0, 'looking for beginning of value');
    this.skipWhitespace();
    if (this.pos < this.text.length) throw this.unexpected('after top-level value');
    return value;
  }

  private value(depth: number, context: string): JsonValue {
    if (depth > MAX_DEPTH) throw this.fail(`JSON nested deeper than ${MAX_DEPTH} levels`);
    this.skipWhitespace();
    const c = this.text[this.pos];
    if (c === undefined) throw this.fail('unexpected end of JSON input');
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    if (c === 't') return this.literal('true', true);
    if (c === 'f') return this.literal('false', false);
    if (c === 'n') return this.literal('null', null);
    throw this.unexpected(context);
  }

  private object(depth: number): JsonObject {
    this.pos++; // '{'
    const entries: [string, JsonValue][] = [];
    const seen = new Set<string>();
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return new JsonObject(entries);
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') throw this.unexpected('looking for beginning of object key string');
      const key = this.string();
      if (this.rejectDuplicates && seen.has(key)) throw this.fail(`Duplicate key "${key}"`);
      seen.add(key);
      this.skipWhitespace();
      if (this.text[this.pos] !== ':') throw this.unexpected('after object key');
      this.pos++;
      entries.push([key, this.value(depth + 1, 'looking for beginning of value')]);
      this.skipWhitespace();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === '}') {
        this.pos++;
        return new JsonObject(entries);
      }
      throw this.unexpected('after object key:value pair');
    }
  }

  private array(depth: number): JsonValue[] {
    this.pos++; // '['
    const items: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return items;
    }
    for (;;) {
      items.push(this.value(depth + 1, 'looking for beginning of value'));
      this.skipWhitespace();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === ']') {
        this.pos++;
        return items;
      }
      throw this.unexpected('after array element');
    }
  }

  private string(): string {
    this.pos++; // opening quote
    let out = '';
    let runStart = this.pos;
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) throw this.fail('unexpected end of JSON input');
      if (c === '"') {
        out += this.text.slice(runStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < ' ') throw this.unexpected('in string literal');
      if (c !== '\\') {
        this.pos++;
        continue;
      }
      out += this.text.slice(runStart, this.pos);
      this.pos++;
      const e = this.text[this.pos];
      if (e === undefined) throw this.fail('unexpected end of JSON input');
      if (e === 'u') {
        const hex = this.text.slice(this.pos + 1, this.pos + 5);
        for (let i = 0; i < 4; i++) {
          const h = hex[i];
          if (h === undefined) throw this.fail('unexpected end of JSON input');
          if (!/[0-9a-fA-F]/.test(h)) {
            this.pos += 1 + i;
            throw this.unexpected('in \\u hexadecimal character escape');
          }
        }
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += 5;
      } else {
        const decoded = ESCAPES[e];
        if (decoded === undefined) throw this.unexpected('in string escape code');
        out += decoded;
        this.pos++;
      }
      runStart = this.pos;
    }
  }

  private number(): number {
    const start = this.pos;
    if (this.text[this.pos] === '-') this.pos++;
    if (this.text[this.pos] === '0') {
      this.pos++;
    } else if (this.isDigit()) {
      while (this.isDigit()) this.pos++;
    } else {
      throw this.unexpectedOrEnd('in numeric literal');
    }
    if (this.text[this.pos] === '.') {
      this.pos++;
      if (!this.isDigit()) throw this.unexpectedOrEnd('after decimal point in numeric literal');
      while (this.isDigit()) this.pos++;
    }
    if (this.text[this.pos] === 'e' || this.text[this.pos] === 'E') {
      this.pos++;
      if (this.text[this.pos] === '+' || this.text[this.pos] === '-') this.pos++;
      if (!this.isDigit()) throw this.unexpectedOrEnd('in exponent of numeric literal');
      while (this.isDigit()) this.pos++;
    }
    return Number(this.text.slice(start, this.pos));
  }

  private literal<T extends boolean | null>(word: string, value: T): T {
    for (let i = 0; i < word.length; i++) {
      const c = this.text[this.pos + i];
      if (c === undefined) throw this.fail('unexpected end of JSON input');
      if (c !== word[i]) {
        this.pos += i;
        throw this.unexpected(`in literal ${word} (expecting '${word[i]}')`);
      }
    }
    this.pos += word.length;
    return value;
  }

  private isDigit(): boolean {
    const c = this.text[this.pos];
    return c !== undefined && c >= '0' && c <= '9';
  }

  private skipWhitespace(): void {
    for (;;) {
      const c = this.text[this.pos];
      if (c !== ' ' && c !== '\t' && c !== '\n' && c !== '\r') return;
      this.pos++;
    }
  }

  private unexpectedOrEnd(context: string): Error {
    return this.pos >= this.text.length ? this.fail('unexpected end of JSON input') : this.unexpected(context);
  }

  /** Go's wording exactly, e.g. `invalid character 'x' after object key` (Go gives no offset either). */
  private unexpected(context: string): Error {
    const c = this.text.codePointAt(this.pos);
    if (c === undefined) return this.fail('unexpected end of JSON input');
    const shown = c === 0x27 ? "\\'" : c < 0x20 || c === 0x7f ? JSON.stringify(String.fromCodePoint(c)).slice(1, -1) : String.fromCodePoint(c);
    return this.fail(`invalid character '${shown}' ${context}`);
  }
}
