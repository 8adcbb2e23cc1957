/**
 * Runs a TarUnpacker in a worker thread. Protocol with worker-unpacker.ts:
 * in  {type:'chunk', start, length} (bytes in the shared ring) | {type:'end'}
 * out {type:'ack', bytes} (those bytes may be reused) | {type:'degraded', what, entry} | {type:'done', stats} | {type:'error', code, message}
 */
import { parentPort, workerData } from 'node:worker_threads';
import { asImageTsError } from '../../../domain/errors.js';
import type { EntryLimits } from '../../../domain/layer/unpack-limits.js';
import type { WhiteoutFormat } from '../../../ports/layer/layer-store.js';
import { TarUnpacker, type UnpackStats } from './tar-unpacker.js';

export interface UnpackWorkerData {
  readonly root: string;
  readonly whiteoutFormat: WhiteoutFormat;
  readonly privileged: boolean;
  readonly limits?: EntryLimits | undefined;
  /** The ring the main thread copies layer bytes into; a chunk's bytes are ours until we ack them. */
  readonly ring: SharedArrayBuffer;
}

export type WorkerInbound = { type: 'chunk'; start: number; length: number } | { type: 'end' };
export type WorkerOutbound =
  | { type: 'ack'; bytes: number }
  | { type: 'degraded'; what: string; entry: string }
  | { type: 'done'; stats: UnpackStats }
  | { type: 'error'; code: string; message: string };

const port = parentPort;
if (port) {
  const data = workerData as UnpackWorkerData;
  const post = (m: WorkerOutbound): void => port.postMessage(m);
  let failed = false;
  const unpacker = new TarUnpacker({
    root: data.root,
    whiteoutFormat: data.whiteoutFormat,
    privileged: data.privileged,
    limits: data.limits,
    onDegraded: (what, entry) => post({ type: 'degraded', what, entry }),
  });
  unpacker.on('error', (err: unknown) => {
    if (failed) return;
    failed = true;
    const e = asImageTsError(err);
    post({ type: 'error', code: e.code, message: e.message });
  });
  port.on('message', (m: WorkerInbound) => {
    if (failed) return;
    if (m.type === 'chunk') {
      // The unpacker keeps nothing of a chunk past its write callback (it copies what it must hold).
      unpacker.write(Buffer.from(data.ring, m.start, m.length), () => post({ type: 'ack', bytes: m.length }));
    } else {
      unpacker.end(() => {
        if (!failed) post({ type: 'done', stats: unpacker.stats });
      });
    }
  });
}
