/**
 * The layer unpacker's framing (headers, PAX and GNU long names, bodies,
 * padding, end of archive) and what it makes of each entry, on a fresh
 * directory per input, as an unprivileged pull with marker whiteouts does.
 *
 * Safety invariant: nothing is made outside the layer root. The root sits
 * three directories deep below a scratch directory, each of which must hold
 * only the next one afterwards, and no file descriptor may be left open.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TarUnpacker } from '../../src/adapters/outbound/layer-store/tar-unpacker.js';
import { expectRejection, Finding, splits } from '../lib/verdict.js';

const base = mkdtempSync(join(tmpdir(), 'image-ts-fuzz-tar-'));
process.on('exit', () => rmSync(base, { recursive: true, force: true }));
let runs = 0;

const openFds = (): number => readdirSync('/proc/self/fd').length;

function only(dir: string, name: string): void {
  const names = readdirSync(dir);
  if (names.length !== 1 || names[0] !== name) throw new Finding(`the unpacker wrote outside its root: ${dir} holds ${JSON.stringify(names)}`);
}

export function fuzz(data: Buffer): void {
  const run = join(base, String(runs++));
  const root = join(run, 'a', 'b', 'root');
  mkdirSync(root, { recursive: true });
  const fds = openFds();
  // The Writable's own methods, called directly: the unpacker does its work synchronously in them, and a
  // synchronous target lets libFuzzer's -timeout catch a hang.
  const unpacker = new TarUnpacker({
    root,
    whiteoutFormat: 'marker',
    privileged: false,
    limits: { maxEntriesPerLayer: 4096, maxPathBytes: 4096 },
  });
  let failure: Error | null | undefined;
  const done = (err?: Error | null): void => {
    failure = err;
  };
  for (const chunk of splits(data, 1536)) {
    unpacker._write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length), 'latin1', done); // the encoding of a Buffer chunk is ignored
    if (failure) break;
  }
  if (!failure) unpacker._final(done);
  if (failure) {
    unpacker._destroy(null, () => undefined);
    expectRejection(failure);
  }
  if (openFds() !== fds) throw new Finding(`the unpacker left ${openFds() - fds} file descriptors open`);
  only(run, 'a');
  only(join(run, 'a'), 'b');
  only(join(run, 'a', 'b'), 'root');
  rmSync(run, { recursive: true, force: true });
  if (readdirSync(base).length !== 0) throw new Finding(`the unpacker wrote outside its root: ${base} holds ${readdirSync(base).join(', ')}`);
}
