/**
 * The unpacker alone: one uncompressed layer tar, read from memory and fed to
 * TarUnpacker on the main thread (no worker, no codec, no digest), into a
 * fresh directory each round. Measures the per-entry cost of the hot path.
 *
 *   node --import tsx bench/unpack-tar.ts LAYER.tar [--rounds N] [--dir DIR]
 *
 * DIR (default /dev/shm) should be a tmpfs so the disk does not set the pace.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { TarUnpacker } from '../src/adapters/outbound/layer-store/tar-unpacker.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string', default: '7' }, dir: { type: 'string', default: '/dev/shm' } } });
const file = positionals[0];
if (!file) throw new Error('usage: bench/unpack-tar.ts LAYER.tar [--rounds N] [--dir DIR]');
const bytes = readFileSync(file);
/** 256 KB pieces, the size the worker's ring hands out. */
const CHUNK = 256 * 1024;
const rounds = Number(values.rounds);
const times: number[] = [];
/** CPU seconds (user + system) of this process per round: steadier than wall time on a shared machine. */
const cpu: number[] = [];
let entries = 0;
for (let r = 0; r < rounds; r++) {
  const root = mkdtempSync(join(values.dir, 'image-ts-bench-unpack-'));
  try {
    const unpacker = new TarUnpacker({ root, whiteoutFormat: 'overlay', privileged: process.getuid?.() === 0 });
    const chunks = function* (): Generator<Buffer> {
      for (let i = 0; i < bytes.length; i += CHUNK) yield bytes.subarray(i, i + CHUNK);
    };
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    await pipeline(Readable.from(chunks()), unpacker);
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
    entries = unpacker.stats.entries;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
const sorted = [...times].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)]!;
const cpuSorted = [...cpu].sort((a, b) => a - b);
process.stdout.write(
  `${file}: ${entries} entries, ${(bytes.length / 1e6).toFixed(0)} MB; wall median ${median.toFixed(3)} s ` +
    `(min ${sorted[0]!.toFixed(3)}, max ${sorted.at(-1)!.toFixed(3)}, ${rounds} rounds), ${Math.round(entries / median)} entries/s; ` +
    `CPU median ${cpuSorted[Math.floor(cpuSorted.length / 2)]!.toFixed(3)} s (min ${cpuSorted[0]!.toFixed(3)})\n`,
);
