import { ImageTsError, asImageTsError } from '../errors.js';

export interface FirstSuccessOptions<C, T> {
  /** Names a candidate in the error message. */
  name(candidate: C): string;
  /** Must undo its own partial work (close what it opened) before it throws. */
  attempt(candidate: C): Promise<T>;
  /** Heads the message when several candidates failed. */
  readonly summary: string;
  readonly signal?: AbortSignal | undefined;
  onMiss?(candidate: C, error: ImageTsError): void;
}

/**
 * Tries candidates in order (mirrors then the primary, or the registries a
 * short name may live in) and returns the first success. When all fail,
 * the last one's code stands and the message names every candidate and its
 * error. An abort stops the search at once.
 */
export async function firstSuccess<C, T>(candidates: readonly C[], o: FirstSuccessOptions<C, T>): Promise<T> {
  const failures: ImageTsError[] = [];
  for (const candidate of candidates) {
    o.signal?.throwIfAborted();
    try {
      return await o.attempt(candidate);
    } catch (err) {
      if (o.signal?.aborted) throw err;
      const e = asImageTsError(err);
      o.onMiss?.(candidate, e);
      failures.push(new ImageTsError(e.code, `${o.name(candidate)}: ${e.message}`));
    }
  }
  const last = failures[failures.length - 1];
  if (!last) throw new ImageTsError('INTERNAL', 'nothing to try');
  if (failures.length === 1) throw last;
  throw new ImageTsError(last.code, `${o.summary}: ${failures.map((f) => f.message).join('; ')}`);
}
