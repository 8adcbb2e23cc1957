/**
 * Layer tars as a pull running as root unpacks them (fuzz/lib/unpack.ts):
 * owners applied, device nodes made, xattrs beyond user.*. Needs root.
 */
import { unpackOnce } from '../lib/unpack.js';

if (process.geteuid?.() !== 0) throw new Error('the tar-privileged target needs root');

export function fuzz(data: Buffer): void {
  unpackOnce(data, true);
}
