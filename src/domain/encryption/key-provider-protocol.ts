import { KeyBrokerUnavailableError } from '../errors.js';
import { decodeBase64 } from './base64.js';
import { decryptParameters, type DecryptConfig } from './decrypt-config.js';
import { isObject } from '../image/json-fields.js';

/**
 * The ocicrypt key-provider protocol: JSON carried by the cmd, gRPC and ttrpc
 * transports alike. Both parameter objects are always sent, since CDH
 * requires them.
 */
export function keyUnwrapInput(annotation: Buffer, dc: DecryptConfig): Buffer {
  return Buffer.from(JSON.stringify({
    op: 'keyunwrap',
    keywrapparams: { ec: null, optsdata: null },
    keyunwrapparams: { dc: { Parameters: decryptParameters(dc) }, annotation: annotation.toString('base64') },
  }));
}

/** Go writes bytes as a base64 string, Rust as an array of integers; both are accepted. */
export function protocolBytes(v: unknown): Buffer | undefined {
  if (typeof v === 'string') return decodeBase64(v);
  if (Array.isArray(v) && v.every((n) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 255)) {
    return Buffer.from(v as number[]);
  }
  return undefined;
}

export function parseKeyUnwrapOutput(bytes: Buffer, provider: string): Buffer {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new KeyBrokerUnavailableError(`key provider ${provider} answered with something that is not JSON`);
  }
  const results = isObject(json) ? json['keyunwrapresults'] : undefined;
  const opts = isObject(results) ? protocolBytes(results['optsdata']) : undefined;
  if (!opts || opts.length === 0) throw new KeyBrokerUnavailableError(`key provider ${provider} answered without keyunwrapresults.optsdata`);
  return opts;
}

export interface KeyProviderRequest {
  readonly op: string;
  /** The wrapped item for keyunwrap. */
  readonly annotation: Buffer | undefined;
  readonly parameters: Readonly<Record<string, readonly Buffer[]>>;
}

/** Server side: what a client asked. Parameters are decoded but not interpreted. */
export function parseKeyProviderInput(bytes: Buffer): KeyProviderRequest | undefined {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(json) || typeof json['op'] !== 'string') return undefined;
  const unwrap = json['keyunwrapparams'];
  const annotation = isObject(unwrap) ? protocolBytes(unwrap['annotation']) : undefined;
  const parameters: Record<string, Buffer[]> = {};
  const dc = isObject(unwrap) ? unwrap['dc'] : undefined;
  const params = isObject(dc) ? dc['Parameters'] : undefined;
  if (isObject(params)) {
    for (const [k, list] of Object.entries(params)) {
      if (Array.isArray(list)) parameters[k] = list.map((x) => protocolBytes(x) ?? Buffer.alloc(0));
    }
  }
  return { op: json['op'], annotation, parameters };
}

/** Integer arrays: the one form both Go and Rust clients read. */
export function keyUnwrapOutput(optsdata: Buffer): Buffer {
  return Buffer.from(JSON.stringify({ keyunwrapresults: { optsdata: [...optsdata] } }));
}
