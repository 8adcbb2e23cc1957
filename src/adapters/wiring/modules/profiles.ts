import { ContainerModule } from 'inversify';
import { totalmem } from 'node:os';
import { ConfigFileError } from '../../../domain/errors.js';
import type { Credentials } from '../../../ports/image-source/image-source.js';
import type { Logger } from '../../../ports/observability/logger.js';
import { AA_DEFAULT_TTRPC } from '../../outbound/keys/attestation/aa-client.js';
import { CDH_DEFAULT_TTRPC } from '../../outbound/keys/brokers/cdh-key-broker.js';
import { OFFLINE_FS_DEFAULT_FILES } from '../../outbound/keys/brokers/offline-fs-key-broker.js';
import type { KeyBrokerSettings, RpcEndpoint, Settings } from '../settings-file.js';
import { caPems } from '../keys.js';
import { defaultLimits, resolveLimits } from '../limits.js';
import { Tokens } from '../tokens.js';
import { aaGrpc, aaTtrpc } from './attestation-agents.js';
import { cdhKeyBroker, kbsKeyBroker, noKeyBroker, offlineFsKeyBroker } from './key-brokers.js';
import { autoDecompressor, nativeDecompressor, ociLayoutSource, registrySource } from './sources.js';
import { fsBundles, fsStore } from './storage.js';
import { useCases } from './use-cases.js';
import { LoggerToken } from '../port-tokens.js';

export interface RuntimeContext {
  readonly settings: Settings;
  readonly logger: Logger;
  /** Default credentials, e.g. from --creds. Never logged. */
  readonly credentials?: Credentials | undefined;
}

/** What a deployment implies when the config file does not say. */
interface ProfileDefaults {
  readonly broker?: KeyBrokerSettings | undefined;
  readonly attestationAgent?: RpcEndpoint | undefined;
  /** Refuses to start without a broker of this kind. */
  readonly requires?: KeyBrokerSettings['kind'] | undefined;
  /** The store lives in a guest's memory: unpack limits default to a share of it. */
  readonly guest?: boolean | undefined;
}

const DEFAULTS: Readonly<Record<string, ProfileDefaults>> = {
  /** The CLI on a host or guest: local keys, and a key broker only if the config names one. */
  standalone: {},
  /** In a Kata guest next to the Confidential Data Hub: keys through CDH, measurements to the AA, both over ttrpc. */
  'cdh-guest': {
    guest: true,
    broker: { kind: 'cdh', address: CDH_DEFAULT_TTRPC, transport: 'ttrpc' },
    attestationAgent: { address: AA_DEFAULT_TTRPC, transport: 'ttrpc' },
  },
  /** Straight to a Trustee KBS, attesting through the guest's AA (or the sample attester when asked). */
  'kbs-direct': { requires: 'kbs', guest: true },
  /** No network for keys: the offline-fs KBC's JSON files. */
  offline: { guest: true, broker: { kind: 'offline-fs', files: OFFLINE_FS_DEFAULT_FILES } },
};

export const PROFILE_NAMES = Object.keys(DEFAULTS);

function brokerModule(broker: KeyBrokerSettings | undefined): ContainerModule {
  if (!broker) return noKeyBroker();
  switch (broker.kind) {
    case 'kbs': return kbsKeyBroker(broker.url, broker.attester);
    case 'cdh': return cdhKeyBroker(broker.address, broker.transport);
    case 'offline-fs': return offlineFsKeyBroker(broker.files);
  }
}

/** The settings and what they decide once: the logger, limits and CA certificates. */
function settingsModule(settings: Settings, logger: Logger, guest: boolean): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(Tokens.Settings).toConstantValue(settings);
    bind(LoggerToken).toConstantValue(logger);
    bind(Tokens.Limits).toConstantValue(resolveLimits(settings.limits, defaultLimits(guest, totalmem())));
    bind(Tokens.CaPems).toDynamicValue(() => caPems(settings)).inSingletonScope();
  });
}

/**
 * A deployment profile as a list of modules, one per backend: the settings,
 * the use cases, image sources, the decompressor, the store and bundles, the
 * key broker and the Attestation Agent. The config file's key_broker and
 * attestation_agent win over the profile's defaults.
 */
export function profileModules(context: RuntimeContext): ContainerModule[] {
  const defaults = DEFAULTS[context.settings.profile];
  if (!defaults) throw new ConfigFileError(`unknown profile ${context.settings.profile}; known: ${PROFILE_NAMES.join(', ')}`);
  const settings: Settings = {
    ...context.settings,
    keyBroker: context.settings.keyBroker ?? defaults.broker,
    attestationAgent: context.settings.attestationAgent ?? defaults.attestationAgent,
  };
  if (defaults.requires && settings.keyBroker?.kind !== defaults.requires) {
    throw new ConfigFileError(`profile ${settings.profile} needs key_broker {"kind": "${defaults.requires}", ...} in the config file`);
  }
  const aa = settings.attestationAgent;
  return [
    settingsModule(settings, context.logger, defaults.guest === true),
    useCases(),
    registrySource(settings, context.credentials),
    ociLayoutSource(),
    settings.decompressor === 'native' ? nativeDecompressor() : autoDecompressor(),
    fsStore(settings.workDir, settings.erofs),
    fsBundles(settings.workDir, settings.erofs),
    brokerModule(settings.keyBroker),
    ...(aa ? [aa.transport === 'ttrpc' ? aaTtrpc(aa.address) : aaGrpc(aa.address)] : []),
  ];
}
