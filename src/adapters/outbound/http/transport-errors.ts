import { ImageTsError, NetworkError } from '../../../domain/errors.js';

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
  'EPROTO',
]);

/** Failures worth another attempt: the connection, not the request, went wrong. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

function codeOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function isTlsCode(code: string): boolean {
  return TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code.startsWith('CERT_');
}

export function isTransientError(err: unknown): boolean {
  if (err instanceof ImageTsError) return false;
  const code = codeOf(err);
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** A transport failure as a typed, one-line error that names the host and never carries a stack to the user. */
export function transportError(err: unknown, host: string): ImageTsError {
  if (err instanceof ImageTsError) return err;
  const code = codeOf(err) ?? 'unknown error';
  if (isTlsCode(code)) {
    return new ImageTsError('TLS', `TLS connection to ${host} failed: ${code}`, { cause: err });
  }
  return new NetworkError(`cannot reach ${host}: ${code}`, { cause: err });
}

/** What an aborted operation throws: the abort reason when it is already typed. */
export function abortError(signal: AbortSignal): ImageTsError {
  const reason: unknown = signal.reason;
  if (reason instanceof ImageTsError) return reason;
  return new ImageTsError('INTERNAL', 'operation aborted', { cause: reason });
}

/**
 * Exponential backoff with jitter: attempt n waits between half and all of
 * `base * 2^n`, capped, so clients that failed together do not retry together.
 */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
