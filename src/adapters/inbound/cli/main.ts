import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigFileError, ImageTsError, InvalidArgumentError, NetworkError, asImageTsError } from '../../../domain/errors.js';
import { Platform } from '../../../domain/image/platform.js';
import type { PullImage, PullResult } from '../../../domain/pull/pull-image.js';
import type { ManageImages } from '../../../domain/store/manage-images.js';
import type { Credentials } from '../../../ports/image-source/image-source.js';
import { LayerStoreToken, type LayerStore } from '../../../ports/layer/layer-store.js';
import type { Logger, LogLevel } from '../../../ports/observability/logger.js';
import { parseDecryptionKey } from '../../../domain/encryption/decrypt-config.js';
import { loadDecryptConfig } from '../../outbound/keys/key-files.js';
import { proxyFromEnv } from '../../outbound/http/dispatcher.js';
import { buildContainer } from '../../wiring/container.js';
import { DEFAULT_ADMISSION, defaultAuthFiles, defaultCertsDirs, defaultWorkDir, loadConfigFile, type Settings } from '../../wiring/image-config-file.js';
import { Tokens } from '../../wiring/tokens.js';
import { LIMIT_NAMES } from '../../../domain/layer/unpack-limits.js';
import { LIMIT_KEYS, parseLimit, type ConfiguredLimits } from '../../wiring/limits.js';
import { ProgressRenderer } from './progress.js';

const USAGE = `usage:
  image-ts pull IMAGE BUNDLE_DIR [--work-dir DIR] [--config FILE] [--creds USER:PASS] [--auth-file FILE]
                [--platform OS/ARCH[/VARIANT]] [--insecure-registry HOST[:PORT]]... [--plain-http HOST[:PORT]]... [--ca-file PEM]...
                [--registries-conf FILE|URI] [--decryption-key KEY]... [--policy FILE|URI] [--registries-d DIR]...
                [--snapshotter overlay|copy] [--max-concurrent-layers N] [--json] [--quiet]
                [--max-unpacked-bytes-per-layer SIZE] [--max-unpacked-bytes-per-image SIZE]
                [--max-entries-per-layer N] [--max-path-bytes N]
  image-ts verify IMAGE [--policy FILE|URI] [--registries-d DIR]... [registry options as for pull] [--json]
  image-ts serve [--cdh-ttrpc unix:///PATH]... [--cdh-grpc unix:///PATH|HOST:PORT]... [--cri unix:///PATH]...
                [--log-level debug|info|warn|error] [--socket-group NAME|GID] [--bundle-root DIR]...
                [--tls-cert PEM --tls-key PEM --tls-client-ca PEM]
                [pull options: --work-dir, --config, --policy, --snapshotter, ...]
  image-ts list [--work-dir DIR] [--json]
  image-ts inspect IMAGE [--work-dir DIR] [--json]
  image-ts rm IMAGE [--work-dir DIR]
  image-ts gc [--work-dir DIR]
  image-ts bundle rm BUNDLE_DIR [--work-dir DIR]

IMAGE is a docker reference (docker:// optional) or oci:DIR[:REF].
KEY is PATH, PATH:pass=PASSWORD, PATH:file=PASSWORD_FILE or provider:NAME[:PARAMS] (as skopeo).`;

import { UsageError } from './usage-error.js';
import { DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_REQUEST_TIMEOUT_MS, JsonLogger, serve, type ServeEndpoints } from './serve.js';
import { groupId } from '../rpc/listeners.js';
import { defaultBundleRoots } from '../../wiring/serve-defaults.js';
import { readFile } from 'node:fs/promises';

const OPTIONS = {
  'work-dir': { type: 'string' },
  config: { type: 'string' },
  creds: { type: 'string' },
  'auth-file': { type: 'string' },
  platform: { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  'plain-http': { type: 'string', multiple: true },
  'ca-file': { type: 'string', multiple: true },
  'decryption-key': { type: 'string', multiple: true },
  policy: { type: 'string' },
  'registries-d': { type: 'string', multiple: true },
  'cdh-ttrpc': { type: 'string', multiple: true },
  'cdh-grpc': { type: 'string', multiple: true },
  cri: { type: 'string', multiple: true },
  'registries-conf': { type: 'string' },
  'log-level': { type: 'string' },
  'socket-group': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-client-ca': { type: 'string' },
  'bundle-root': { type: 'string', multiple: true },
  snapshotter: { type: 'string' },
  'max-concurrent-layers': { type: 'string' },
  'max-unpacked-bytes-per-layer': { type: 'string' },
  'max-unpacked-bytes-per-image': { type: 'string' },
  'max-entries-per-layer': { type: 'string' },
  'max-path-bytes': { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

type Flags = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { multiple: true } ? string[] : (typeof OPTIONS)[K] extends { type: 'boolean' } ? boolean : string;
};

const LIMIT_FLAGS = ['max-unpacked-bytes-per-layer', 'max-unpacked-bytes-per-image', 'max-entries-per-layer', 'max-path-bytes'] as const;

/** Which flags each command takes; anything else is a usage error, not silently ignored. */
const COMMAND_FLAGS: Readonly<Record<string, readonly (keyof Flags)[]>> = {
  pull: ['work-dir', 'config', 'creds', 'auth-file', 'platform', 'insecure-registry', 'plain-http', 'registries-conf', 'ca-file', 'decryption-key', 'policy', 'registries-d', 'snapshotter', 'max-concurrent-layers', ...LIMIT_FLAGS, 'json', 'quiet'],
  verify: ['work-dir', 'config', 'creds', 'auth-file', 'platform', 'insecure-registry', 'plain-http', 'registries-conf', 'ca-file', 'policy', 'registries-d', 'json', 'quiet'],
  serve: ['work-dir', 'config', 'creds', 'auth-file', 'platform', 'insecure-registry', 'plain-http', 'registries-conf', 'ca-file', 'decryption-key', 'policy', 'registries-d',
    'snapshotter', 'max-concurrent-layers', ...LIMIT_FLAGS, 'cdh-ttrpc', 'cdh-grpc', 'cri', 'log-level',
    'socket-group', 'tls-cert', 'tls-key', 'tls-client-ca', 'bundle-root'],
  list: ['work-dir', 'config', 'json', 'quiet'],
  inspect: ['work-dir', 'config', 'json', 'quiet'],
  rm: ['work-dir', 'config', 'json', 'quiet'],
  gc: ['work-dir', 'config', 'json', 'quiet'],
  bundle: ['work-dir', 'config', 'json', 'quiet'],
};

class CliLogger implements Logger {
  private readonly seen = new Set<string>();
  constructor(private readonly quiet: boolean) {}

  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void {
    if (level === 'debug' || level === 'info' || this.quiet) return;
    const message = typeof fields?.['message'] === 'string' ? fields['message'] : event;
    const line = `image-ts: ${level === 'warn' ? 'warning' : 'error'}: ${message}`;
    if (this.seen.has(line)) return;
    this.seen.add(line);
    process.stderr.write(`${line}\n`);
  }
}

function parseCreds(value: string): Credentials {
  const colon = value.indexOf(':');
  if (colon <= 0) throw new UsageError('--creds takes USER:PASS');
  return { kind: 'basic', username: value.slice(0, colon), password: value.slice(colon + 1) };
}

async function settingsFrom(flags: Flags, logger: Logger): Promise<Settings> {
  const uid = process.getuid?.() ?? 1000;
  const file = flags.config ? await loadConfigFile(flags.config, (m) => logger.log('warn', 'config', { message: m })) : {};
  let maxConcurrentLayers = file.maxConcurrentLayers ?? 3;
  if (flags['max-concurrent-layers'] !== undefined) {
    const n = Number(flags['max-concurrent-layers']);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError('--max-concurrent-layers takes an integer from 1 to 64');
    maxConcurrentLayers = n;
  }
  const snapshotter = flags.snapshotter ?? file.snapshotter;
  if (snapshotter !== undefined && snapshotter !== 'overlay' && snapshotter !== 'copy') {
    throw new UsageError('--snapshotter takes overlay or copy');
  }
  const platform = flags.platform ?? file.platform;
  if (platform !== undefined) Platform.parse(platform);
  const limits: ConfiguredLimits = { ...file.limits };
  for (const key of LIMIT_KEYS) {
    const flag = LIMIT_NAMES[key].replaceAll('_', '-') as (typeof LIMIT_FLAGS)[number];
    const value = flags[flag];
    if (value !== undefined) limits[key] = parseLimit(key, value, (m) => new UsageError(`--${flag}: ${m}`));
  }
  return {
    profile: file.profile ?? 'standalone',
    workDir: resolve(flags['work-dir'] ?? file.workDir ?? defaultWorkDir(process.env, uid, homedir())),
    maxConcurrentLayers,
    snapshotter,
    platform,
    insecureRegistries: [...(file.insecureRegistries ?? []), ...(flags['insecure-registry'] ?? [])],
    plainHttpRegistries: [...(file.plainHttpRegistries ?? []), ...(flags['plain-http'] ?? [])],
    caFiles: [...(file.caFiles ?? []), ...(flags['ca-file'] ?? [])],
    caPems: file.caPems ?? [],
    decompressor: file.decompressor ?? 'auto',
    certsDirs: file.certsDirs ?? defaultCertsDirs(process.env, homedir()),
    authFiles: flags['auth-file'] !== undefined ? [flags['auth-file']] : (file.authFiles ?? defaultAuthFiles(process.env, uid, homedir())),
    keyproviderConfig: file.keyproviderConfig ?? (process.env['OCICRYPT_KEYPROVIDER_CONFIG'] || undefined),
    decryptionKeys: [...(file.decryptionKeys ?? []), ...(flags['decryption-key'] ?? [])],
    keyBroker: file.keyBroker,
    attestationAgent: file.attestationAgent,
    policy: flags.policy !== undefined ? { uri: flags.policy } : file.policy,
    registriesD: flags['registries-d'] !== undefined ? { dirs: flags['registries-d'] } : file.registriesD,
    admission: file.admission ?? DEFAULT_ADMISSION,
    maxConcurrentDownloads: file.maxConcurrentDownloads,
    limits,
    proxy: file.proxy ?? proxyFromEnv(process.env),
    timeouts: file.timeouts ?? {},
    registriesConf: flags['registries-conf'] !== undefined ? { uri: flags['registries-conf'] } : file.registriesConf,
    serve: file.serve,
  };
}

/** The config file's serve block with the flags on top; files (TLS, /etc/group) are read now, so a bad one fails at start. */
async function serveEndpoints(flags: Flags, settings: Settings): Promise<ServeEndpoints> {
  const file = settings.serve;
  const tlsFiles = {
    certFile: flags['tls-cert'] ?? file?.tls?.certFile,
    keyFile: flags['tls-key'] ?? file?.tls?.keyFile,
    clientCaFile: flags['tls-client-ca'] ?? file?.tls?.clientCaFile,
  };
  const given = Object.values(tlsFiles).filter((v) => v !== undefined).length;
  if (given !== 0 && given !== 3) throw new UsageError('mutual TLS needs all of --tls-cert, --tls-key and --tls-client-ca (serve.tls cert_file, key_file, client_ca_file)');
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
  const groupSpec = flags['socket-group'] ?? file?.socketGroup;
  const group = groupSpec === undefined ? undefined : groupId(groupSpec, await readFile('/etc/group', 'utf8').catch(() => ''));
  return {
    cdhTtrpc: [...(file?.cdhTtrpc ?? []), ...(flags['cdh-ttrpc'] ?? [])],
    cdhGrpc: [...(file?.cdhGrpc ?? []), ...(flags['cdh-grpc'] ?? [])],
    cri: [...(file?.cri ?? []), ...(flags.cri ?? [])],
    requestTimeoutMs: file?.requestTimeoutSeconds !== undefined ? file.requestTimeoutSeconds * 1000 : DEFAULT_REQUEST_TIMEOUT_MS,
    access: { group, allowedUids: file?.allowedUids },
    tls,
    bundleRoots: (flags['bundle-root'] ?? file?.bundleRoots ?? defaultBundleRoots(settings.profile)).map((r) => resolve(r)),
    resourcesAllowed: file?.resourcesAllowed,
    maxConcurrentCalls: file?.maxConcurrentCalls ?? DEFAULT_MAX_CONCURRENT_CALLS,
  };
}

/** The whole pull's deadline: past it, everything stops and is undone, reported as NETWORK. */
function deadline(ms: number): AbortSignal {
  const controller = new AbortController();
  setTimeout(() => controller.abort(new NetworkError(`the pull took longer than pull_timeout_seconds (${ms / 1000} s)`)), ms).unref();
  return controller.signal;
}

function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

function pullJson(r: PullResult): unknown {
  return {
    reference: r.reference,
    manifestDigest: r.manifestDigest,
    configDigest: r.configDigest,
    bundle: r.bundle,
    layers: r.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size })),
  };
}

function humanSize(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(u ? 1 : 0)}${units[u]}`;
}

async function run(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
  const flags = parsed.values as Flags;
  const [command, ...rest] = parsed.positionals;
  if (flags.help || command === undefined || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    if (command === undefined && !flags.help) process.exitCode = 2;
    return;
  }
  const allowed = COMMAND_FLAGS[command];
  if (!allowed) throw new UsageError(`unknown command ${JSON.stringify(command)}; run image-ts --help`);
  for (const key of Object.keys(flags) as (keyof Flags)[]) {
    if (!allowed.includes(key)) throw new UsageError(`${command} does not take --${key}`);
  }
  const arity = (n: number, what: string): string[] => {
    if (rest.length !== n) throw new UsageError(`${command} takes ${what}`);
    return rest;
  };

  const json = flags.json === true;
  // A service logs JSON lines for its collector; a command talks to a person.
  const logger: Logger = command === 'serve' ? new JsonLogger(flags['log-level'] ?? 'info') : new CliLogger(flags.quiet === true || json);
  let positional: string[];
  switch (command) {
    case 'pull': positional = arity(2, 'IMAGE BUNDLE_DIR'); break;
    case 'inspect':
    case 'verify':
    case 'rm': positional = arity(1, 'IMAGE'); break;
    case 'bundle':
      if (rest[0] !== 'rm') throw new UsageError('bundle takes the subcommand rm');
      positional = arity(2, 'rm BUNDLE_DIR').slice(1);
      break;
    default: positional = arity(0, 'no arguments');
  }
  const credentials = flags.creds !== undefined ? parseCreds(flags.creds) : undefined;
  const settings = await settingsFrom(flags, logger);
  const container = await buildContainer({ settings, logger, credentials });
  const manage = container.get<ManageImages>(Tokens.ManageImages);

  switch (command) {
    case 'serve': {
      const stop = new Promise<void>((resolve) => {
        process.once('SIGTERM', () => resolve());
        process.once('SIGINT', () => resolve());
      });
      await serve(container, await serveEndpoints(flags, settings), logger, stop);
      return;
    }
    case 'pull': {
      const [image, bundle] = positional as [string, string];
      // Staging left by a crashed pull; staging of live processes is kept.
      await container.get<LayerStore>(LayerStoreToken).cleanStaging();
      const controller = new AbortController();
      const onSignal = (): void => controller.abort(new ImageTsError('INTERNAL', 'interrupted'));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const pullDeadline = settings.timeouts.pullMs ? deadline(settings.timeouts.pullMs) : undefined;
      const progress = !json && !flags.quiet && process.stderr.isTTY ? new ProgressRenderer(process.stderr) : undefined;
      try {
        const result = await container.get<PullImage>(Tokens.PullImage).execute({
          image: image.startsWith('oci:') ? `oci:${resolve(image.slice(4))}` : image,
          bundle,
          platform: settings.platform ? Platform.parse(settings.platform) : undefined,
          snapshotter: settings.snapshotter,
          maxConcurrentLayers: settings.maxConcurrentLayers,
          decryptConfig: await loadDecryptConfig(settings.decryptionKeys.map(parseDecryptionKey)),
          signal: pullDeadline ? AbortSignal.any([controller.signal, pullDeadline]) : controller.signal,
          onProgress: progress?.listener,
        });
        progress?.finish();
        const fetched = result.layers.filter((l) => l.fetched).length;
        print(json, pullJson(result), flags.quiet ? result.manifestDigest : [
          `pulled ${result.reference}`,
          `  manifest ${result.manifestDigest}`,
          `  config   ${result.configDigest}`,
          `  layers   ${result.layers.length} (${fetched} fetched, ${result.layers.length - fetched} from the store)`,
          `  bundle   ${result.bundle} (${result.snapshotter})`,
        ].join('\n'));
      } catch (err) {
        // Whatever broke first under the abort, the deadline is the reason.
        if (pullDeadline?.aborted && pullDeadline.reason instanceof ImageTsError) throw pullDeadline.reason;
        throw err;
      } finally {
        progress?.finish();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      return;
    }
    case 'verify': {
      const image = positional[0]!;
      const r = await container.get<PullImage>(Tokens.PullImage).verify({
        image: image.startsWith('oci:') ? `oci:${resolve(image.slice(4))}` : image,
        platform: settings.platform ? Platform.parse(settings.platform) : undefined,
      });
      const v = r.verdict;
      print(json, r, flags.quiet ? (r.refusal ? 'refused' : 'allowed') : [
        `image     ${r.reference}`,
        `manifest  ${r.manifestDigest}${r.indexDigest ? ` (index ${r.indexDigest})` : ''}`,
        `encrypted ${r.encrypted ? 'yes' : 'no'}`,
        v ? `policy    scope ${JSON.stringify(v.scope)}` : 'policy    none configured',
        ...(v?.requirements ?? []).map((q) => `  ${q.requirement}: ${q.allowed ? 'accepted' : `denied (${q.code ?? 'POLICY_DENIED'})`}: ${q.reason}`),
        `result    ${r.refusal ? 'refused' : 'allowed'}`,
      ].join('\n'));
      // The report is on stdout; the refusal is the one stderr line and the exit status, as for pull.
      if (r.refusal) throw new ImageTsError(r.refusal.code, r.refusal.message);
      return;
    }
    case 'list': {
      const images = await manage.list();
      print(json, images, images.length === 0 ? 'no images' : images.map((i) =>
        `${i.names.join(', ')}\t${i.manifestDigest.slice(0, 19)}\t${i.platform}\t${humanSize(i.size)}`).join('\n'));
      return;
    }
    case 'inspect': {
      const info = await manage.inspect(positional[0]!);
      print(json, info, [
        `names     ${info.image.names.join(', ')}`,
        `manifest  ${info.image.manifestDigest} (${info.image.mediaType})`,
        ...(info.image.indexDigest ? [`index     ${info.image.indexDigest}`] : []),
        `config    ${info.image.configDigest}`,
        `platform  ${info.image.platform}`,
        `pulled    ${info.image.pulledAt}`,
        `layers:`,
        ...info.image.layers.map((l, i) => `  ${l.digest}  ${l.mediaType}  ${humanSize(l.size)}  refs=${info.layers[i]?.refs ?? 0}${l.encryption ? `  encrypted: ${l.encryption.join(', ')}` : ''}`),
        `bundles:   ${info.bundles.length ? info.bundles.join(', ') : 'none'}`,
      ].join('\n'));
      return;
    }
    case 'rm': {
      const removed = await manage.remove(positional[0]!);
      print(json, { removed: removed.manifestDigest }, `removed ${positional[0]} (${removed.manifestDigest})`);
      return;
    }
    case 'gc': {
      const r = await manage.gc();
      print(json, r, `removed ${r.removedLayers.length} layers (${humanSize(r.freedBytes)}), ${r.staleStaging} stale staging dirs`);
      return;
    }
    case 'bundle': {
      const record = await manage.removeBundle(positional[0]!);
      print(json, { removed: record.path }, `removed bundle ${record.path}`);
      return;
    }
  }
}

/** Maps any failure to one line and an exit status; never a stack trace. */
export async function main(argv: string[]): Promise<number> {
  try {
    await run(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const e = err instanceof UsageError ? err : asImageTsError(err);
    const message = e.message.replace(/\s*\n\s*/g, ' ');
    process.stderr.write(`image-ts: ${e.code}: ${message}\n`);
    if (process.env['IMAGE_TS_DEBUG'] === '1' && e.cause) process.stderr.write(`${String(e.cause)}\n`);
    return err instanceof UsageError || (e instanceof InvalidArgumentError && e.code === 'INVALID_ARGUMENT') ? 2 : 1;
  }
}
