import type { Digest } from '../../domain/image/digest.js';
import type { Reference } from '../../domain/image/reference.js';
import { Policy } from '../../domain/policy/policy.js';
import type { Logger } from '../../ports/observability/logger.js';
import type { ResourceLoader } from '../../ports/resources/resource-loader.js';
import type { SimpleSignatureSource } from '../../ports/signatures/signature-source.js';
import { LookasideSignatureSource } from '../outbound/signatures/lookaside-source.js';
import { defaultRegistriesDDir, loadRegistriesD, mergeRegistriesD, parseRegistriesDFile, type RegistriesDConfig } from '../outbound/signatures/registries-d.js';
import type { Settings } from './image-config-file.js';

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

/** registries.d is read on the first signature lookup, not at start: most pulls never need it. */
export class ConfiguredLookaside implements SimpleSignatureSource {
  private source: Promise<LookasideSignatureSource> | undefined;

  constructor(private readonly settings: Settings, private readonly caPems: readonly string[], private readonly logger: Logger) {}

  async getSignatures(physical: Reference, manifestDigest: Digest, signal?: AbortSignal): Promise<Buffer[]> {
    this.source ??= this.make();
    return (await this.source).getSignatures(physical, manifestDigest, signal);
  }

  private async make(): Promise<LookasideSignatureSource> {
    const configured = this.settings.registriesD;
    let config: RegistriesDConfig;
    if (configured && 'inline' in configured) config = await parseRegistriesDFile(configured.inline, 'sigstore_config');
    else {
      const dirs = configured ? configured.dirs : [await defaultRegistriesDDir()];
      config = mergeRegistriesD(await Promise.all(dirs.map(async (dir) => ({ file: dir, config: await loadRegistriesD(dir) }))));
    }
    return new LookasideSignatureSource({ registriesD: config, caPems: this.caPems, logger: this.logger });
  }
}
