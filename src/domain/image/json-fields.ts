/** Small readers for untrusted JSON: each names the field it rejects. */
export type JsonObject = Record<string, unknown>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseJsonObject(bytes: Uint8Array | string, what: string, fail: (m: string) => Error): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw fail(`${what} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(value)) throw fail(`${what} is not a JSON object`);
  return value;
}

export function optionalString(o: JsonObject, key: string, what: string, fail: (m: string) => Error): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw fail(`${what}.${key} must be a string`);
  return v;
}

export function requiredString(o: JsonObject, key: string, what: string, fail: (m: string) => Error): string {
  const v = optionalString(o, key, what, fail);
  if (v === undefined) throw fail(`${what}.${key} is missing`);
  return v;
}

export function optionalStringArray(o: JsonObject, key: string, what: string, fail: (m: string) => Error): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw fail(`${what}.${key} must be an array of strings`);
  return v as string[];
}

export function optionalStringMap(o: JsonObject, key: string, what: string, fail: (m: string) => Error): Record<string, string> | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) {
    throw fail(`${what}.${key} must be an object of strings`);
  }
  return v as Record<string, string>;
}
