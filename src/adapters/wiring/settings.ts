import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { proxyFromEnv } from '../outbound/http/dispatcher.js';
import { DEFAULT_ADMISSION, defaultAuthFiles, defaultCertsDirs, defaultWorkDir, type ErofsSettings, type Settings } from './settings-file.js';
import type { ConfiguredLimits } from './limits.js';

/** What the command line (or an embedding program, per service) adds over the config: these win or add. */
export interface SettingsOverrides {
  readonly workDir?: string | undefined;
  readonly maxConcurrentLayers?: number | undefined;
  readonly snapshotter?: 'overlay' | 'copy' | 'erofs' | undefined;
  /** Over the config's erofs section, key by key. */
  readonly erofs?: ErofsSettings | undefined;
  readonly platform?: string | undefined;
  /** Added to the config's. */
  readonly insecureRegistries?: readonly string[] | undefined;
  readonly plainHttpRegistries?: readonly string[] | undefined;
  readonly caFiles?: readonly string[] | undefined;
  readonly decryptionKeys?: readonly string[] | undefined;
  /** Replace the config's. */
  readonly authFile?: string | undefined;
  readonly policyUri?: string | undefined;
  readonly registriesDDirs?: readonly string[] | undefined;
  readonly registriesConfUri?: string | undefined;
  readonly limits?: ConfiguredLimits | undefined;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Every setting decided: the config's values, the overrides on top, and the
 * defaults image-rs, containers/image and docker use for the rest. One path
 * for the CLI, `serve` and the library.
 */
export function resolveSettings(file: Partial<Settings>, o: SettingsOverrides = {}, env: NodeJS.ProcessEnv = process.env): Settings {
  const uid = process.getuid?.() ?? 1000;
  return {
    profile: file.profile ?? 'standalone',
    workDir: resolve(o.workDir ?? file.workDir ?? defaultWorkDir(env, uid, homedir())),
    maxConcurrentLayers: o.maxConcurrentLayers ?? file.maxConcurrentLayers ?? 3,
    snapshotter: o.snapshotter ?? file.snapshotter,
    erofs: { ...file.erofs, ...definedOnly(o.erofs ?? {}) },
    platform: o.platform ?? file.platform,
    insecureRegistries: [...(file.insecureRegistries ?? []), ...(o.insecureRegistries ?? [])],
    plainHttpRegistries: [...(file.plainHttpRegistries ?? []), ...(o.plainHttpRegistries ?? [])],
    caFiles: [...(file.caFiles ?? []), ...(o.caFiles ?? [])],
    caPems: file.caPems ?? [],
    decompressor: file.decompressor ?? 'auto',
    certsDirs: file.certsDirs ?? defaultCertsDirs(env, homedir()),
    authFiles: o.authFile !== undefined ? [o.authFile] : (file.authFiles ?? defaultAuthFiles(env, uid, homedir())),
    keyproviderConfig: file.keyproviderConfig ?? (env['OCICRYPT_KEYPROVIDER_CONFIG'] || undefined),
    decryptionKeys: [...(file.decryptionKeys ?? []), ...(o.decryptionKeys ?? [])],
    keyBroker: file.keyBroker,
    attestationAgent: file.attestationAgent,
    policy: o.policyUri !== undefined ? { uri: o.policyUri } : file.policy,
    registriesD: o.registriesDDirs !== undefined ? { dirs: o.registriesDDirs } : file.registriesD,
    admission: file.admission ?? DEFAULT_ADMISSION,
    maxConcurrentDownloads: file.maxConcurrentDownloads,
    limits: { ...file.limits, ...o.limits },
    proxy: file.proxy ?? proxyFromEnv(env),
    timeouts: file.timeouts ?? {},
    registriesConf: o.registriesConfUri !== undefined ? { uri: o.registriesConfUri } : file.registriesConf,
    serve: file.serve,
  };
}
