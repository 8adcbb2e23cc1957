/** A counting semaphore: at most `limit` tasks run at once, the rest wait in order. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer');
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** Runs one task per key at a time; callers that arrive while it runs share its result. */
export class SingleFlight<T> {
  private readonly flights = new Map<string, Promise<T>>();

  has(key: string): boolean {
    return this.flights.has(key);
  }

  do(key: string, task: () => Promise<T>): { promise: Promise<T>; shared: boolean } {
    const existing = this.flights.get(key);
    if (existing) return { promise: existing, shared: true };
    const promise = task().finally(() => this.flights.delete(key));
    this.flights.set(key, promise);
    return { promise, shared: false };
  }
}
