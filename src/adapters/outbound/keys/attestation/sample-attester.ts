import { AttestationFailedError } from '../../../../domain/errors.js';
import type { AttestationAgent, RuntimeMeasurement } from '../../../../ports/keys/attestation-agent.js';
import type { Logger } from '../../../../ports/observability/logger.js';
import { silentLogger } from '../../silent-logger.js';

/**
 * The KBS protocol's `sample` TEE, for machines without confidential hardware
 * (development, CI, a KBS whose policy admits sample evidence). It proves
 * nothing: the evidence is plain JSON anyone can write, so a KBS with the
 * default policy refuses to release resources to it. Runtime measurements
 * are only remembered in memory; no register is extended.
 */
export class SampleAttester implements AttestationAgent {
  private readonly recorded: RuntimeMeasurement[] = [];

  constructor(private readonly logger: Logger = silentLogger) {}

  /** What extendRuntimeMeasurement was given, oldest first. */
  get measurements(): readonly RuntimeMeasurement[] {
    return this.recorded;
  }

  async getTeeType(signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    return 'sample';
  }

  async getEvidence(runtimeData: Buffer, signal?: AbortSignal): Promise<Buffer> {
    signal?.throwIfAborted();
    // Same shape as guest-components' sample attester: the sample verifier compares report_data byte for byte.
    return Buffer.from(JSON.stringify({ svn: '1', report_data: runtimeData.toString('base64') }));
  }

  async getToken(tokenType: string, signal?: AbortSignal): Promise<Buffer> {
    signal?.throwIfAborted();
    throw new AttestationFailedError(
      `the sample attester cannot get a ${JSON.stringify(tokenType)} token: not supported without an attestation agent; use a KBS key broker, which attests itself`,
    );
  }

  async extendRuntimeMeasurement(event: RuntimeMeasurement, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.recorded.push({ ...event });
    this.logger.log('debug', 'attestation.sample.measurement', {
      domain: event.domain,
      operation: event.operation,
      content: event.content,
      register: event.registerIndex,
    });
  }
}
