import { ContainerModule } from 'inversify';
import { ConfigFileError } from '../../../domain/errors.js';
import type { AttestationAgent } from '../../../ports/keys/attestation-agent.js';
import type { Logger } from '../../../ports/observability/logger.js';
import { CdhKeyBroker } from '../../outbound/keys/brokers/cdh-key-broker.js';
import { KbsKeyBroker } from '../../outbound/keys/brokers/kbs-key-broker.js';
import { OfflineFsKeyBroker } from '../../outbound/keys/brokers/offline-fs-key-broker.js';
import { SampleAttester } from '../../outbound/keys/attestation/sample-attester.js';
import { GrpcTransport } from '../../outbound/rpc/grpc.js';
import { TtrpcClient } from '../../outbound/rpc/ttrpc.js';
import { NoKeyBroker } from '../keys.js';
import { Tokens } from '../tokens.js';
import { AttestationAgentToken, KeyBrokerToken, LoggerToken } from '../port-tokens.js';

/**
 * One module per key-broker backend. Each binds KeyBrokerToken and nothing
 * else; every consumer (layer keys, the attestation-agent key provider,
 * kbs:// policies and registries.conf, CDH's GetResource) resolves it.
 */

/** A Trustee KBS over HTTP(S). Its evidence comes from the bound Attestation Agent, or from the sample attester when named. */
export function kbsKeyBroker(url: string, attester: 'aa' | 'sample'): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(KeyBrokerToken).toDynamicValue((ctx) => {
      const logger = ctx.get<Logger>(LoggerToken);
      const evidence = attester === 'sample' ? new SampleAttester(logger) : ctx.get<AttestationAgent>(AttestationAgentToken, { optional: true });
      if (!evidence) throw new ConfigFileError('key_broker kind kbs with attester "aa" needs attestation_agent.address');
      return new KbsKeyBroker({ url, extraCaPems: ctx.get<readonly string[]>(Tokens.CaPems), attester: evidence, logger });
    }).inSingletonScope();
  });
}

/** The Confidential Data Hub's GetResourceService, over ttrpc (`unix://`) or gRPC. */
export function cdhKeyBroker(address: string, transport: 'ttrpc' | 'grpc'): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(KeyBrokerToken).toDynamicValue(() => new CdhKeyBroker(transport === 'ttrpc' ? new TtrpcClient(address) : new GrpcTransport(address))).inSingletonScope();
  });
}

/** The offline-fs KBC's JSON files. */
export function offlineFsKeyBroker(files: readonly string[]): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(KeyBrokerToken).toDynamicValue((ctx) => new OfflineFsKeyBroker({ files, logger: ctx.get<Logger>(LoggerToken) })).inSingletonScope();
  });
}

/** None: a kbs:// key fails with a reason. */
export function noKeyBroker(): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(KeyBrokerToken).toConstantValue(new NoKeyBroker());
  });
}
