/** Layer tars as an unprivileged pull unpacks them (fuzz/lib/unpack.ts). */
import { unpackOnce } from '../lib/unpack.js';

export function fuzz(data: Buffer): void {
  unpackOnce(data, false);
}
