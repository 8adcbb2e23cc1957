import { ConfigFileError } from '../errors.js';
import type { Reference } from '../image/reference.js';
import type { Credentials } from '../../ports/image-source/image-source.js';

/** One `auths` entry as written; secrets stay encoded until a lookup needs them. */
export interface AuthEntry {
  readonly auth: string | undefined;
  readonly identitytoken: string | undefined;
}

/** A parsed auth.json / docker config.json: its `auths` keys in document order. */
export interface AuthFile {
  readonly source: string;
  readonly auths: ReadonlyMap<string, AuthEntry>;
}

export type LookupResult = Credentials & { readonly kind: 'basic' | 'identity-token' };

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses a credential file. `source` names the file in errors; messages never quote
 * its content, since JSON parser messages can echo the bytes around a syntax error.
 */
export function parseAuthFile(text: string, source: string): AuthFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ConfigFileError(`${source}: not valid JSON`);
  }
  if (!isRecord(doc)) throw new ConfigFileError(`${source}: top level is not an object`);
  const rawAuths = doc['auths'];
  const auths = new Map<string, AuthEntry>();
  if (rawAuths === undefined || rawAuths === null) return { source, auths };
  if (!isRecord(rawAuths)) throw new ConfigFileError(`${source}: "auths" is not an object`);
  for (const [key, value] of Object.entries(rawAuths)) {
    if (!isRecord(value)) throw new ConfigFileError(`${source}: auths[${JSON.stringify(key)}] is not an object`);
    const auth = optionalString(value, 'auth', key, source);
    const identitytoken = optionalString(value, 'identitytoken', key, source);
    if (auth !== undefined && !BASE64_RE.test(auth)) {
      throw new ConfigFileError(`${source}: auths[${JSON.stringify(key)}].auth is not valid base64`);
    }
    auths.set(key, { auth, identitytoken });
  }
  return { source, auths };
}

function optionalString(o: Record<string, unknown>, field: string, key: string, source: string): string | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ConfigFileError(`${source}: auths[${JSON.stringify(key)}].${field} is not a string`);
  return v;
}

/** Docker Hub answers to three names; c/image folds them into one. */
function normalizeRegistry(host: string): string {
  return host === 'docker.io' || host === 'registry-1.docker.io' ? 'index.docker.io' : host;
}

/** `https://index.docker.io/v1/` → `index.docker.io`; a key without a scheme keeps its path. */
export function normalizeAuthKey(key: string): string {
  const stripped = key.replace(/^https?:\/\//, '');
  const host = stripped !== key ? stripped.split('/')[0] ?? '' : stripped;
  return normalizeRegistry(host);
}

/** The keys tried in order for an image: the repository, each parent namespace, then the host. */
export function lookupKeys(reference: Reference): string[] {
  const keys: string[] = [];
  const parts = reference.path.split('/');
  for (let n = parts.length; n >= 1; n--) keys.push(`${reference.domain}/${parts.slice(0, n).join('/')}`);
  keys.push(reference.domain);
  return keys;
}

/**
 * The credentials a file holds for an image, as c/image's auth-file lookup finds them.
 * The first existing key wins even when its entry holds nothing usable.
 */
export function lookupCredentials(file: AuthFile, reference: Reference): LookupResult | undefined {
  for (const key of lookupKeys(reference)) {
    const entry = file.auths.get(key);
    if (entry) return decodeEntry(entry);
  }
  const wanted = normalizeRegistry(reference.domain);
  for (const [key, entry] of file.auths) {
    if (normalizeAuthKey(key) === wanted) return decodeEntry(entry);
  }
  return undefined;
}

function decodeEntry(entry: AuthEntry): LookupResult | undefined {
  let username = '';
  let password = '';
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    // Without a colon (Docker's placeholder entries) the entry holds nothing usable.
    if (colon >= 0) {
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1).replace(/\0+$/, '');
    }
  }
  if (entry.identitytoken) return { kind: 'identity-token', username, token: entry.identitytoken };
  if (username.length === 0 && password.length === 0) return undefined;
  return { kind: 'basic', username, password };
}
