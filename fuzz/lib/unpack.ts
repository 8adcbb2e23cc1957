/**
 * The tar and tar-privileged targets: the layer unpacker's framing
 * (headers, PAX and GNU long names, bodies, padding, end of archive) and
 * what it makes of each entry, on a fresh directory per input, with marker
 * whiteouts.
 *
 * Safety invariant: nothing is made outside the layer root. The root sits
 * three directories deep below a scratch directory, each of which must hold
 * only the next one afterwards, and no file descriptor may be left open.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { numeric } from '../../src/adapters/outbound/layer-store/tar-header.js';
import { TarUnpacker } from '../../src/adapters/outbound/layer-store/tar-unpacker.js';
import { expectRejection, Finding, splits } from './verdict.js';

const base = mkdtempSync(join(tmpdir(), 'image-ts-fuzz-tar-'));
process.on('exit', () => rmSync(base, { recursive: true, force: true }));
let runs = 0;

const openFds = (): number => readdirSync('/proc/self/fd').length;

function only(dir: string, name: string): void {
  const names = readdirSync(dir);
  if (names.length !== 1 || names[0] !== name) throw new Finding(`the unpacker wrote outside its root: ${dir} holds ${JSON.stringify(names)}`);
}

/**
 * A copy with the checksum of each header block made right, following the
 * framing by each header's own size field (a PAX size breaks the walk, as it
 * should now and then). Without it nearly every mutation of a header dies
 * at the checksum check, which libFuzzer cannot compute. Inputs whose length
 * is a multiple of 8 are left alone, so the check itself is still fuzzed.
 */
function fixChecksums(data: Buffer): Buffer {
  if (data.length % 8 === 0) return data;
  const out = Buffer.from(data); // libFuzzer's own input must not change
  let off = 0;
  while (off + 512 <= out.length) {
    const block = out.subarray(off, off + 512);
    off += 512;
    if (block.every((b) => b === 0)) continue;
    let sum = 8 * 0x20;
    for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += block[i]!;
    block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
    let size = 0;
    try {
      size = numeric(block, 124, 12) ?? 0;
    } catch {
      // a bad base-256 size: the unpacker rejects it, so the walk ends here
      return out;
    }
    const type = block[156]!;
    const bodiless = type >= 0x31 && type <= 0x36; // link, symlink, char, block, directory, fifo
    if (!bodiless && size > 0) off += Math.ceil(size / 512) * 512;
  }
  return out;
}

export function unpackOnce(input: Buffer, privileged: boolean): void {
  const data = fixChecksums(input);
  const run = join(base, String(runs++));
  const root = join(run, 'a', 'b', 'root');
  mkdirSync(root, { recursive: true });
  const fds = openFds();
  // The Writable's own methods, called directly: the unpacker does its work synchronously in them, and a
  // synchronous target lets libFuzzer's -timeout catch a hang.
  const unpacker = new TarUnpacker({
    root,
    whiteoutFormat: 'marker',
    privileged,
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
