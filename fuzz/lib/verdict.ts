/**
 * How every harness judges a failure. Rejecting hostile bytes with an
 * ImageTsError that carries a stable code is the contract: that is a pass.
 * Anything else is a finding and is rethrown for Jazzer.js to report and
 * save: a TypeError or RangeError, a plain Error, a non-Error throw, and an
 * ImageTsError coded INTERNAL, which is what asImageTsError wraps an
 * unexpected error in, or coded IO around one of node's own ERR_* errors
 * (argument checks: asImageTsError takes any string code for an errno).
 * The cause is rethrown, so the report shows where.
 */
import { ImageTsError, type ErrorCode } from '../../src/domain/errors.js';

/** A broken invariant that is not an exception of the code under test. */
export class Finding extends Error {
  override readonly name = 'Finding';
}

/** Passes a typed rejection (one of `codes`, when given); rethrows anything else. */
export function expectRejection(err: unknown, codes?: readonly ErrorCode[]): void {
  if (err instanceof ImageTsError && err.code !== 'INTERNAL' && !nodeArgumentError(err.cause) && (!codes || codes.includes(err.code))) return;
  if (err instanceof ImageTsError && err.cause !== undefined) throw err.cause;
  throw err;
}

function nodeArgumentError(cause: unknown): boolean {
  const code = (cause as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && code.startsWith('ERR_');
}

/** Runs `fn`; a typed rejection gives undefined. */
export function attempt<T>(fn: () => T, codes?: readonly ErrorCode[]): T | undefined {
  try {
    return fn();
  } catch (err) {
    expectRejection(err, codes);
    return undefined;
  }
}

export async function attemptAsync<T>(fn: () => Promise<T>, codes?: readonly ErrorCode[]): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    expectRejection(err, codes);
    return undefined;
  }
}

/** Deterministic chunk boundaries from the input itself, so a saved crash replays the same splits. */
export function splits(data: Uint8Array, maxChunk: number): Uint8Array[] {
  let h = 0x811c9dc5;
  for (let i = 0; i < Math.min(data.length, 64); i++) h = Math.imul(h ^ data[i]!, 0x01000193);
  h ^= data.length;
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < data.length) {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
    const n = 1 + (h % maxChunk);
    out.push(data.subarray(off, off + n));
    off += n;
  }
  return out;
}
