/**
 * Wrong on purpose: an Attestation Agent client that drops the caller's
 * signal, so a cancelled pull still gathers evidence and extends the
 * runtime measurements.
 */
import type { AttestationAgent, RuntimeMeasurement } from '../../src/ports/keys/attestation-agent.js';
import { MemoryAttestationAgent } from '../../test/mocks/memory-attestation-agent.js';
import { attestationAgentContract } from '../attestation-agent.contract.js';

class DeafAgent implements AttestationAgent {
  constructor(private readonly inner: AttestationAgent) {}
  getTeeType(): Promise<string> {
    return this.inner.getTeeType();
  }
  getEvidence(runtimeData: Buffer): Promise<Buffer> {
    return this.inner.getEvidence(runtimeData);
  }
  getToken(tokenType: string): Promise<Buffer> {
    return this.inner.getToken(tokenType);
  }
  extendRuntimeMeasurement(event: RuntimeMeasurement): Promise<void> {
    return this.inner.extendRuntimeMeasurement(event);
  }
}

attestationAgentContract('wrong: an agent that ignores its signal', async () => {
  const behind = new MemoryAttestationAgent();
  return { agent: new DeafAgent(behind), measurements: async () => behind.measurements, teardown: async () => undefined };
});
