import * as fs from 'node:fs';
import { open } from 'node:fs/promises';
import { errnoCode, SeekWhence, type NativeSyscalls } from '../native/syscalls.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, COPYFILE_EXCL, COPYFILE_FICLONE_FORCE } = fs.constants;
/** Bytes read and written at a time between two holes. */
const PIECE = 1024 * 1024;

/** Whether a file has fewer blocks than its size needs: it has holes. */
export function isSparse(st: fs.Stats): boolean {
  return st.blocks * 512 < st.size;
}

/**
 * Copies a sparse file hole for hole: a reflink where the filesystem can,
 * else each data region found by SEEK_DATA/SEEK_HOLE, read and written at
 * its offset, and the size set last. A plain copy would write every hole
 * out as zeros; a layer can hold a file of terabytes that takes a few
 * blocks. The destination is created O_EXCL|O_NOFOLLOW, like every copy.
 */
export async function copySparse(src: string | Buffer, dst: string | Buffer, size: number, native: NativeSyscalls): Promise<void> {
  try {
    fs.copyFileSync(src, dst, COPYFILE_EXCL | COPYFILE_FICLONE_FORCE);
    return;
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') throw err;
  }
  const lseek = native.lseek!;
  const from = await open(src, 'r');
  try {
    const to = await open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      const buf = Buffer.allocUnsafe(PIECE);
      let pos = lseek(from.fd, 0, SeekWhence.SEEK_DATA);
      while (pos >= 0 && pos < size) {
        const end = Math.min(lseek(from.fd, pos, SeekWhence.SEEK_HOLE), size);
        while (pos < end) {
          const { bytesRead } = await from.read(buf, 0, Math.min(PIECE, end - pos), pos);
          if (bytesRead === 0) break; // the file shrank under us; the size below still holds
          let done = 0;
          while (done < bytesRead) done += (await to.write(buf, done, bytesRead - done, pos + done)).bytesWritten;
          pos += bytesRead;
        }
        pos = end < size ? lseek(from.fd, end, SeekWhence.SEEK_DATA) : -1;
      }
      await to.truncate(size);
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}
