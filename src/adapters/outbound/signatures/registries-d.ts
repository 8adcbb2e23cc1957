import { readdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PolicyInvalidError } from '../../../domain/errors.js';
import type { Reference } from '../../../domain/image/reference.js';
import { policyIdentity, policyNamespaces } from '../../../domain/policy/policy-scope.js';
import { lazyImport } from '../lazy.js';

/** Loaded on first use: only a pull whose policy wants simple signatures reads registries.d. */
const yaml = lazyImport(() => import('yaml'));

/**
 * One registries.d section (containers-registries.d(5)): where the simple
 * signatures of the images in its scope live.
 */
export interface LookasideSection {
  /** Read URL (and write URL when there is no staging one). */
  readonly lookaside?: string | undefined;
  /** Write-only URL. */
  readonly lookasideStaging?: string | undefined;
  /** Deprecated alias of `lookaside`. */
  readonly sigstore?: string | undefined;
  /** Deprecated alias of `lookaside-staging`. */
  readonly sigstoreStaging?: string | undefined;
  /** Whether cosign `.sig` attachments are read; absent means "ask the next scope". */
  readonly useSigstoreAttachments?: boolean | undefined;
}

/** All `*.yaml` files of a registries.d directory, merged. */
export interface RegistriesDConfig {
  readonly defaultDocker: LookasideSection | undefined;
  /** Scope (`host[:port][/path][:tag|@digest]` or `*.domain`) → section. */
  readonly docker: ReadonlyMap<string, LookasideSection>;
}

export const EMPTY_REGISTRIES_D: RegistriesDConfig = { defaultDocker: undefined, docker: new Map() };

/** c/image's built-in lookaside when no section names one: a system directory for root, a per-user one otherwise. */
export function defaultLookasideBase(euid: number = process.geteuid?.() ?? 0, env: NodeJS.ProcessEnv = process.env): string {
  if (euid === 0) return 'file:///var/lib/containers/sigstore';
  const dataHome = env['XDG_DATA_HOME'] || join(env['HOME'] || homedir(), '.local', 'share');
  return pathToFileURL(join(dataHome, 'containers', 'sigstore')).href;
}

/** `$HOME/.config/containers/registries.d` when it exists, else `/etc/containers/registries.d`. */
export async function defaultRegistriesDDir(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const home = env['HOME'] || homedir();
  const user = join(home, '.config', 'containers', 'registries.d');
  const exists = await stat(user).then((s) => s.isDirectory(), () => false);
  return exists ? user : '/etc/containers/registries.d';
}

/**
 * Reads and merges every `*.yaml` file of `dir`, in name order. A missing
 * directory is an empty configuration. The same scope (or `default-docker`)
 * in two files is an error, as is any file that does not parse.
 */
export async function loadRegistriesD(dir: string): Promise<RegistriesDConfig> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml')).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return EMPTY_REGISTRIES_D;
    throw new PolicyInvalidError(`cannot read registries.d directory ${dir}: ${code ?? 'read error'}`);
  }
  const files: { file: string; config: RegistriesDConfig }[] = [];
  for (const name of names) {
    const file = join(dir, name);
    let text: string;
    try {
      if (!(await stat(file)).isFile()) continue;
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new PolicyInvalidError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'read error'}`);
    }
    files.push({ file, config: await parseRegistriesDFile(text, file) });
  }
  return mergeRegistriesD(files);
}

/** Merges per-file configurations; a scope may be defined by one file only. */
export function mergeRegistriesD(files: readonly { readonly file: string; readonly config: RegistriesDConfig }[]): RegistriesDConfig {
  let defaultDocker: { section: LookasideSection; file: string } | undefined;
  const docker = new Map<string, LookasideSection>();
  const origin = new Map<string, string>();
  for (const { file, config } of files) {
    if (config.defaultDocker) {
      if (defaultDocker) {
        throw new PolicyInvalidError(`registries.d: "default-docker" defined both in ${defaultDocker.file} and ${file}`);
      }
      defaultDocker = { section: config.defaultDocker, file };
    }
    for (const [scope, section] of config.docker) {
      const first = origin.get(scope);
      if (first !== undefined) {
        throw new PolicyInvalidError(`registries.d: "docker" namespace ${JSON.stringify(scope)} defined both in ${first} and ${file}`);
      }
      origin.set(scope, file);
      docker.set(scope, section);
    }
  }
  return { defaultDocker: defaultDocker?.section, docker };
}

/** One registries.d YAML file. Unknown keys are ignored (as c/image's YAML decoding does); wrong types are errors. */
export async function parseRegistriesDFile(text: string, file: string): Promise<RegistriesDConfig> {
  const doc = (await yaml()).parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  const firstError = doc.errors[0];
  if (firstError) throw new PolicyInvalidError(`registries.d: parsing ${file}: ${oneLine(firstError.message)}`);
  let value: unknown;
  try {
    value = doc.toJS({ mapAsMap: true, maxAliasCount: 100 });
  } catch (err) {
    throw new PolicyInvalidError(`registries.d: parsing ${file}: ${oneLine(err instanceof Error ? err.message : String(err))}`);
  }
  if (value === null || value === undefined) return EMPTY_REGISTRIES_D;
  const top = mapping(value, file, 'top level');
  const defaultDocker = top.get('default-docker');
  const dockerValue = top.get('docker');
  const docker = new Map<string, LookasideSection>();
  if (dockerValue !== null && dockerValue !== undefined) {
    for (const [scope, section] of mapping(dockerValue, file, '"docker"')) {
      docker.set(scope, parseSection(section, file, `"docker" namespace ${JSON.stringify(scope)}`));
    }
  }
  return {
    defaultDocker: defaultDocker === null || defaultDocker === undefined ? undefined : parseSection(defaultDocker, file, '"default-docker"'),
    docker,
  };
}

function parseSection(value: unknown, file: string, where: string): LookasideSection {
  if (value === null || value === undefined) return {};
  const m = mapping(value, file, where);
  return {
    lookaside: str(m, 'lookaside', file, where),
    lookasideStaging: str(m, 'lookaside-staging', file, where),
    sigstore: str(m, 'sigstore', file, where),
    sigstoreStaging: str(m, 'sigstore-staging', file, where),
    useSigstoreAttachments: bool(m, 'use-sigstore-attachments', file, where),
  };
}

function mapping(value: unknown, file: string, where: string): Map<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PolicyInvalidError(`registries.d: parsing ${file}: ${where} must be a mapping`);
  }
  const entries: [unknown, unknown][] = value instanceof Map ? [...(value as Map<unknown, unknown>)] : Object.entries(value);
  const out = new Map<string, unknown>();
  for (const [k, v] of entries) {
    if (typeof k !== 'string') throw new PolicyInvalidError(`registries.d: parsing ${file}: ${where} has a non-string key`);
    out.set(k, v);
  }
  return out;
}

function str(m: Map<string, unknown>, key: string, file: string, where: string): string | undefined {
  const v = m.get(key);
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new PolicyInvalidError(`registries.d: parsing ${file}: ${where}: ${key} must be a string`);
  return v;
}

// YAML 1.1 booleans, which Go's YAML decoder still accepts for bool fields.
const TRUE_WORDS = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON']);
const FALSE_WORDS = new Set(['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF']);

function bool(m: Map<string, unknown>, key: string, file: string, where: string): boolean | undefined {
  const v = m.get(key);
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && TRUE_WORDS.has(v)) return true;
  if (typeof v === 'string' && FALSE_WORDS.has(v)) return false;
  throw new PolicyInvalidError(`registries.d: parsing ${file}: ${where}: ${key} must be a boolean`);
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim().slice(0, 200);
}

/**
 * The scopes a docker reference is looked up under, most specific first:
 * exactly policy.json's list (identity `Name():tag` or `Name()@digest`, then
 * `Name()` and each parent namespace down to `host[:port]`, then the
 * `*.`-wildcards of the port-less host).
 */
export function referenceScopes(ref: Reference): string[] {
  return [policyIdentity(ref), ...policyNamespaces(ref)];
}

/** The sections that apply to `ref`, most specific first, `default-docker` last. */
function sectionsFor(config: RegistriesDConfig, ref: Reference): LookasideSection[] {
  const out: LookasideSection[] = [];
  for (const scope of referenceScopes(ref)) {
    const section = config.docker.get(scope);
    if (section) out.push(section);
  }
  if (config.defaultDocker) out.push(config.defaultDocker);
  return out;
}

function sectionUrl(section: LookasideSection, write: boolean): string | undefined {
  if (write) {
    const staging = section.lookasideStaging ?? section.sigstoreStaging;
    if (staging !== undefined) return staging;
  }
  return section.lookaside ?? section.sigstore;
}

export interface LookasideLookup {
  /** The staging URL first, as a writer would. Default false (reading). */
  readonly write?: boolean | undefined;
  /** Used when no section names a URL. Default `defaultLookasideBase()`. */
  readonly defaultBase?: string | undefined;
}

/**
 * The lookaside base URL for `ref` (without the repository path): the first
 * applicable section that names one — a matching section without a URL falls
 * through to the next less specific scope — else the built-in default.
 */
export function lookasideBaseFor(config: RegistriesDConfig, ref: Reference, lookup: LookasideLookup = {}): URL {
  let text: string | undefined;
  for (const section of sectionsFor(config, ref)) {
    text = sectionUrl(section, lookup.write ?? false);
    if (text !== undefined) break;
  }
  text ??= lookup.defaultBase ?? defaultLookasideBase();
  try {
    return new URL(text);
  } catch {
    throw new PolicyInvalidError(`registries.d: invalid lookaside URL for ${ref.name}`);
  }
}

/** `use-sigstore-attachments` for `ref`: the first applicable section that says it; undefined when none does. */
export function sigstoreAttachmentsSetting(config: RegistriesDConfig, ref: Reference): boolean | undefined {
  for (const section of sectionsFor(config, ref)) {
    if (section.useSigstoreAttachments !== undefined) return section.useSigstoreAttachments;
  }
  return undefined;
}

/** Whether cosign `.sig` attachments are used for `ref` as containers/image decides it: unsaid is false. */
export function useSigstoreAttachments(config: RegistriesDConfig, ref: Reference): boolean {
  return sigstoreAttachmentsSetting(config, ref) ?? false;
}
