/**
 * What the N-API helper costs against the util-linux/attr tools it replaces.
 * Run as root: node --import tsx bench/native-syscalls.ts
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeSyscalls } from '../src/adapters/outbound/native/syscalls.js';

const S_IFCHR = 0o020000;
const N = 20_000;
const SPAWNS = 300;

function perCall(label: string, n: number, fn: (i: number) => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  process.stdout.write(`${label.padEnd(40)} ${us.toFixed(1).padStart(9)} us/call  (n=${n})\n`);
  return us;
}

if (process.getuid?.() !== 0) throw new Error('run as root: mknod of a char device and trusted.* xattrs need it');
const native = nativeSyscalls();
const dir = mkdtempSync(join(tmpdir(), 'image-ts-bench-native-'));
try {
  for (let i = 0; i < N; i++) writeFileSync(join(dir, `f${i}`), '');
  const mknod = perCall('native mknod (whiteout, char 0:0)', N, (i) => native.mknod(join(dir, `n${i}`), S_IFCHR, 0, 0));
  const setx = perCall('native lsetxattr (trusted.overlay.opaque)', N, (i) => native.lsetxattr(join(dir, `f${i}`), 'trusted.overlay.opaque', Buffer.from('y')));
  perCall('fs.lstatSync (a baseline syscall)', N, (i) => lstatSync(join(dir, `f${i}`)));
  const spawnMknod = perCall('spawn mknod(1)', SPAWNS, (i) => spawnSync('mknod', [join(dir, `s${i}`), 'c', '0', '0']));
  const spawnSetx = perCall('spawn setfattr(1)', SPAWNS, (i) => spawnSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(dir, `f${i}`)]));
  process.stdout.write(`native is ${(spawnMknod / mknod).toFixed(0)}x cheaper for mknod, ${(spawnSetx / setx).toFixed(0)}x for setxattr\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
