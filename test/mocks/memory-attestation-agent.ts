import type { AttestationAgent, RuntimeMeasurement } from '../../src/ports/keys/attestation-agent.js';

/** Records what it is asked; evidence is the sample TEE's JSON. */
export class MemoryAttestationAgent implements AttestationAgent {
  readonly measurements: RuntimeMeasurement[] = [];
  fail: Error | undefined;

  async getTeeType(): Promise<string> {
    return 'sample';
  }
  async getEvidence(runtimeData: Buffer): Promise<Buffer> {
    if (this.fail) throw this.fail;
    return Buffer.from(JSON.stringify({ svn: '1', report_data: runtimeData.toString('base64') }));
  }
  async getToken(tokenType: string): Promise<Buffer> {
    if (this.fail) throw this.fail;
    return Buffer.from(JSON.stringify({ token: `mock-${tokenType}` }));
  }
  async extendRuntimeMeasurement(event: RuntimeMeasurement): Promise<void> {
    if (this.fail) throw this.fail;
    this.measurements.push(event);
  }
}
