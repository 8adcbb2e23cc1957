import type { RpcHandler, RpcServices } from '../../outbound/rpc/rpc.js';

/**
 * At most `max` calls run at once across every service and endpoint it
 * wraps; the rest wait their turn in order. A waiting call leaves the queue
 * when its signal aborts (its deadline, which every call has, or its caller
 * going away), so a flood costs queue slots, not pulls.
 */
export class CallLimit {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly max: number) {}

  wrap(services: RpcServices): RpcServices {
    const out: Record<string, Record<string, RpcHandler>> = {};
    for (const [service, methods] of Object.entries(services)) {
      out[service] = {};
      for (const [method, handler] of Object.entries(methods)) {
        out[service][method] = async (payload, ctx) => {
          await this.acquire(ctx.signal);
          try {
            return await handler(payload, ctx);
          } finally {
            this.release();
          }
        };
      }
    }
    return out;
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }

  private acquire(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.running < this.max) {
      this.running++;
      return Promise.resolve();
    }
    const waiting = this.waiting;
    return new Promise<void>((resolve, reject) => {
      const turn = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = waiting.indexOf(turn);
        if (i >= 0) waiting.splice(i, 1);
        reject(signal.reason);
      };
      waiting.push(turn);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
