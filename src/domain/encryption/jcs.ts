import { InvalidArgumentError } from '../errors.js';

export type JsonValue =
  | null
  | boolean
  | number
  | string
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue | undefined };

/**
 * RFC 8785 canonical JSON. The KBS hashes the runtime data in this form, so
 * both ends must agree byte for byte. ECMAScript's JSON.stringify already
 * follows the RFC's rules for strings and numbers; what is left is sorting
 * object members by UTF-16 code units (the default Array sort) and refusing
 * values JSON cannot carry.
 */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InvalidArgumentError('canonical JSON cannot hold NaN or Infinity');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v: JsonValue) => canonicalJson(v)).join(',')}]`;
  if (typeof value !== 'object') throw new InvalidArgumentError(`canonical JSON cannot hold a ${typeof value}`);
  const obj = value as { readonly [key: string]: JsonValue | undefined };
  const members: string[] = [];
  for (const key of Object.keys(obj).sort()) {
    const member = obj[key];
    // Like JSON.stringify: an undefined member is absent.
    if (member === undefined) continue;
    members.push(`${JSON.stringify(key)}:${canonicalJson(member)}`);
  }
  return `{${members.join(',')}}`;
}
