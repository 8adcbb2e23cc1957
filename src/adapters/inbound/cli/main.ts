import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ImageTsError, InvalidArgumentError, asImageTsError } from '../../../domain/errors.js';
import { Platform } from '../../../domain/image/platform.js';
import type { Credentials } from '../../../ports/image-source/image-source.js';
import type { Logger, LogLevel } from '../../../ports/observability/logger.js';
import { loadConfigFile, type Settings } from '../../wiring/settings-file.js';
import { resolveSettings } from '../../wiring/settings.js';
import { LIMIT_NAMES } from '../../../domain/layer/unpack-limits.js';
import { LIMIT_KEYS, parseLimit, type ConfiguredLimits } from '../../wiring/limits.js';
import { openImageService, pulledBundle } from '../library/image-service.js';
import { ProgressRenderer } from './progress.js';

const USAGE = `usage:
  image-ts pull IMAGE BUNDLE_DIR [--work-dir DIR] [--config FILE] [--creds USER:PASS] [--auth-file FILE]
                [--platform OS/ARCH[/VARIANT]] [--insecure-registry HOST[:PORT]]... [--plain-http HOST[:PORT]]... [--ca-file PEM]...
                [--registries-conf FILE|URI] [--decryption-key KEY]... [--policy FILE|URI] [--registries-d DIR]...
                [--snapshotter overlay|copy|erofs] [--erofs-compression lz4|lz4hc] [--erofs-check none|sha256|verity]
                [--max-concurrent-layers N] [--json] [--quiet] [--max-unpacked-bytes-per-layer SIZE] [--max-unpacked-bytes-per-image SIZE]
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
  image-ts df [--work-dir DIR] [--json]
  image-ts bundle rm BUNDLE_DIR [--work-dir DIR]

IMAGE is a docker reference (docker:// optional) or oci:DIR[:REF].
KEY is PATH, PATH:pass=PASSWORD, PATH:file=PASSWORD_FILE or provider:NAME[:PARAMS] (as skopeo).`;

import { UsageError } from './usage-error.js';
import { JsonLogger } from './serve.js';

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
  'erofs-compression': { type: 'string' },
  'erofs-check': { type: 'string' },
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

const EROFS_FLAGS = ['erofs-compression', 'erofs-check'] as const;
const LIMIT_FLAGS = ['max-unpacked-bytes-per-layer', 'max-unpacked-bytes-per-image', 'max-entries-per-layer', 'max-path-bytes'] as const;

/** Which flags each command takes; anything else is a usage error, not silently ignored. */
const COMMAND_FLAGS: Readonly<Record<string, readonly (keyof Flags)[]>> = {
  pull: ['work-dir', 'config', 'creds', 'auth-file', 'platform', 'insecure-registry', 'plain-http', 'registries-conf', 'ca-file', 'decryption-key', 'policy', 'registries-d', 'snapshotter', ...EROFS_FLAGS, 'max-concurrent-layers', ...LIMIT_FLAGS, 'json', 'quiet'],
  verify: ['work-dir', 'config', 'creds', 'auth-file', 'platform', 'insecure-registry', 'plain-http', 'registries-conf', 'ca-file', 'policy', 'registries-d', 'json', 'quiet'],
  serve: ['work-dir', 'config', 'creds', 'auth-file', 'platform', 'insecure-registry', 'plain-http', 'registries-conf', 'ca-file', 'decryption-key', 'policy', 'registries-d',
    'snapshotter', ...EROFS_FLAGS, 'max-concurrent-layers', ...LIMIT_FLAGS, 'cdh-ttrpc', 'cdh-grpc', 'cri', 'log-level',
    'socket-group', 'tls-cert', 'tls-key', 'tls-client-ca', 'bundle-root'],
  list: ['work-dir', 'config', 'json', 'quiet'],
  inspect: ['work-dir', 'config', 'json', 'quiet'],
  rm: ['work-dir', 'config', 'json', 'quiet'],
  gc: ['work-dir', 'config', 'json', 'quiet'],
  df: ['work-dir', 'config', 'json', 'quiet'],
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
  const file = flags.config ? await loadConfigFile(flags.config, (m) => logger.log('warn', 'config', { message: m })) : {};
  let maxConcurrentLayers: number | undefined;
  if (flags['max-concurrent-layers'] !== undefined) {
    maxConcurrentLayers = Number(flags['max-concurrent-layers']);
    if (!Number.isInteger(maxConcurrentLayers) || maxConcurrentLayers < 1 || maxConcurrentLayers > 64) throw new UsageError('--max-concurrent-layers takes an integer from 1 to 64');
  }
  const snapshotter = flags.snapshotter;
  if (snapshotter !== undefined && snapshotter !== 'overlay' && snapshotter !== 'copy' && snapshotter !== 'erofs') throw new UsageError('--snapshotter takes overlay, copy or erofs');
  const compression = flags['erofs-compression'];
  if (compression !== undefined && compression !== 'lz4' && compression !== 'lz4hc') throw new UsageError('--erofs-compression takes lz4 or lz4hc');
  const check = flags['erofs-check'];
  if (check !== undefined && check !== 'none' && check !== 'sha256' && check !== 'verity') throw new UsageError('--erofs-check takes none, sha256 or verity');
  const platform = flags.platform ?? file.platform;
  if (platform !== undefined) Platform.parse(platform);
  const limits: ConfiguredLimits = {};
  for (const key of LIMIT_KEYS) {
    const flag = LIMIT_NAMES[key].replaceAll('_', '-') as (typeof LIMIT_FLAGS)[number];
    const value = flags[flag];
    if (value !== undefined) limits[key] = parseLimit(key, value, (m) => new UsageError(`--${flag}: ${m}`));
  }
  return resolveSettings(file, {
    workDir: flags['work-dir'],
    maxConcurrentLayers,
    snapshotter,
    erofs: { compression, check },
    platform: flags.platform,
    insecureRegistries: flags['insecure-registry'],
    plainHttpRegistries: flags['plain-http'],
    caFiles: flags['ca-file'],
    decryptionKeys: flags['decryption-key'],
    authFile: flags['auth-file'],
    policyUri: flags.policy,
    registriesDDirs: flags['registries-d'],
    registriesConfUri: flags['registries-conf'],
    limits,
  });
}

function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
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
  // One path for every command: the same service the library hands out.
  const service = await openImageService({ settings, logger, credentials });

  switch (command) {
    case 'serve': {
      const stop = new Promise<void>((resolve) => {
        process.once('SIGTERM', () => resolve());
        process.once('SIGINT', () => resolve());
      });
      const handle = await service.serve({
        cdhTtrpc: flags['cdh-ttrpc'], cdhGrpc: flags['cdh-grpc'], cri: flags.cri, socketGroup: flags['socket-group'],
        tlsCert: flags['tls-cert'], tlsKey: flags['tls-key'], tlsClientCa: flags['tls-client-ca'], bundleRoots: flags['bundle-root'],
      });
      try {
        await stop;
      } finally {
        await handle.close();
      }
      return;
    }
    case 'pull': {
      const [image, bundle] = positional as [string, string];
      const controller = new AbortController();
      const onSignal = (): void => controller.abort(new ImageTsError('INTERNAL', 'interrupted'));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const progress = !json && !flags.quiet && process.stderr.isTTY ? new ProgressRenderer(process.stderr) : undefined;
      try {
        const result = await service.pullDetailed(image, bundle, { signal: controller.signal, onProgress: progress?.listener });
        progress?.finish();
        const fetched = result.layers.filter((l) => l.fetched).length;
        print(json, pulledBundle(result), flags.quiet ? result.manifestDigest : [
          `pulled ${result.reference}`,
          `  manifest ${result.manifestDigest}`,
          `  config   ${result.configDigest}`,
          `  layers   ${result.layers.length} (${fetched} fetched, ${result.layers.length - fetched} from the store)`,
          `  bundle   ${result.bundle} (${result.snapshotter})`,
        ].join('\n'));
      } finally {
        progress?.finish();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      return;
    }
    case 'verify': {
      const image = positional[0]!;
      const r = await service.verify(image);
      const v = r.verdict;
      print(json, r, flags.quiet ? (r.refusal ? 'refused' : 'allowed') : [
        `image     ${r.reference}`,
        `manifest  ${r.manifestDigest}${r.indexDigest ? ` (index ${r.indexDigest})` : ''}`,
        `encrypted ${r.encrypted ? 'yes' : 'no'}`,
        v ? `policy    scope ${JSON.stringify(v.scope)}` : 'policy    none configured',
        ...(v?.requirements ?? []).map((q) => `  ${q.requirement}: ${q.allowed ? 'accepted' : `denied (${q.code ?? 'POLICY_DENIED'}${q.checks?.length ? `: ${q.checks.join(', ')}` : ''})`}: ${q.reason}`),
        `result    ${r.refusal ? 'refused' : 'allowed'}`,
      ].join('\n'));
      // The report is on stdout; the refusal is the one stderr line and the exit status, as for pull.
      if (r.refusal) throw new ImageTsError(r.refusal.code, r.refusal.message);
      return;
    }
    case 'list': {
      const images = await service.list();
      print(json, images, images.length === 0 ? 'no images' : images.map((i) =>
        `${i.names.join(', ')}\t${i.manifestDigest.slice(0, 19)}\t${i.platform}\t${humanSize(i.size)}\t${humanSize(i.storedBytes)} stored`).join('\n'));
      return;
    }
    case 'inspect': {
      const info = await service.inspect(positional[0]!);
      print(json, info, [
        `names     ${info.image.names.join(', ')}`,
        `manifest  ${info.image.manifestDigest} (${info.image.mediaType})`,
        ...(info.image.indexDigest ? [`index     ${info.image.indexDigest}`] : []),
        `config    ${info.image.configDigest}`,
        `platform  ${info.image.platform}`,
        `pulled    ${info.image.pulledAt}`,
        `layers:`,
        ...info.image.layers.map((l, i) => {
          const stored = info.layers[i]?.stored;
          return `  ${l.digest}  ${l.mediaType}  ${humanSize(l.size)}  stored=${stored ? `${humanSize(stored.bytes)} (${stored.format})` : 'unknown'}  refs=${info.layers[i]?.refs ?? 0}${l.encryption ? `  encrypted: ${l.encryption.join(', ')}` : ''}`;
        }),
        `bundles:   ${info.bundles.length ? info.bundles.join(', ') : 'none'}`,
      ].join('\n'));
      return;
    }
    case 'rm': {
      const removed = await service.remove(positional[0]!);
      print(json, { removed: removed.manifestDigest }, `removed ${positional[0]} (${removed.manifestDigest})`);
      return;
    }
    case 'gc': {
      const r = await service.gc();
      print(json, r, `removed ${r.removedLayers.length} layers (${humanSize(r.freedBytes)}), ${r.staleStaging} stale staging dirs`);
      return;
    }
    case 'df': {
      const u = await service.df();
      print(json, u, [
        'FORMAT     LAYERS  BYTES',
        ...(['directory', 'erofs'] as const).map((f) => `${f.padEnd(10)} ${String(u.formats[f].layers).padStart(6)}  ${humanSize(u.formats[f].bytes)}`),
        `${'total'.padEnd(10)} ${String(u.layers).padStart(6)}  ${humanSize(u.bytes)} (${humanSize(u.reclaimableBytes)} reclaimable by gc)`,
      ].join('\n'));
      return;
    }
    case 'bundle': {
      const path = resolve(positional[0]!);
      await service.removeBundle(path);
      print(json, { removed: path }, `removed bundle ${path}`);
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
