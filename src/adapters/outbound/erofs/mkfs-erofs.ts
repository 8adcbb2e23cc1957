import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { ImageTsError, UnsupportedError } from '../../../domain/errors.js';
import { onPath } from '../decompress/subprocess-decompressor.js';

export type ErofsCompression = 'lz4' | 'lz4hc';

/** A program's path: PATH, then the sbin dirs where root's tools live and a non-root PATH often lacks. */
export function findProgram(name: string): string | undefined {
  return onPath(name, `${process.env['PATH'] ?? ''}:/usr/local/sbin:/usr/sbin:/sbin`);
}

/** Whether this machine can build EROFS layer images. */
export function canBuildErofs(): boolean {
  return findProgram('mkfs.erofs') !== undefined;
}

/**
 * Runs `mkfs.erofs` over a staged layer tree. erofs-utils 1.5 (Debian 12)
 * cannot read a tar stream (`--tar` came in 1.7), so the tree is unpacked
 * first by our own unpacker, which also makes the overlay whiteouts EROFS
 * keeps. The child dies with us where setpriv can ask for it: a kill -9 of
 * the pull must not leave a builder writing into the store.
 */
export async function mkfsErofs(tree: string, image: string, compression: ErofsCompression, signal?: AbortSignal): Promise<void> {
  const mkfs = findProgram('mkfs.erofs');
  if (!mkfs) throw new UnsupportedError('the erofs layer format needs mkfs.erofs (erofs-utils), which is not installed');
  const setpriv = findProgram('setpriv');
  const args = [`-z${compression}`, '--quiet', image, tree];
  const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', mkfs, ...args]] : [mkfs, args];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], signal });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    child.on('error', (err) => reject(err.name === 'AbortError' ? err : new ImageTsError('STORE', `mkfs.erofs: ${err.message}`, { cause: err })));
    child.on('close', (code, sig) => {
      if (code === 0) resolve();
      else {
        const why = stderr.trim().split('\n').filter(Boolean).pop() ?? `exit ${code ?? sig}`;
        reject(/No space left/i.test(stderr) ? new ImageTsError('NO_SPACE', 'no space left on device') : new ImageTsError('STORE', `mkfs.erofs failed: ${why}`));
      }
    });
  });
}

/** sha256 (hex) and size of a file, streamed. */
export async function fileSha256(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), hash);
  return { sha256: hash.digest('hex'), bytes: (await stat(path)).size };
}
