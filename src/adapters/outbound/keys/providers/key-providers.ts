import { ConfigFileError } from '../../../../domain/errors.js';
import { isObject } from '../../../../domain/image/json-fields.js';
import type { KeyProvider } from '../../../../ports/keys/key-provider.js';
import type { GrpcTlsOptions } from '../../rpc/grpc.js';
import { ttrpcSocketPath } from '../../rpc/ttrpc.js';
import { CmdKeyProvider } from './cmd-key-provider.js';
import { GrpcKeyProvider, TtrpcKeyProvider } from './rpc-key-provider.js';

export { CmdKeyProvider, DEFAULT_KEY_PROVIDER_TIMEOUT_MS, stderrSummary } from './cmd-key-provider.js';
export { GrpcKeyProvider, KEY_PROVIDER_SERVICE, RpcKeyProvider, TtrpcKeyProvider, keyServiceError } from './rpc-key-provider.js';

export interface KeyProviderConfigOptions {
  /** In-process providers by the `native` value (e.g. `attestation-agent`); undefined for one it does not know. */
  readonly native?: ((kind: string, name: string) => KeyProvider | undefined) | undefined;
  readonly timeoutMs?: number | undefined;
  /** Where the text came from, for messages. */
  readonly source?: string | undefined;
}


/**
 * ocicrypt's key-provider config (`OCICRYPT_KEYPROVIDER_CONFIG`):
 * `{"key-providers": {NAME: {cmd|grpc|ttrpc|native}}}`. When an entry has
 * several transports, cmd wins over grpc over ttrpc over native, as in
 * ocicrypt-rs; the others are not looked at.
 */
export function loadKeyProviderConfig(text: string, options: KeyProviderConfigOptions = {}): Map<string, KeyProvider> {
  const where = options.source ?? 'key provider config';
  const fail = (why: string): never => {
    throw new ConfigFileError(`${where}: ${why}`);
  };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail(`not JSON (${err instanceof Error ? err.message.split('\n')[0] : 'parse error'})`);
  }
  if (!isObject(json)) fail('must be a JSON object');
  const root = json as Record<string, unknown>;
  const providers = root['key-providers'] ?? {};
  if (!isObject(providers)) fail('"key-providers" must be an object');
  const out = new Map<string, KeyProvider>();
  const timeoutMs = options.timeoutMs;
  for (const [name, raw] of Object.entries(providers as Record<string, unknown>)) {
    const at = `key provider ${JSON.stringify(name)}`;
    if (!name) fail('a key provider has an empty name');
    if (!isObject(raw)) fail(`${at} must be an object`);
    const entry = raw as Record<string, unknown>;
    const has = (k: string): boolean => entry[k] !== undefined && entry[k] !== null;
    const text = (k: string): string => {
      const v = entry[k];
      if (typeof v !== 'string' || v.trim() === '') fail(`${at}: "${k}" must be a non-empty string`);
      return (v as string).trim();
    };
    if (has('cmd')) {
      const cmd = entry['cmd'];
      if (!isObject(cmd)) fail(`${at}: "cmd" must be an object with "path" and "args"`);
      const c = cmd as Record<string, unknown>;
      if (typeof c['path'] !== 'string' || c['path'] === '') fail(`${at}: "cmd.path" must be a non-empty string`);
      const args = c['args'] ?? [];
      if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) fail(`${at}: "cmd.args" must be an array of strings`);
      out.set(name, new CmdKeyProvider(name, c['path'] as string, args as string[], { timeoutMs }));
    } else if (has('grpc')) {
      const target = text('grpc');
      const tls = has('grpc-tls') ? grpcTls(entry['grpc-tls'], at, fail) : undefined;
      out.set(name, new GrpcKeyProvider(name, target, { tls, timeoutMs }));
    } else if (has('ttrpc')) {
      const target = text('ttrpc');
      try {
        ttrpcSocketPath(target);
      } catch {
        fail(`${at}: "ttrpc" must be a unix socket (unix:///path), not ${JSON.stringify(target)}`);
      }
      out.set(name, new TtrpcKeyProvider(name, target, { timeoutMs }));
    } else if (has('native')) {
      const kind = text('native');
      const provider = options.native?.(kind, name);
      if (!provider) fail(`${at}: native provider ${JSON.stringify(kind)} is not available`);
      out.set(name, provider as KeyProvider);
    } else {
      fail(`${at} has none of "cmd", "grpc", "ttrpc", "native"`);
    }
  }
  return out;
}

function grpcTls(raw: unknown, at: string, fail: (why: string) => never): GrpcTlsOptions {
  if (!isObject(raw)) fail(`${at}: "grpc-tls" must be an object`);
  const o = raw as Record<string, unknown>;
  const file = (k: string): string | undefined => {
    const v = o[k];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') fail(`${at}: "grpc-tls.${k}" must be a string`);
    return v as string;
  };
  const skip = o['insecure-skip-verify'];
  if (skip !== undefined && skip !== null && typeof skip !== 'boolean') fail(`${at}: "grpc-tls.insecure-skip-verify" must be true or false`);
  const tls: GrpcTlsOptions = {
    rootCaFile: file('root-ca-file'),
    certFile: file('cert-file'),
    keyFile: file('key-file'),
    serverName: file('server-name'),
    insecureSkipVerify: skip === true,
  };
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) fail(`${at}: "grpc-tls" needs both "cert-file" and "key-file", or neither`);
  return tls;
}
