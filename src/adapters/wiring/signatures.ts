import type { Digest } from '../../domain/image/digest.js';
import type { Reference } from '../../domain/image/reference.js';
import { fileURLToPath } from 'node:url';
import { Policy } from '../../domain/policy/policy.js';
import { RegistriesConf } from '../../domain/registry/registries-conf.js';
import { loadRegistriesConf, parseRegistriesConf } from '../outbound/registry/registries-conf-file.js';
import type { Logger } from '../../ports/observability/logger.js';
import type { ResourceLoader } from '../../ports/resources/resource-loader.js';
import type { SimpleSignatureSource } from '../../ports/signatures/signature-source.js';
import { LookasideSignatureSource } from '../outbound/signatures/lookaside-source.js';
import { defaultRegistriesDDir, loadRegistriesD, mergeRegistriesD, parseRegistriesDFile, type RegistriesDConfig } from '../outbound/signatures/registries-d.js';
import type { Settings } from './settings-file.js';

/** The configured policy, read afresh for every pull (a kbs:// one through the loader's bounded cache). */
export function policyLoader(settings: Settings, resources: ResourceLoader): (signal?: AbortSignal) => Promise<Policy | undefined> {
  const configured = settings.policy;
  if (!configured) return async () => undefined;
  if ('inline' in configured) {
    const policy = Policy.parse(configured.inline);
    return async () => policy;
  }
  return async (signal) => Policy.parse(await resources.load(configured.uri, signal));
}

/**
 * registries.conf, read on first use and kept for the process: a path or
 * `file://` URI, a `kbs://` resource, or image-rs's inline object.
 */
export function registriesLoader(settings: Settings, resources: ResourceLoader, logger: Logger): (() => Promise<RegistriesConf | undefined>) | undefined {
  const configured = settings.registriesConf;
  if (!configured) return undefined;
  let loaded: Promise<RegistriesConf> | undefined;
  const load = async (): Promise<RegistriesConf> => {
    const conf = 'inline' in configured
      ? RegistriesConf.fromObject(configured.inline, 'registry_config')
      : configured.uri.startsWith('kbs:')
        ? await parseRegistriesConf((await resources.load(configured.uri)).toString('utf8'), configured.uri)
        : await loadRegistriesConf(configured.uri.startsWith('file://') ? fileURLToPath(configured.uri) : configured.uri);
    for (const warning of conf.warnings) logger.log('warn', 'registries-conf', { message: warning });
    return conf;
  };
  return () => {
    if (!loaded) {
      const attempt = load();
      // A failed load is retried on the next pull (a service may outlive a broken file).
      attempt.catch(() => {
        if (loaded === attempt) loaded = undefined;
      });
      loaded = attempt;
    }
    return loaded;
  };
}

/** registries.d is read on the first signature lookup, not at start: most pulls never need it. */
export class ConfiguredLookaside implements SimpleSignatureSource {
  private source: Promise<LookasideSignatureSource> | undefined;

  constructor(private readonly settings: Settings, private readonly caPems: readonly string[], private readonly logger: Logger) {}

  async getSignatures(physical: Reference, manifestDigest: Digest, signal?: AbortSignal): Promise<Buffer[]> {
    this.source ??= this.make();
    return (await this.source).getSignatures(physical, manifestDigest, signal);
  }

  async sigstoreAttachments(physical: Reference): Promise<boolean | undefined> {
    this.source ??= this.make();
    return (await this.source).sigstoreAttachments(physical);
  }

  private async make(): Promise<LookasideSignatureSource> {
    const configured = this.settings.registriesD;
    let config: RegistriesDConfig;
    if (configured && 'inline' in configured) config = await parseRegistriesDFile(configured.inline, 'sigstore_config');
    else {
      const dirs = configured ? configured.dirs : [await defaultRegistriesDDir()];
      config = mergeRegistriesD(await Promise.all(dirs.map(async (dir) => ({ file: dir, config: await loadRegistriesD(dir) }))));
    }
    return new LookasideSignatureSource({ registriesD: config, caPems: this.caPems, logger: this.logger, proxy: this.settings.proxy });
  }
}
