import { ConfigFileError, ImageTsError, InvalidReferenceError } from '../errors.js';
import { Digest } from '../image/digest.js';
import { DEFAULT_DOMAIN, Reference, isReferenceDomain, isReferencePathComponent } from '../image/reference.js';

/**
 * containers-registries.conf(5), version 2, as a plain model: which registry
 * a repository is really pulled from (prefix → location rewrites), which
 * mirrors are tried first, which registries are blocked or insecure, and how
 * short names resolve. Pure: the TOML is parsed by an adapter, and image-rs's
 * inline `registry_config` JSON object has the same shape, so both go
 * through {@link RegistriesConf.fromObject}.
 *
 * Deliberate differences from image-rs: prefixes are matched anchored (at a
 * `/`, `:` or `@` boundary, never as a substring), and only short names are
 * expanded over `unqualified-search-registries` (a fully qualified
 * `docker.io/...` reference is pulled from docker.io, not from every search
 * registry). Differences from containers/image: host names compare
 * case-insensitively (DNS does, so `EXAMPLE.com/x` cannot dodge a block on
 * `example.com`), a name prefix `example.com` does not match
 * `example.com:5000/...`, and `short-name-mode = "disabled"` means
 * containerd's behaviour (short names are Docker Hub names).
 */

export type ShortNameMode = 'enforcing' | 'permissive' | 'disabled';
export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';

export interface RegistryMirror {
  /** `host[:port][/path]`, trailing `/` trimmed. */
  readonly location: string;
  /** Plain HTTP / unverified TLS for this mirror only. */
  readonly insecure: boolean;
  /** Which pulls may use this mirror; `all` when the key is absent. */
  readonly pullFromMirror: PullFromMirror;
}

export interface RegistryEntry {
  /** `host[:port][/path][:tag|@digest]` or `*.domain`; defaults to the location. */
  readonly prefix: string;
  /** Where the prefix really lives; empty only for a `*.domain` prefix (no rewrite). */
  readonly location: string;
  readonly insecure: boolean;
  readonly blocked: boolean;
  /** Mirrors serve digest references only (tag pulls go straight to the location). */
  readonly mirrorByDigestOnly: boolean;
  readonly mirrors: readonly RegistryMirror[];
}

/** One place to try, in order: the physical reference and how to talk to its registry. */
export interface PullSource {
  readonly reference: Reference;
  readonly insecure: boolean;
  readonly mirror: boolean;
}

type Json = Record<string, unknown>;

const SHORT_NAME_MODES: readonly ShortNameMode[] = ['enforcing', 'permissive', 'disabled'];
const PULL_FROM_MIRROR: readonly PullFromMirror[] = ['all', 'digest-only', 'tag-only'];
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const WILDCARD_RE = /^\*(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)+$/;
/** image-rs's default; containers/image has none (and then fails every short name). */
const DEFAULT_SEARCH_REGISTRIES: readonly string[] = [DEFAULT_DOMAIN];

const TOP_LEVEL_KEYS = new Set([
  'unqualified-search-registries',
  'short-name-mode',
  'credential-helpers',
  'aliases',
  'registry',
  'registries',
]);
const REGISTRY_KEYS = new Set(['prefix', 'location', 'insecure', 'blocked', 'mirror-by-digest-only', 'mirror']);
const MIRROR_KEYS = new Set(['location', 'insecure', 'pull-from-mirror']);
/** Keys containers/image knows and we read nowhere: no warning for them. */
const KNOWN_IGNORED_KEYS = new Set(['additional-layer-store-auth-helper']);

export class RegistriesConf {
  private constructor(
    /** Where the configuration came from (a path, or `registry_config` for image-rs's inline object); used in messages. */
    readonly source: string,
    readonly unqualifiedSearchRegistries: readonly string[],
    readonly shortNameMode: ShortNameMode,
    /** Short name (familiar form, `busybox` for `library/busybox`) → fully qualified repository name. */
    readonly aliases: ReadonlyMap<string, string>,
    readonly credentialHelpers: readonly string[],
    readonly registries: readonly RegistryEntry[],
    /** Unknown keys and settings that can never apply; for the caller to log. */
    readonly warnings: readonly string[],
  ) {}

  /** No file: every reference pulls from itself, short names go to docker.io. */
  static empty(source = 'registries.conf'): RegistriesConf {
    return new RegistriesConf(source, DEFAULT_SEARCH_REGISTRIES, 'permissive', new Map(), [], [], []);
  }

  /**
   * Validates a parsed registries.conf (TOML table or image-rs JSON object).
   * Version 1 tables (`[registries.search|insecure|block]`) are converted as
   * containers/image converts them; mixing them with v2 keys is an error.
   * Throws ConfigFileError (CONFIG_FILE_INVALID) naming the offending key.
   */
  static fromObject(obj: unknown, source: string): RegistriesConf {
    const fail = (reason: string): never => {
      throw new ConfigFileError(`${source}: ${reason}`);
    };
    if (!isRecord(obj)) fail('the configuration must be a table (object)');
    const root = obj as Json;
    const warnings: string[] = [];
    for (const key of Object.keys(root)) {
      if (!TOP_LEVEL_KEYS.has(key) && !KNOWN_IGNORED_KEYS.has(key)) warnings.push(`${source}: unknown key ${JSON.stringify(key)} ignored`);
    }

    const v1 = root['registries'] !== undefined;
    if (v1 && (root['registry'] !== undefined || root['unqualified-search-registries'] !== undefined)) {
      fail('mixing v1 [registries.*] tables with v2 keys (unqualified-search-registries, [[registry]]) is not supported');
    }

    let search: readonly string[] = DEFAULT_SEARCH_REGISTRIES;
    let registries: RegistryEntry[];
    if (v1) {
      const converted = convertV1(root['registries'], fail, warnings, source);
      if (converted.search) search = converted.search;
      registries = converted.registries;
    } else {
      const rawSearch = root['unqualified-search-registries'];
      if (rawSearch !== undefined) search = stringArray(rawSearch, 'unqualified-search-registries', fail);
      const rawRegistries = root['registry'];
      registries = [];
      if (rawRegistries !== undefined) {
        if (!Array.isArray(rawRegistries)) fail('key "registry" must be an array of tables ([[registry]])');
        (rawRegistries as unknown[]).forEach((raw, i) => registries.push(parseRegistry(raw, i + 1, fail, warnings, source)));
      }
    }
    for (const host of search) {
      if (!isReferenceDomain(host)) fail(`unqualified-search-registries: ${JSON.stringify(host)} is not a registry host[:port] (no path, no scheme)`);
    }

    let shortNameMode: ShortNameMode = 'permissive';
    const rawMode = root['short-name-mode'];
    if (rawMode !== undefined) {
      if (typeof rawMode !== 'string' || !(SHORT_NAME_MODES as readonly string[]).includes(rawMode)) {
        fail(`short-name-mode must be one of ${SHORT_NAME_MODES.map((m) => JSON.stringify(m)).join(', ')}, got ${show(rawMode)}`);
      }
      shortNameMode = rawMode as ShortNameMode;
    }

    const credentialHelpers = root['credential-helpers'] === undefined ? [] : stringArray(root['credential-helpers'], 'credential-helpers', fail);
    const aliases = parseAliases(root['aliases'], fail);
    checkConflicts(registries, fail);

    return new RegistriesConf(source, [...search], shortNameMode, aliases, credentialHelpers, registries, warnings);
  }
}

/**
 * Applies a registries.conf.d drop-in to the tables read so far, as
 * containers/image does: keys the drop-in sets replace the earlier ones,
 * `[aliases]` merge name by name, and a `[[registry]]` replaces the earlier
 * entry with the same prefix (its location when it has no prefix) or is added.
 * Both tables must each be valid (`fromObject`) first; v1 tables do not merge.
 */
export function mergeDropIn(base: unknown, dropIn: unknown, dropInSource: string): Record<string, unknown> {
  if (!isRecord(base) || !isRecord(dropIn)) throw new ConfigFileError(`${dropInSource}: the configuration must be a table (object)`);
  if (base['registries'] !== undefined || dropIn['registries'] !== undefined) {
    throw new ConfigFileError(`${dropInSource}: v1 [registries.*] tables cannot be combined with drop-in files; convert them to [[registry]] entries`);
  }
  const merged: Json = { ...base };
  for (const [key, value] of Object.entries(dropIn)) {
    if (key === 'aliases' && isRecord(value)) {
      merged['aliases'] = { ...(isRecord(base['aliases']) ? base['aliases'] : {}), ...value };
    } else if (key === 'registry' && Array.isArray(value)) {
      const entries = Array.isArray(base['registry']) ? [...(base['registry'] as unknown[])] : [];
      for (const entry of value) {
        const id = registryId(entry);
        const at = entries.findIndex((e) => registryId(e) === id);
        if (at >= 0) entries[at] = entry;
        else entries.push(entry);
      }
      merged['registry'] = entries;
    } else {
      merged[key] = value;
    }
  }
  return merged;
}

function registryId(entry: unknown): string {
  if (!isRecord(entry)) return '';
  const prefix = typeof entry['prefix'] === 'string' ? entry['prefix'] : '';
  return prefix !== '' ? prefix : typeof entry['location'] === 'string' ? entry['location'] : '';
}

// ---------------------------------------------------------------------------------------------
// Validation

type Fail = (reason: string) => never;

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'a table' : String(v);
}

function stringArray(v: unknown, key: string, fail: Fail): string[] {
  if (!Array.isArray(v) || !v.every((s): s is string => typeof s === 'string')) fail(`key "${key}" must be an array of strings`);
  return [...(v as string[])];
}

function optionalBool(table: Json, key: string, where: string, fail: Fail): boolean {
  const v = table[key];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') fail(`${where} key "${key}" must be a boolean, got ${show(v)}`);
  return v as boolean;
}

function optionalString(table: Json, key: string, where: string, fail: Fail): string {
  const v = table[key];
  if (v === undefined) return '';
  if (typeof v !== 'string') fail(`${where} key "${key}" must be a string, got ${show(v)}`);
  return v as string;
}

/** A prefix or location: trailing `/` trimmed, no URI scheme. */
function tidyLocation(raw: string, key: string, where: string, fail: Fail): string {
  const s = raw.replace(/\/+$/, '');
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(s)) fail(`${where} key "${key}": URI schemes are not supported (${JSON.stringify(raw)}), write host[:port][/path]`);
  return s;
}

/**
 * `host[:port][/path][:tag][@digest]`; returns why not, or undefined. A tag
 * or digest is allowed only when `allowTagged`.
 */
function scopeProblem(s: string, allowTagged: boolean): string | undefined {
  let rest = s;
  let tagged = false;
  const at = rest.indexOf('@');
  if (at >= 0) {
    if (!Digest.isValid(rest.slice(at + 1))) return `bad digest ${JSON.stringify(rest.slice(at + 1))}`;
    rest = rest.slice(0, at);
    tagged = true;
  }
  const slash = rest.indexOf('/');
  if (slash < 0) {
    if (tagged) return 'a digest needs a repository path';
    return isReferenceDomain(rest) ? undefined : `bad registry host ${JSON.stringify(rest)}`;
  }
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    if (!TAG_RE.test(rest.slice(lastColon + 1))) return `bad tag ${JSON.stringify(rest.slice(lastColon + 1))}`;
    rest = rest.slice(0, lastColon);
    tagged = true;
  }
  if (tagged && !allowTagged) return 'a tag or digest here needs a prefix with a tag or digest';
  const host = rest.slice(0, slash);
  if (!isReferenceDomain(host)) return `bad registry host ${JSON.stringify(host)}`;
  for (const component of rest.slice(slash + 1).split('/')) {
    if (!isReferencePathComponent(component)) return `bad repository path component ${JSON.stringify(component)}`;
  }
  return undefined;
}

/** Whether a (valid) prefix carries a tag or digest, so that it is matched against the full reference. */
function hasTagOrDigest(prefix: string): boolean {
  if (prefix.includes('@')) return true;
  const slash = prefix.lastIndexOf('/');
  return slash >= 0 && prefix.lastIndexOf(':') > slash;
}

function parseRegistry(raw: unknown, n: number, fail: Fail, warnings: string[], source: string): RegistryEntry {
  let where = `[[registry]] #${n}`;
  if (!isRecord(raw)) fail(`${where} must be a table`);
  const table = raw as Json;
  const location = tidyLocation(optionalString(table, 'location', where, fail), 'location', where, fail);
  const prefix = tidyLocation(optionalString(table, 'prefix', where, fail), 'prefix', where, fail) || location;
  if (!prefix) fail(`${where}: "prefix" and "location" cannot both be empty`);
  where = `[[registry]] prefix ${JSON.stringify(prefix)}`;

  const wildcard = prefix.startsWith('*');
  if (wildcard) {
    if (!WILDCARD_RE.test(prefix)) fail(`${where}: a wildcard prefix must be "*.domain" (no port, path, tag or other "*")`);
  } else {
    if (prefix.includes('*')) fail(`${where}: "*" is only allowed as the leading "*." of a prefix`);
    const why = scopeProblem(prefix, true);
    if (why) fail(`${where} key "prefix": ${why}`);
  }
  if (!location) {
    if (!wildcard) fail(`${where} key "location" cannot be empty (only a "*.domain" prefix may omit it)`);
  } else {
    const why = scopeProblem(location, !wildcard && hasTagOrDigest(prefix));
    if (why) fail(`${where} key "location": ${why}`);
  }
  if (table['pull-from-mirror'] !== undefined) fail(`${where}: "pull-from-mirror" is only allowed in [[registry.mirror]] tables`);

  const mirrorByDigestOnly = optionalBool(table, 'mirror-by-digest-only', where, fail);
  const mirrors: RegistryMirror[] = [];
  const rawMirrors = table['mirror'];
  if (rawMirrors !== undefined) {
    if (!Array.isArray(rawMirrors)) fail(`${where} key "mirror" must be an array of tables ([[registry.mirror]])`);
    (rawMirrors as unknown[]).forEach((m, i) => {
      const mwhere = `${where} [[registry.mirror]] #${i + 1}`;
      if (!isRecord(m)) fail(`${mwhere} must be a table`);
      const mt = m as Json;
      const mlocation = tidyLocation(optionalString(mt, 'location', mwhere, fail), 'location', mwhere, fail);
      if (!mlocation) fail(`${mwhere} key "location" cannot be empty`);
      const why = scopeProblem(mlocation, !wildcard && hasTagOrDigest(prefix));
      if (why) fail(`${mwhere} key "location": ${why}`);
      let pullFromMirror: PullFromMirror = 'all';
      const rawPull = mt['pull-from-mirror'];
      if (rawPull !== undefined) {
        if (typeof rawPull !== 'string' || !(PULL_FROM_MIRROR as readonly string[]).includes(rawPull)) {
          fail(`${mwhere} key "pull-from-mirror" must be one of ${PULL_FROM_MIRROR.map((p) => JSON.stringify(p)).join(', ')}, got ${show(rawPull)}`);
        }
        pullFromMirror = rawPull as PullFromMirror;
        if (mirrorByDigestOnly) fail(`${mwhere}: "pull-from-mirror" cannot be used together with "mirror-by-digest-only"`);
      }
      for (const key of Object.keys(mt)) {
        if (!MIRROR_KEYS.has(key)) warnings.push(`${source}: ${mwhere}: unknown key ${JSON.stringify(key)} ignored`);
      }
      mirrors.push({ location: mlocation, insecure: optionalBool(mt, 'insecure', mwhere, fail), pullFromMirror });
    });
  }
  for (const key of Object.keys(table)) {
    if (!REGISTRY_KEYS.has(key)) warnings.push(`${source}: ${where}: unknown key ${JSON.stringify(key)} ignored`);
  }
  if (/^index\.docker\.io(?:[/:@]|$)/i.test(prefix)) {
    warnings.push(`${source}: ${where} never matches: references are normalized to docker.io`);
  }
  return {
    prefix,
    location,
    insecure: optionalBool(table, 'insecure', where, fail),
    blocked: optionalBool(table, 'blocked', where, fail),
    mirrorByDigestOnly,
    mirrors,
  };
}

function checkConflicts(registries: readonly RegistryEntry[], fail: Fail): void {
  const byPrefix = new Set<string>();
  const byLocation = new Map<string, RegistryEntry>();
  for (const reg of registries) {
    const prefixKey = lowerHost(reg.prefix);
    if (byPrefix.has(prefixKey)) fail(`[[registry]] prefix ${JSON.stringify(reg.prefix)} is defined more than once`);
    byPrefix.add(prefixKey);
    if (!reg.location) continue;
    const locationKey = lowerHost(reg.location);
    const other = byLocation.get(locationKey);
    if (!other) {
      byLocation.set(locationKey, reg);
      continue;
    }
    if (other.insecure !== reg.insecure) fail(`registry location ${JSON.stringify(reg.location)} is defined more than once with conflicting "insecure" settings`);
    if (other.blocked !== reg.blocked) fail(`registry location ${JSON.stringify(reg.location)} is defined more than once with conflicting "blocked" settings`);
  }
}

/** `busybox`, `library/busybox` → `busybox`; `user/app` stays. */
function familiarName(shortName: string): string {
  const path = Reference.parseNormalized(shortName).path;
  return /^library\/[^/]+$/.test(path) ? path.slice('library/'.length) : path;
}

function parseOrUndefined(input: string): Reference | undefined {
  try {
    return Reference.parseNormalized(input);
  } catch {
    return undefined;
  }
}

function parseAliases(raw: unknown, fail: Fail): Map<string, string> {
  const aliases = new Map<string, string>();
  if (raw === undefined) return aliases;
  if (!isRecord(raw)) fail('key "aliases" must be a table of "short-name" = "host/repository"');
  for (const [key, value] of Object.entries(raw as Json)) {
    const where = `[aliases] ${JSON.stringify(key)}`;
    if (!isShortName(key) || key.startsWith('docker://') || !parseOrUndefined(key)?.nameOnly) {
      fail(`${where}: an alias must be a short name without registry, tag or digest`);
    }
    const name = familiarName(key);
    if (typeof value !== 'string') fail(`${where} must be a string, got ${show(value)}`);
    const target = parseOrUndefined(value as string);
    if (!target || isShortName(value as string) || !target.nameOnly) {
      fail(`${where}: the value must be a fully qualified repository (host/path) without tag or digest, got ${show(value)}`);
    }
    if (aliases.has(name)) fail(`${where} is defined more than once`);
    aliases.set(name, (target as Reference).name);
  }
  return aliases;
}

function convertV1(raw: unknown, fail: Fail, warnings: string[], source: string): { search?: string[]; registries: RegistryEntry[] } {
  if (!isRecord(raw)) fail('key "registries" (v1 format) must be a table with [registries.search|insecure|block]');
  const tables = raw as Json;
  const list = (name: string): string[] => {
    const t = tables[name];
    if (t === undefined) return [];
    if (!isRecord(t)) fail(`[registries.${name}] must be a table`);
    const regs = (t as Json)['registries'];
    return regs === undefined ? [] : stringArray(regs, `registries.${name}.registries`, fail);
  };
  for (const key of Object.keys(tables)) {
    if (!['search', 'insecure', 'block'].includes(key)) warnings.push(`${source}: unknown table [registries.${key}] ignored`);
  }
  const entries = new Map<string, { insecure: boolean; blocked: boolean }>();
  for (const [name, flag] of [['insecure', 'insecure'], ['block', 'blocked']] as const) {
    for (const rawLocation of list(name)) {
      const where = `[registries.${name}] entry ${JSON.stringify(rawLocation)}`;
      const location = tidyLocation(rawLocation, 'registries', `[registries.${name}]`, fail);
      const why = location ? scopeProblem(location, false) : 'empty';
      if (why) fail(`${where}: ${why}`);
      const entry = entries.get(location) ?? { insecure: false, blocked: false };
      entry[flag] = true;
      entries.set(location, entry);
    }
  }
  const search = tables['search'] === undefined ? undefined : list('search');
  const registries = [...entries].map(([location, flags]) => ({ prefix: location, location, ...flags, mirrorByDigestOnly: false, mirrors: [] }));
  return search === undefined ? { registries } : { search, registries };
}

// ---------------------------------------------------------------------------------------------
// Matching

/** Lowercases the host part: registry hosts are DNS names, repository paths are lowercase already. */
function lowerHost(s: string): string {
  const slash = s.indexOf('/');
  return slash < 0 ? s.toLowerCase() : s.slice(0, slash).toLowerCase() + s.slice(slash);
}

function hostWithoutPort(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(0, domain.indexOf(']') + 1);
  const colon = domain.indexOf(':');
  return colon < 0 ? domain : domain.slice(0, colon);
}

interface Match {
  readonly entry: RegistryEntry;
  /** How many leading characters of the full reference string the prefix covers. */
  readonly consumed: number;
}

/**
 * Anchored prefix matching. A name prefix matches the repository name N when
 * N equals it or continues with `/`; a prefix with a tag or digest matches
 * the full reference string when it equals it or continues with `:`, `/` or
 * `@`; `*.example.com` matches hosts under example.com (port ignored), not
 * example.com itself.
 */
function matchEntry(entry: RegistryEntry, ref: Reference): Match | undefined {
  const prefix = lowerHost(entry.prefix);
  if (prefix.startsWith('*.')) {
    const host = hostWithoutPort(ref.domain).toLowerCase();
    const suffix = prefix.slice(1);
    return host.length > suffix.length && host.endsWith(suffix) ? { entry, consumed: ref.domain.length } : undefined;
  }
  if (hasTagOrDigest(entry.prefix)) {
    const full = lowerHost(ref.toString());
    if (full === prefix || (full.startsWith(prefix) && ':/@'.includes(full.charAt(prefix.length)))) {
      return { entry, consumed: prefix.length };
    }
    return undefined;
  }
  const name = lowerHost(ref.name);
  return name === prefix || name.startsWith(`${prefix}/`) ? { entry, consumed: prefix.length } : undefined;
}

function bestMatch(conf: RegistriesConf, ref: Reference): Match | undefined {
  let best: Match | undefined;
  for (const entry of conf.registries) {
    const m = matchEntry(entry, ref);
    if (!m) continue;
    if (!best || entry.prefix.length > best.entry.prefix.length) best = m;
    else if (entry.prefix.length === best.entry.prefix.length && best.entry.prefix.startsWith('*') && !entry.prefix.startsWith('*')) best = m;
  }
  return best;
}

/** The `[[registry]]` table that governs a reference: the longest matching prefix (an exact host beats an equally long wildcard). */
export function findRegistry(conf: RegistriesConf, reference: Reference): RegistryEntry | undefined {
  return bestMatch(conf, reference)?.entry;
}

/**
 * The matched prefix replaced by `location`. When a tag or digest prefix is
 * relocated to a bare repository, the reference keeps its own tag and digest
 * (containers/image would pull `latest` there).
 */
function rewrite(ref: Reference, match: Match, location: string): Reference {
  if (!location) return ref;
  const rewritten = Reference.parseNormalized(location + ref.toString().slice(match.consumed));
  if (!rewritten.nameOnly) return rewritten;
  return Reference.parse(`${rewritten.name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`);
}

function blockedError(conf: RegistriesConf, prefix: string): ImageTsError {
  const where = conf.source === 'registries.conf' ? 'registries.conf' : `registries.conf (${conf.source})`;
  return new ImageTsError('BLOCKED', `registry ${prefix} is blocked in ${where}`);
}

/**
 * Where to pull `reference` from, in order: the eligible mirrors of its
 * `[[registry]]` table (a mirror's `pull-from-mirror`, the table's
 * `mirror-by-digest-only`, against whether the reference has a digest), then
 * the table's location. Each source is the reference with the matched prefix
 * replaced by that location; tags and digests are kept.
 *
 * A source is dropped when the table that governs its own physical reference
 * is blocked; the primary location is also dropped when the reference's own
 * table is blocked (a blocked table with mirrors is "mirrors only"). With no
 * source left, BLOCKED. A reference no table matches is pulled from itself.
 */
export function pullSources(conf: RegistriesConf, reference: Reference): PullSource[] {
  const match = bestMatch(conf, reference);
  if (!match) return [{ reference, insecure: false, mirror: false }];
  const { entry } = match;
  const digested = reference.digest !== undefined;
  const candidates: PullSource[] = [];
  if (!entry.mirrorByDigestOnly || digested) {
    for (const m of entry.mirrors) {
      if (m.pullFromMirror === 'digest-only' && !digested) continue;
      if (m.pullFromMirror === 'tag-only' && digested) continue;
      candidates.push({ reference: rewrite(reference, match, m.location), insecure: m.insecure, mirror: true });
    }
  }
  const primary: PullSource = { reference: rewrite(reference, match, entry.location), insecure: entry.insecure, mirror: false };

  const sources: PullSource[] = [];
  for (const source of candidates) {
    if (!findRegistry(conf, source.reference)?.blocked) sources.push(source);
  }
  const primaryEntry = findRegistry(conf, primary.reference);
  const primaryBlock = entry.blocked ? entry : primaryEntry?.blocked ? primaryEntry : undefined;
  if (!primaryBlock) sources.push(primary);
  if (sources.length === 0) throw blockedError(conf, primaryBlock?.prefix ?? entry.prefix);
  return sources;
}

// ---------------------------------------------------------------------------------------------
// Short names

/**
 * No registry host: the first `/`-separated segment has no `.` or `:` and is
 * not `localhost` (or there is no `/` at all). `docker://` is ignored.
 */
export function isShortName(input: string): boolean {
  const s = input.startsWith('docker://') ? input.slice('docker://'.length) : input;
  const slash = s.indexOf('/');
  if (slash < 0) return true;
  const head = s.slice(0, slash);
  return !(head.includes('.') || head.includes(':') || head === 'localhost' || head.startsWith('['));
}

/**
 * The fully qualified references to try for user input, in order. A fully
 * qualified input is returned as it is (normalized; a fully qualified
 * `docker.io/...` reference is never searched elsewhere). A short name: its
 * `[aliases]` entry (tag or digest re-appended), else each
 * `unqualified-search-registries` host; `enforcing` with more than one host
 * cannot prompt and fails; `disabled` resolves to docker.io as containerd
 * does. A missing tag and digest means `latest`.
 */
export function expandShortName(conf: RegistriesConf, input: string): string[] {
  const normalized = Reference.parse(input);
  if (!isShortName(input) || conf.shortNameMode === 'disabled') return [normalized.toString()];

  const s = input.startsWith('docker://') ? input.slice('docker://'.length) : input;
  const suffix = `${normalized.tag !== undefined ? `:${normalized.tag}` : ''}${normalized.digest ? `@${normalized.digest}` : ''}`;
  const alias = conf.aliases.get(familiarName(nameOf(s)));
  if (alias !== undefined) return [Reference.parse(alias + suffix).toString()];

  const registries = conf.unqualifiedSearchRegistries;
  if (registries.length === 0) {
    throw new InvalidReferenceError(input, `short name did not resolve to an alias and no unqualified-search-registries are defined in ${conf.source}`);
  }
  if (conf.shortNameMode === 'enforcing' && registries.length > 1) {
    throw new InvalidReferenceError(
      input,
      `short-name-mode is "enforcing" in ${conf.source} and the short name is ambiguous over ${registries.join(', ')} with no terminal to ask; use a fully qualified reference or an alias`,
    );
  }
  const name = nameOf(s);
  return registries.map((registry) => Reference.parse(`${registry}/${name}${suffix}`).toString());
}

/** The input without its tag and digest. */
function nameOf(s: string): string {
  const at = s.indexOf('@');
  const base = at >= 0 ? s.slice(0, at) : s;
  const colon = base.lastIndexOf(':');
  return colon > base.lastIndexOf('/') ? base.slice(0, colon) : base;
}
