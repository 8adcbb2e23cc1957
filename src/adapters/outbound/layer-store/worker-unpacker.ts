import { availableParallelism } from 'node:os';
import { Writable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { ImageTsError, type ErrorCode } from '../../../domain/errors.js';
import { lazyRequire } from '../lazy.js';
import { ChunkGc } from './memory-hygiene.js';
import type { Degradation, UnpackStats } from './tar-unpacker.js';
import type { UnpackWorkerData, WorkerInbound, WorkerOutbound } from './unpack-worker.js';

/**
 * Bytes handed to the worker and not yet unpacked; more waits for acks. They
 * sit in one ring shared with the worker and reused from start to end, so
 * moving a layer across costs one copy per byte and no new memory: fresh
 * buffers per chunk cost page faults (expensive on this VM), transfers and
 * garbage collections in both threads (bench/NOTES.md).
 */
const RING = 2 * 1024 * 1024;
/**
 * Bytes copied in before the worker is told. Codec pipes deliver chunks of a
 * few KB, and a message per chunk cost half a second of the main thread per
 * GB; the rest goes at the end, or as soon as the ring is full.
 */
const BATCH = 256 * 1024;

const workerThreads = lazyRequire<typeof import('node:worker_threads')>('node:worker_threads');

/**
 * The worker's script: beside this module when running from source (tsx)
 * or from the compiled library (dist/lib), beside the bundle
 * (dist/unpack-worker.mjs) when running the built CLI.
 */
function startWorker(data: UnpackWorkerData): Worker {
  const { Worker } = workerThreads();
  const here = import.meta.url;
  if (here.endsWith('/worker-unpacker.js')) return new Worker(new URL('./unpack-worker.js', here), { workerData: data });
  if (!here.endsWith('.ts')) return new Worker(new URL('./unpack-worker.mjs', here), { workerData: data });
  // From source (tests under tsx) the worker must register tsx's loader before importing TypeScript.
  const entry = JSON.stringify(new URL('./unpack-worker.ts', here).href);
  return new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${entry}); });`, { eval: true, workerData: data });
}

/**
 * At most one unpack worker per core: more only add isolates (25-40 MB each)
 * to memory without adding speed. A layer past the limit waits for a slot,
 * and its download waits with it through backpressure.
 */
class Slots {
  private free: number;
  private readonly queue: (() => void)[] = [];

  constructor(count: number) {
    this.free = Math.max(1, count);
  }

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.queue.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) next();
      else this.free++;
    };
  }
}

const slots = new Slots(availableParallelism());

/**
 * A TarUnpacker on another thread. The main thread keeps the network, the
 * digests and the decompressor's pipes moving while the worker makes files,
 * so on two cores the syscalls of unpacking no longer stall the download.
 * Chunks are copied once, into the ring; the worker reads them in place.
 */
export class WorkerTarUnpacker extends Writable {
  private worker: Worker | undefined;
  private starting: Promise<Worker> | undefined;
  private readonly ring = new SharedArrayBuffer(RING);
  private readonly view = new Uint8Array(this.ring);
  /** Where the next byte goes in the ring. */
  private head = 0;
  /** Bytes in the ring the worker has not acked, including those it has not been told of yet. */
  private inFlight = 0;
  /** Where the bytes not yet announced to the worker start, and how many there are. */
  private unsentStart = 0;
  private unsent = 0;
  /** A chunk waiting for room in the ring: its rest and the callback to call once all of it is in. */
  private waiting: { chunk: Buffer; cb: (err?: Error | null) => void } | undefined;
  private finishing: ((err?: Error | null) => void) | undefined;
  private result: UnpackStats | undefined;
  private failure: Error | undefined;
  private readonly hygiene = new ChunkGc();

  constructor(private readonly data: Omit<UnpackWorkerData, 'ring'>, private readonly onDegraded?: (what: Degradation, entry: string) => void) {
    super({ highWaterMark: 1024 * 1024 });
  }

  /** Starts the worker once a slot is free; the slot returns when the thread exits. */
  private start(): Promise<Worker> {
    this.starting ??= slots.acquire().then((release) => {
      if (this.destroyed || this.failure) {
        release();
        throw this.failure ?? new ImageTsError('INTERNAL', 'unpack cancelled');
      }
      const worker = startWorker({ ...this.data, ring: this.ring });
      worker.once('exit', (code) => {
        release();
        if (!this.result && !this.failure && code !== 0) this.fail(new ImageTsError('INTERNAL', `unpack worker exited with ${code}`));
      });
      worker.on('message', (m: WorkerOutbound) => this.onMessage(m));
      worker.on('error', (err) => this.fail(new ImageTsError('INTERNAL', `unpack worker: ${err.message}`)));
      this.worker = worker;
      return worker;
    });
    return this.starting;
  }

  get stats(): UnpackStats {
    return this.result ?? { entries: 0, bytes: 0, streamBytes: 0 };
  }

  private onMessage(m: WorkerOutbound): void {
    switch (m.type) {
      case 'ack': {
        this.inFlight -= m.bytes;
        const waiting = this.waiting;
        if (waiting) {
          this.waiting = undefined;
          this.send(waiting.chunk, waiting.cb);
        }
        return;
      }
      case 'degraded':
        this.onDegraded?.(m.what as Degradation, m.entry);
        return;
      case 'done': {
        this.result = m.stats;
        const done = this.finishing;
        this.finishing = undefined;
        void this.worker?.terminate();
        done?.();
        return;
      }
      case 'error':
        this.fail(new ImageTsError(m.code as ErrorCode, m.message));
        return;
    }
  }

  /** The first failure wins; it goes to whichever callback is pending, else it destroys the stream. */
  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    void this.worker?.terminate();
    const pending = this.finishing ?? this.waiting?.cb;
    this.finishing = undefined;
    this.waiting = undefined;
    if (pending) pending(err);
    else this.destroy(err);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.failure) {
      cb(this.failure);
      return;
    }
    if (!this.worker) {
      this.start().then(() => this._write(chunk, _enc, cb), (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))));
      return;
    }
    this.hygiene.seen(chunk.length);
    this.send(chunk, cb);
  }

  /** Copies as much of the chunk as the ring has room for, in order; the rest waits for acks. */
  private send(chunk: Buffer, cb: (err?: Error | null) => void): void {
    const worker = this.worker!;
    let off = 0;
    while (off < chunk.length && this.inFlight < RING) {
      // Up to the ring's end, then around from the start: bytes are acked in the order they were sent.
      const n = Math.min(chunk.length - off, RING - this.inFlight, RING - this.head);
      this.view.set(chunk.subarray(off, off + n), this.head);
      this.head = (this.head + n) % RING;
      this.inFlight += n;
      this.unsent += n;
      off += n;
      // A message covers one contiguous stretch, so the ring's end sends one too.
      if (this.unsent >= BATCH || this.head === 0) this.announce(worker);
    }
    if (off < chunk.length) {
      this.announce(worker); // the ring is full: whatever is in it must reach the worker to be acked
      this.waiting = { chunk: chunk.subarray(off), cb };
    } else {
      cb();
    }
  }

  /** Tells the worker of the bytes copied in since the last message. */
  private announce(worker: Worker): void {
    if (this.unsent === 0) return;
    const message: WorkerInbound = { type: 'chunk', start: this.unsentStart, length: this.unsent };
    worker.postMessage(message);
    this.unsentStart = this.head;
    this.unsent = 0;
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.failure) {
      cb(this.failure);
      return;
    }
    this.start().then((worker) => {
      this.finishing = cb;
      this.announce(worker);
      const message: WorkerInbound = { type: 'end' };
      worker.postMessage(message);
    }, (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    void this.worker?.terminate();
    cb(err);
  }
}
