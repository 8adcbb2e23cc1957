import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetworkError } from '../../../domain/errors.js';
import { abortError, backoffMs, isTransientError, transportError } from '../http/transport-errors.js';

/** One response body for a blob, and how many leading bytes to drop (a server that ignored Range). */
export interface BlobBody {
  readonly body: Readable;
  readonly skip: number;
}

export interface ResumeOptions {
  readonly host: string;
  /** How many times a broken body may be resumed. */
  readonly retries: number;
  /** The descriptor's size: a body that ends cleanly before it is treated as broken. */
  readonly size: number | undefined;
  readonly signal: AbortSignal | undefined;
  /** Opens the blob again from `offset` (a `Range` request). */
  reopen(offset: number): Promise<BlobBody>;
  onResume(offset: number, attempt: number, reason: string): void;
}

/**
 * Streams a blob, resuming with `Range: bytes=<received>-` when the connection breaks.
 * Built on an async generator so backpressure and destroy() reach the HTTP body.
 */
export function resumingStream(first: BlobBody, o: ResumeOptions): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    let current = first;
    let received = 0;
    for (let resumes = 0; ; resumes++) {
      let skip = current.skip;
      let reason: string;
      try {
        for await (const raw of current.body) {
          let chunk = raw as Buffer;
          if (skip > 0) {
            if (chunk.length <= skip) {
              skip -= chunk.length;
              continue;
            }
            chunk = chunk.subarray(skip);
            skip = 0;
          }
          received += chunk.length;
          yield chunk;
        }
        if (o.size === undefined || received >= o.size) return;
        reason = `body ended after ${received} of ${o.size} bytes`;
      } catch (err) {
        current.body.destroy();
        if (o.signal?.aborted) throw abortError(o.signal);
        // Every byte is here and only the connection's end went wrong: the digest check decides.
        if (o.size !== undefined && received >= o.size) return;
        if (!isTransientError(err) || resumes >= o.retries) throw transportError(err, o.host);
        reason = transportError(err, o.host).message;
      }
      // A body that keeps ending short is a transport failure, the same code as a dropped connection.
      if (resumes >= o.retries) throw new NetworkError(`${o.host}: ${reason}, after ${resumes} resumes`);
      o.onResume(received, resumes + 1, reason);
      try {
        await sleep(backoffMs(resumes, 250, 2000), undefined, { signal: o.signal });
      } catch {
        throw abortError(o.signal ?? AbortSignal.abort());
      }
      current = await o.reopen(received);
    }
  }

  const stream = Readable.from(chunks(), { objectMode: false });
  const signal = o.signal;
  if (signal) {
    const onAbort = (): void => {
      stream.destroy(abortError(signal));
    };
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  return stream;
}
