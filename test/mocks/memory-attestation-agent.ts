import type { AttestationAgent, RuntimeMeasurement } from '../../src/ports/keys/attestation-agent.js';

/** Records what it is asked; evidence is the sample TEE's JSON. */
export class MemoryAttestationAgent implements AttestationAgent {
  readonly measurements: RuntimeMeasurement[] = [];
  fail: Error | undefined;

  async getTeeType(signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    return 'sample';
  }
  async getEvidence(runtimeData: Buffer, signal?: AbortSignal): Promise<Buffer> {
    signal?.throwIfAborted();
    if (this.fail) throw this.fail;
    return Buffer.from(JSON.stringify({ svn: '1', report_data: runtimeData.toString('base64') }));
  }
  async getToken(tokenType: string, signal?: AbortSignal): Promise<Buffer> {
    signal?.throwIfAborted();
    if (this.fail) throw this.fail;
    return Buffer.from(JSON.stringify({ token: `mock-${tokenType}` }));
  }
  async extendRuntimeMeasurement(event: RuntimeMeasurement, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.fail) throw this.fail;
    this.measurements.push(event);
  }
}
