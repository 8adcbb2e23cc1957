import { ContainerModule } from 'inversify';
import type { Logger } from '../../../ports/observability/logger.js';
import { AttestationAgentClient } from '../../outbound/keys/attestation/aa-client.js';
import { SampleAttester } from '../../outbound/keys/attestation/sample-attester.js';
import { GrpcTransport } from '../../outbound/rpc/grpc.js';
import { TtrpcClient } from '../../outbound/rpc/ttrpc.js';
import { AttestationAgentToken, LoggerToken } from '../port-tokens.js';

/**
 * One module per Attestation Agent backend. The one instance bound here
 * serves both evidence (the KBS client's attester) and runtime measurements
 * (after every pull).
 */

export function aaTtrpc(address: string): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(AttestationAgentToken).toDynamicValue(() => new AttestationAgentClient(new TtrpcClient(address))).inSingletonScope();
  });
}

export function aaGrpc(address: string): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(AttestationAgentToken).toDynamicValue(() => new AttestationAgentClient(new GrpcTransport(address))).inSingletonScope();
  });
}

/** Evidence that proves nothing, for machines without a TEE; measurements are kept in memory. */
export function sampleAttestationAgent(): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(AttestationAgentToken).toDynamicValue((ctx) => new SampleAttester(ctx.get<Logger>(LoggerToken))).inSingletonScope();
  });
}
