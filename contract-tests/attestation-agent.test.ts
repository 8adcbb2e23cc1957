import { AttestationAgentClient } from '../src/adapters/outbound/keys/attestation/aa-client.js';
import { SampleAttester } from '../src/adapters/outbound/keys/attestation/sample-attester.js';
import { GrpcTransport } from '../src/adapters/outbound/rpc/grpc.js';
import { TtrpcClient } from '../src/adapters/outbound/rpc/ttrpc.js';
import { startAttestationAgentService } from '../test/harness/key-services.js';
import { MemoryAttestationAgent } from '../test/mocks/memory-attestation-agent.js';
import { attestationAgentContract } from './attestation-agent.contract.js';

attestationAgentContract('in-memory mock', async () => {
  const agent = new MemoryAttestationAgent();
  return { agent, measurements: async () => agent.measurements, teardown: async () => undefined };
});

attestationAgentContract('sample attester', async () => {
  const agent = new SampleAttester();
  return { agent, measurements: async () => agent.measurements, teardown: async () => undefined };
});

for (const transport of ['ttrpc', 'grpc'] as const) {
  attestationAgentContract(`AA client over ${transport}`, async () => {
    const behind = new MemoryAttestationAgent();
    const service = await startAttestationAgentService(transport, behind);
    const rpc = transport === 'ttrpc' ? new TtrpcClient(service.target) : new GrpcTransport(service.target);
    return {
      agent: new AttestationAgentClient(rpc),
      measurements: async () => behind.measurements,
      teardown: async () => {
        rpc.close();
        await service.stop();
      },
    };
  });
}
