import { appendFile, readFile } from 'node:fs/promises';
import { AttestationFailedError, type AttestationAgent, type RuntimeMeasurement } from 'image-ts';

/**
 * An Attestation Agent for a machine without a TEE that keeps its runtime
 * measurements as an event log, one JSON object per line. Its evidence is
 * the sample TEE's, which a Trustee KBS with the sample verifier accepts.
 */
export class JsonlAttestationAgent implements AttestationAgent {
  constructor(private readonly log: string) {}

  async getTeeType(signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    return 'sample';
  }

  async getEvidence(runtimeData: Buffer, signal?: AbortSignal): Promise<Buffer> {
    signal?.throwIfAborted();
    return Buffer.from(JSON.stringify({ svn: '1', report_data: runtimeData.toString('base64') }));
  }

  async getToken(tokenType: string, signal?: AbortSignal): Promise<Buffer> {
    signal?.throwIfAborted();
    throw new AttestationFailedError(`this agent issues no ${JSON.stringify(tokenType)} token`);
  }

  async extendRuntimeMeasurement(event: RuntimeMeasurement, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await appendFile(this.log, `${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
  }

  /** The log so far, oldest first. */
  async measurements(): Promise<RuntimeMeasurement[]> {
    const text = await readFile(this.log, 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as RuntimeMeasurement);
  }
}
