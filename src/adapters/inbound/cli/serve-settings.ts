import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigFileError, InvalidArgumentError } from '../../../domain/errors.js';
import type { Settings } from '../../wiring/settings-file.js';
import { defaultBundleRoots } from '../../wiring/serve-defaults.js';
import { groupId } from '../rpc/listeners.js';
import { DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_REQUEST_TIMEOUT_MS, type ServeEndpoints } from './serve.js';

/** What the command line (or a library call) adds over the config file's serve block. */
export interface ServeOverrides {
  readonly cdhTtrpc?: readonly string[] | undefined;
  readonly cdhGrpc?: readonly string[] | undefined;
  readonly cri?: readonly string[] | undefined;
  readonly socketGroup?: string | undefined;
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  readonly tlsClientCa?: string | undefined;
  readonly bundleRoots?: readonly string[] | undefined;
}

/**
 * The config's serve block with the overrides on top. Files (TLS, /etc/group)
 * are read now, so that a bad one fails at start rather than at a call.
 */
export async function serveEndpoints(settings: Settings, o: ServeOverrides = {}): Promise<ServeEndpoints> {
  const file = settings.serve;
  const tlsFiles = { certFile: o.tlsCert ?? file?.tls?.certFile, keyFile: o.tlsKey ?? file?.tls?.keyFile, clientCaFile: o.tlsClientCa ?? file?.tls?.clientCaFile };
  const given = Object.values(tlsFiles).filter((v) => v !== undefined).length;
  if (given !== 0 && given !== 3) {
    throw new InvalidArgumentError('mutual TLS needs all of --tls-cert, --tls-key and --tls-client-ca (serve.tls cert_file, key_file, client_ca_file)');
  }
  const read = async (what: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new ConfigFileError(`${what} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const tls = given === 3
    ? { cert: await read('TLS certificate', tlsFiles.certFile!), key: await read('TLS key', tlsFiles.keyFile!), clientCa: await read('client CA', tlsFiles.clientCaFile!) }
    : undefined;
  const groupSpec = o.socketGroup ?? file?.socketGroup;
  const group = groupSpec === undefined ? undefined : groupId(groupSpec, await readFile('/etc/group', 'utf8').catch(() => ''));
  return {
    cdhTtrpc: [...(file?.cdhTtrpc ?? []), ...(o.cdhTtrpc ?? [])],
    cdhGrpc: [...(file?.cdhGrpc ?? []), ...(o.cdhGrpc ?? [])],
    cri: [...(file?.cri ?? []), ...(o.cri ?? [])],
    requestTimeoutMs: file?.requestTimeoutSeconds !== undefined ? file.requestTimeoutSeconds * 1000 : DEFAULT_REQUEST_TIMEOUT_MS,
    access: { group, allowedUids: file?.allowedUids },
    tls,
    bundleRoots: (o.bundleRoots ?? file?.bundleRoots ?? defaultBundleRoots(settings.profile)).map((r) => resolve(r)),
    resourcesAllowed: file?.resourcesAllowed,
    maxConcurrentCalls: file?.maxConcurrentCalls ?? DEFAULT_MAX_CONCURRENT_CALLS,
  };
}
