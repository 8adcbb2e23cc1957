/**
 * One tar header block, decoded on its own: every field of every 512-byte
 * block the input holds. decodeHeader's TarHeaderError is its typed
 * rejection (the unpacker turns it into INVALID_LAYER); numbers must come
 * out as safe integers, and text as strings.
 */
import { decodeHeader, numeric, TarHeaderError } from '../../src/adapters/outbound/layer-store/tar-header.js';
import { Finding } from '../lib/verdict.js';

function checkNumber(what: string, n: number | undefined): void {
  if (n !== undefined && !Number.isSafeInteger(n)) throw new Finding(`${what} decoded to ${n}`);
}

export function fuzz(data: Buffer): void {
  const block = Buffer.alloc(512);
  for (let off = 0; off === 0 || off < data.length; off += 512) {
    block.fill(0);
    data.copy(block, 0, off, off + 512);
    try {
      const h = decodeHeader(block);
      for (const [k, v] of Object.entries(h)) {
        if (typeof v === 'number') checkNumber(k, v);
      }
      if (h.path !== undefined && typeof h.path !== 'string') throw new Finding('path is not a string');
      checkNumber('devmajor', numeric(block, 329, 8));
      checkNumber('devminor', numeric(block, 337, 8));
    } catch (err) {
      if (!(err instanceof TarHeaderError)) throw err;
    }
  }
}
