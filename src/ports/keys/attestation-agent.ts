/** What a pull reports to the attestation agent after it succeeds. */
export interface RuntimeMeasurement {
  readonly domain: string;
  readonly operation: string;
  readonly content: string;
  readonly registerIndex?: number | undefined;
}

/**
 * The guest's Attestation Agent: hardware evidence bound to runtime data,
 * tokens, and runtime measurements. A real AA over gRPC, or the sample
 * attester for machines without a TEE.
 */
export interface AttestationAgent {
  /** `tdx`, `snp`, `sample`, ... as the KBS protocol names them. */
  getTeeType(signal?: AbortSignal): Promise<string>;
  /** TEE evidence whose report data is `runtimeData` (already hashed by the caller). */
  getEvidence(runtimeData: Buffer, signal?: AbortSignal): Promise<Buffer>;
  getToken(tokenType: string, signal?: AbortSignal): Promise<Buffer>;
  extendRuntimeMeasurement(event: RuntimeMeasurement, signal?: AbortSignal): Promise<void>;
}
