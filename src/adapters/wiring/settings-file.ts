import { readFile } from 'node:fs/promises';
import { ConfigFileError } from '../../domain/errors.js';
import { isObject } from '../../domain/image/json-fields.js';
import { DEFAULT_ADMISSION, type Admission } from '../../domain/policy/policy-gate.js';
import { RegistriesConf } from '../../domain/registry/registries-conf.js';
import type { ProxySettings } from '../outbound/http/dispatcher.js';
import { LIMIT_NAMES } from '../../domain/layer/unpack-limits.js';
import { LIMIT_KEYS, parseLimit, type ConfiguredLimits } from './limits.js';

/** The settings image-ts runs with; an image-rs style config file fills them in, flags win over it. */
export interface Settings {
  profile: string;
  workDir: string;
  maxConcurrentLayers: number;
  snapshotter: 'overlay' | 'copy' | 'erofs' | undefined;
  /** How the erofs snapshotter builds and checks layer images. */
  erofs?: ErofsSettings | undefined;
  platform: string | undefined;
  insecureRegistries: string[];
  plainHttpRegistries: string[];
  caFiles: string[];
  caPems: string[];
  /** certs.d roots: `<dir>/<host[:port]>/*.crt` are CAs for that registry. */
  certsDirs: string[];
  /** `auto`: igzip/zstd processes where installed, node's codecs otherwise; `native`: node's codecs only. */
  decompressor: 'auto' | 'native';
  /** Searched in order for credentials. */
  authFiles: string[];
  /** ocicrypt key-provider config (`OCICRYPT_KEYPROVIDER_CONFIG` when unset). */
  keyproviderConfig: string | undefined;
  /** `--decryption-key` strings every pull gets, e.g. `provider:attestation-agent`. */
  decryptionKeys: string[];
  /** Where `kbs://` resources come from; a profile may set a default. */
  keyBroker: KeyBrokerSettings | undefined;
  attestationAgent: RpcEndpoint | undefined;
  /** containers-policy.json: a path, `file://` or `kbs://` URI, or the policy itself. None: no signature policy. */
  policy: { readonly uri: string } | { readonly inline: string } | undefined;
  /** registries.d directories for simple-signing lookaside, or inline YAML. */
  registriesD: { readonly dirs: readonly string[] } | { readonly inline: string } | undefined;
  admission: AdmissionSettings;
  /** Layer downloads at once across all pulls of a process (serve); undefined: only the per-image bound. */
  maxConcurrentDownloads: number | undefined;
  /** Unpack limits the config or flags set (0: none); the profile supplies the rest. */
  limits: ConfiguredLimits;
  /** connect_timeout_seconds, read_timeout_seconds (idle, per blob) and pull_timeout_seconds (whole pull). */
  timeouts: { readonly connectMs?: number | undefined; readonly idleReadMs?: number | undefined; readonly pullMs?: number | undefined };
  /** image_pull_proxy, else HTTPS_PROXY/HTTP_PROXY/NO_PROXY; for registry and signature traffic. */
  proxy: ProxySettings | undefined;
  /** registries.conf (v2 TOML) by path, `file://` or `kbs://` URI, or image-rs's inline object. */
  registriesConf: { readonly uri: string } | { readonly inline: unknown } | undefined;
  /** `serve` endpoints from the config file; flags add to them. */
  serve: {
    readonly cdhTtrpc: readonly string[];
    readonly cdhGrpc: readonly string[];
    readonly cri: readonly string[];
    /** The deadline of a call whose client sets none. */
    readonly requestTimeoutSeconds?: number | undefined;
    readonly socketGroup?: string | undefined;
    readonly allowedUids?: readonly number[] | undefined;
    readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly clientCaFile: string } | undefined;
    readonly bundleRoots?: readonly string[] | undefined;
    readonly resourcesAllowed?: readonly string[] | undefined;
    readonly maxConcurrentCalls?: number | undefined;
  } | undefined;
}

export interface ErofsSettings {
  readonly compression?: 'lz4' | 'lz4hc' | undefined;
  /** Checked before each mount: nothing, the image's sha256, or its dm-verity tree. */
  readonly check?: 'none' | 'sha256' | 'verity' | undefined;
  /** Whether images get a dm-verity tree (default true). */
  readonly verity?: boolean | undefined;
}

/** The `erofs` section: `{ compression, check, verity }`. */
export function erofsSettings(v: unknown): ErofsSettings {
  if (!isObject(v)) throw new ConfigFileError('erofs must be an object');
  exactKeys(v, 'erofs', ['compression', 'check', 'verity']);
  const { compression, check, verity } = v;
  if (compression !== undefined && compression !== 'lz4' && compression !== 'lz4hc') throw new ConfigFileError('erofs.compression must be "lz4" or "lz4hc"');
  if (check !== undefined && check !== 'none' && check !== 'sha256' && check !== 'verity') throw new ConfigFileError('erofs.check must be "none", "sha256" or "verity"');
  if (verity !== undefined && typeof verity !== 'boolean') throw new ConfigFileError('erofs.verity must be true or false');
  if (check === 'verity' && verity === false) throw new ConfigFileError('erofs.check "verity" needs erofs.verity');
  return { compression, check, verity };
}

export type AdmissionSettings = Admission;
export { DEFAULT_ADMISSION };

/** serve's trust settings: who may connect, over what, and what a call may reach. */
function serveSecurity(v: Record<string, unknown>): Partial<NonNullable<Settings['serve']>> {
  const out: { -readonly [K in keyof NonNullable<Settings['serve']>]?: NonNullable<Settings['serve']>[K] } = {};
  const group = v['socket_group'];
  if (group !== undefined) {
    if ((typeof group !== 'string' || group === '') && !(typeof group === 'number' && Number.isInteger(group) && group >= 0)) {
      throw new ConfigFileError('serve.socket_group must be a group name or a gid');
    }
    out.socketGroup = String(group);
  }
  const uids = v['allowed_uids'];
  if (uids !== undefined) {
    if (!Array.isArray(uids) || !uids.every((u) => Number.isInteger(u) && (u as number) >= 0)) throw new ConfigFileError('serve.allowed_uids must be an array of uids');
    out.allowedUids = uids as number[];
  }
  const tls = v['tls'];
  if (tls !== undefined) {
    if (!isObject(tls)) throw new ConfigFileError('serve.tls must be an object with cert_file, key_file, client_ca_file');
    exactKeys(tls, 'serve.tls', ['cert_file', 'key_file', 'client_ca_file']);
    const file = (k: string): string => {
      const f = tls[k];
      if (typeof f !== 'string' || f === '') throw new ConfigFileError(`serve.tls.${k} must be a path`);
      return f;
    };
    out.tls = { certFile: file('cert_file'), keyFile: file('key_file'), clientCaFile: file('client_ca_file') };
  }
  const paths = (k: string, what: string, ok: (s: string) => boolean): string[] | undefined => {
    const list = v[k];
    if (list === undefined) return undefined;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && ok(x))) throw new ConfigFileError(`serve.${k} must be an array of ${what}`);
    return list as string[];
  };
  out.bundleRoots = paths('bundle_roots', 'absolute paths', (p) => p.startsWith('/'));
  out.resourcesAllowed = paths('resources_allowed', 'repo/type/tag patterns (* matches a segment)', (p) => /^[^/]+\/[^/]+\/[^/]+$/.test(p));
  const calls = v['max_concurrent_calls'];
  if (calls !== undefined) {
    if (typeof calls !== 'number' || !Number.isInteger(calls) || calls < 1 || calls > 4096) throw new ConfigFileError('serve.max_concurrent_calls must be an integer from 1 to 4096');
    out.maxConcurrentCalls = calls;
  }
  return out;
}

/** A nested block takes only the keys it documents: a typo must not silently leave a default in force. */
function exactKeys(v: Record<string, unknown>, key: string, allowed: readonly string[]): void {
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw new ConfigFileError(`${key}.${k} is not a known key (${allowed.join(', ')})`);
  }
}

function admissionSettings(v: unknown): AdmissionSettings {
  if (!isObject(v)) throw new ConfigFileError('image_admission must be an object');
  exactKeys(v, 'image_admission', ['allow_unencrypted_signed', 'allow_unencrypted_unsigned']);
  const flag = (k: string, fallback: boolean): boolean => {
    const val = v[k] ?? fallback;
    if (typeof val !== 'boolean') throw new ConfigFileError(`image_admission.${k} must be true or false`);
    return val;
  };
  return {
    unencryptedSigned: flag('allow_unencrypted_signed', DEFAULT_ADMISSION.unencryptedSigned),
    unencryptedUnsigned: flag('allow_unencrypted_unsigned', DEFAULT_ADMISSION.unencryptedUnsigned),
  };
}

export interface RpcEndpoint {
  /** `unix:///path` for ttrpc or gRPC, `host:port` for gRPC. */
  readonly address: string;
  readonly transport: 'ttrpc' | 'grpc';
}

export type KeyBrokerSettings =
  | { readonly kind: 'kbs'; readonly url: string; readonly attester: 'sample' | 'aa' }
  | ({ readonly kind: 'cdh' } & RpcEndpoint)
  | { readonly kind: 'offline-fs'; readonly files: readonly string[] };

const IGNORED: ReadonlySet<string> = new Set(['default_snapshot', 'kbc', 'kbs_uri']);

function rpcEndpoint(v: unknown, key: string): RpcEndpoint {
  if (!isObject(v) || typeof v['address'] !== 'string' || v['address'] === '') throw new ConfigFileError(`${key}.address must be a non-empty string`);
  const transport = v['transport'] ?? (v['address'].startsWith('unix://') ? 'ttrpc' : 'grpc');
  if (transport !== 'ttrpc' && transport !== 'grpc') throw new ConfigFileError(`${key}.transport must be "ttrpc" or "grpc"`);
  if (transport === 'ttrpc' && !v['address'].startsWith('unix://')) throw new ConfigFileError(`${key}: ttrpc needs a unix:// address`);
  return { address: v['address'], transport };
}

/** `{"kind": "kbs"|"cdh"|"offline-fs", ...}`: one backend, named explicitly. */
export function keyBrokerSettings(v: unknown, key = 'key_broker'): KeyBrokerSettings {
  if (!isObject(v)) throw new ConfigFileError(`${key} must be an object with a kind`);
  switch (v['kind']) {
    case 'kbs': {
      exactKeys(v, key, ['kind', 'url', 'attester']);
      const url = v['url'];
      if (typeof url !== 'string' || !/^https?:\/\/[^/]/.test(url)) throw new ConfigFileError(`${key}.url must be an http:// or https:// URL`);
      const attester = v['attester'] ?? 'aa';
      if (attester !== 'sample' && attester !== 'aa') throw new ConfigFileError(`${key}.attester must be "aa" or "sample"`);
      return { kind: 'kbs', url, attester };
    }
    case 'cdh':
      exactKeys(v, key, ['kind', 'address', 'transport']);
      return { kind: 'cdh', ...rpcEndpoint(v, key) };
    case 'offline-fs': {
      exactKeys(v, key, ['kind', 'files']);
      const files = v['files'];
      if (!Array.isArray(files) || files.length === 0 || !files.every((f) => typeof f === 'string' && f !== '')) {
        throw new ConfigFileError(`${key}.files must be a non-empty array of paths`);
      }
      return { kind: 'offline-fs', files: files as string[] };
    }
    default: throw new ConfigFileError(`${key}.kind must be "kbs", "cdh" or "offline-fs"`);
  }
}

function uriToPath(uri: string, key: string): string {
  if (uri.startsWith('file://')) return decodeURIComponent(uri.slice('file://'.length));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) throw new ConfigFileError(`${key}: only file paths and file:// URIs are supported in this build, not ${uri.split(':')[0]}://`);
  return uri;
}

/**
 * Where containers/image looks for credentials when no --auth-file is given,
 * in its order: the per-session containers file, the user's containers file,
 * then Docker's. An explicit file replaces the whole list.
 */
export function defaultAuthFiles(env: NodeJS.ProcessEnv, uid: number, home: string): string[] {
  const runtime = env['XDG_RUNTIME_DIR'] ? `${env['XDG_RUNTIME_DIR']}/containers/auth.json` : `/run/containers/${uid}/auth.json`;
  const config = `${env['XDG_CONFIG_HOME'] || `${home}/.config`}/containers/auth.json`;
  const docker = env['DOCKER_CONFIG'] ? `${env['DOCKER_CONFIG']}/config.json` : `${home}/.docker/config.json`;
  return [runtime, config, docker];
}

/** Where containers/image and docker look for per-registry CAs, user config first. */
export function defaultCertsDirs(env: NodeJS.ProcessEnv, home: string): string[] {
  return [`${env['XDG_CONFIG_HOME'] || `${home}/.config`}/containers/certs.d`, '/etc/containers/certs.d', '/etc/docker/certs.d'];
}

export function defaultWorkDir(env: NodeJS.ProcessEnv, uid: number, home: string): string {
  if (uid === 0) return '/var/lib/image-ts';
  return `${env['XDG_DATA_HOME'] || `${home}/.local/share`}/image-ts`;
}

/**
 * Reads an image-rs style JSON config. Unknown keys warn (image-rs ignores them
 * silently); malformed values are a CONFIG_FILE_INVALID error.
 */
export async function loadConfigFile(path: string, warn: (message: string) => void): Promise<Partial<Settings>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigFileError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigFileError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw new ConfigFileError(`config file ${path} must hold a JSON object`);
  return parseConfig(doc, `config file ${path}`, warn);
}

/**
 * The image-rs config keys, from a file or from an embedding program's
 * object. `source` names it in warnings: `config file /etc/x.json`, `config`.
 */
export function parseConfig(doc: Readonly<Record<string, unknown>>, source: string, warn: (message: string) => void): Partial<Settings> {
  const out: Partial<Settings> = {};
  const str = (k: string): string => {
    const v = doc[k];
    if (typeof v !== 'string' || v === '') throw new ConfigFileError(`${k} must be a non-empty string`);
    return v;
  };
  const strList = (k: string): string[] => {
    const v = doc[k];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ConfigFileError(`${k} must be an array of strings`);
    return v as string[];
  };
  for (const [key, value] of Object.entries(doc)) {
    if (value === null) continue;
    switch (key) {
      case 'work_dir': out.workDir = str(key); break;
      case 'profile': out.profile = str(key); break;
      case 'platform': out.platform = str(key); break;
      case 'max_concurrent_layer_downloads_per_image': {
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 64) {
          throw new ConfigFileError(`${key} must be an integer from 1 to 64`);
        }
        out.maxConcurrentLayers = value;
        break;
      }
      case 'snapshotter': {
        const v = str(key);
        if (v !== 'overlay' && v !== 'copy' && v !== 'erofs') throw new ConfigFileError(`snapshotter must be "overlay", "copy" or "erofs"`);
        out.snapshotter = v;
        break;
      }
      case 'erofs': out.erofs = erofsSettings(value); break;
      case 'extra_root_certificates': out.caPems = strList(key); break;
      case 'extra_root_certificate_files': out.caFiles = strList(key); break;
      case 'insecure_registries': out.insecureRegistries = strList(key); break;
      case 'plain_http_registries': out.plainHttpRegistries = strList(key); break;
      case 'certs_dirs': out.certsDirs = strList(key); break;
      case 'decompressor': {
        const v = str(key);
        if (v !== 'auto' && v !== 'native') throw new ConfigFileError('decompressor must be "auto" or "native"');
        out.decompressor = v;
        break;
      }
      case 'authenticated_registry_credentials_uri': out.authFiles = [uriToPath(str(key), key)]; break;
      case 'keyprovider_config': out.keyproviderConfig = str(key); break;
      case 'decryption_keys': out.decryptionKeys = strList(key); break;
      case 'key_broker': out.keyBroker = keyBrokerSettings(value); break;
      case 'attestation_agent':
        if (isObject(value)) exactKeys(value, key, ['address', 'transport']);
        out.attestationAgent = rpcEndpoint(value, key);
        break;
      // image-rs: the URI wins over the inline policy.
      case 'image_security_policy_uri': out.policy = { uri: str(key) }; break;
      case 'image_security_policy':
        if (!('image_security_policy_uri' in doc)) out.policy = { inline: typeof value === 'string' ? str(key) : JSON.stringify(value) };
        break;
      case 'sigstore_config_uri': out.registriesD = { dirs: [uriToPath(str(key), key)] }; break;
      case 'sigstore_config':
        if (!('sigstore_config_uri' in doc)) out.registriesD = { inline: str(key) };
        break;
      case 'image_admission': out.admission = admissionSettings(value); break;
      case 'connect_timeout_seconds':
      case 'read_timeout_seconds':
      case 'pull_timeout_seconds': {
        if (typeof value !== 'number' || !(value > 0) || value > 86400) throw new ConfigFileError(`${key} must be a number of seconds from 0 to 86400`);
        const ms = Math.round(value * 1000);
        out.timeouts = { ...out.timeouts, ...(key === 'connect_timeout_seconds' ? { connectMs: ms } : key === 'read_timeout_seconds' ? { idleReadMs: ms } : { pullMs: ms }) };
        break;
      }
      case 'image_pull_proxy': {
        if (!isObject(value)) throw new ConfigFileError('image_pull_proxy must be an object with https_proxy, http_proxy, no_proxy');
        const get = (k: string): string | undefined => {
          const v = value[k];
          if (v === undefined || v === null) return undefined;
          if (typeof v !== 'string') throw new ConfigFileError(`image_pull_proxy.${k} must be a string`);
          if (k !== 'no_proxy' && !/^https?:\/\/[^/]/.test(v)) throw new ConfigFileError(`image_pull_proxy.${k} must be an http:// or https:// URL`);
          return v;
        };
        exactKeys(value, 'image_pull_proxy', ['https_proxy', 'http_proxy', 'no_proxy']);
        out.proxy = { httpsProxy: get('https_proxy'), httpProxy: get('http_proxy'), noProxy: get('no_proxy') };
        break;
      }
      // image-rs: the inline form wins over the URI.
      case 'registry_config':
        // Checked now, so a bad inline config fails at start rather than at the first registry pull.
        RegistriesConf.fromObject(value, 'registry_config');
        out.registriesConf = { inline: value };
        break;
      case 'registry_configuration_uri':
        if (!('registry_config' in doc) || doc['registry_config'] === null) out.registriesConf = { uri: str(key) };
        break;
      case LIMIT_NAMES.maxUnpackedBytesPerLayer:
      case LIMIT_NAMES.maxUnpackedBytesPerImage:
      case LIMIT_NAMES.maxEntriesPerLayer:
      case LIMIT_NAMES.maxPathBytes: {
        const limit = LIMIT_KEYS.find((k) => LIMIT_NAMES[k] === key)!;
        out.limits = { ...out.limits, [limit]: parseLimit(limit, value) };
        break;
      }
      case 'max_concurrent_layer_downloads': {
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 256) {
          throw new ConfigFileError(`${key} must be an integer from 1 to 256`);
        }
        out.maxConcurrentDownloads = value;
        break;
      }
      case 'serve': {
        if (!isObject(value)) throw new ConfigFileError('serve must be an object of endpoint lists');
        const list = (k: string): string[] => {
          const v = value[k] ?? [];
          if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== '')) throw new ConfigFileError(`serve.${k} must be an array of addresses`);
          return v as string[];
        };
        exactKeys(value, 'serve', [
          'cdh_ttrpc', 'cdh_grpc', 'cri', 'request_timeout_seconds',
          'socket_group', 'allowed_uids', 'tls', 'bundle_roots', 'resources_allowed', 'max_concurrent_calls',
        ]);
        const timeout = value['request_timeout_seconds'];
        if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout > 0) || timeout > 86400)) {
          throw new ConfigFileError('serve.request_timeout_seconds must be a number of seconds from 0 to 86400');
        }
        out.serve = { cdhTtrpc: list('cdh_ttrpc'), cdhGrpc: list('cdh_grpc'), cri: list('cri'), requestTimeoutSeconds: timeout, ...serveSecurity(value) };
        break;
      }
      default:
        if (!IGNORED.has(key)) warn(`${source}: unknown key ${key} ignored`);
    }
  }
  return out;
}
