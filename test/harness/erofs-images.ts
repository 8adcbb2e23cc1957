/**
 * The images of test/e2e/erofs.test.ts.
 *
 * The features image: a first layer that GNU tar (posix, sparse, xattrs)
 * writes of a tree made on disk (a sparse file, setuid and a capability on
 * one file, devices, a fifo, owners past 2^21, names that are not UTF-8,
 * hard links, symlinks, a time before 1970), then two layers of the test
 * tar writer that delete a file and a directory, make a directory opaque,
 * link to a lower layer's file, write below directories no entry names,
 * make a deleted directory again and leave a directory of markers only.
 *
 * The crash images: a small base and top around a layer of many small text
 * files, which takes seconds to unpack, and for the kills aimed at
 * mkfs.erofs a layer of big text files, which it takes a while to compress.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { pseudoRandomBytes, seededRandom } from '../helpers/seeded-random.js';
import { tar, type TarEntry } from '../helpers/tar-writer.js';

export const MTIME = 1_650_000_000;

const sh = (cmd: string, ...args: string[]): void => void execFileSync(cmd, args, { stdio: 'pipe' });
const raw = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p as string)));

/**
 * The first layer, GNU tar's (posix, sparse, xattrs) of a tree made here:
 * what the later layers delete, hide and link to, and what only a real
 * file system gives (a sparse file, setuid and capability on one file).
 */
export function featureBaseLayer(src: string): Buffer {
  const at = (...parts: (string | number[])[]): Buffer => raw(`${src}/`, ...parts);
  for (const d of ['etc', 'data', 'bin', 'lib', 'dev', 'srv', 'tmp', 'home/user', 'gonedir/sub', 'opaque', 'keep']) fs.mkdirSync(join(src, d), { recursive: true });
  fs.writeFileSync(join(src, 'etc/hostname'), 'box\n');
  fs.writeFileSync(join(src, 'data/big'), pseudoRandomBytes(21, 150_000));
  fs.linkSync(join(src, 'data/big'), join(src, 'data/big-link'));
  fs.writeFileSync(join(src, 'data/text'), Array.from({ length: 6000 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join(''));
  fs.writeFileSync(join(src, 'data/x'), 'with xattrs\n');
  sh('setfattr', '-n', 'user.comment', '-v', 'plain', join(src, 'data/x'));
  const sparse = fs.openSync(join(src, 'data/sparse'), 'w');
  fs.writeSync(sparse, Buffer.from('far out'), 0, 7, 3_000_000);
  fs.closeSync(sparse);
  fs.writeFileSync(at('caf', [0xe9]), 'latin-1\n');
  fs.mkdirSync(at('d', [0xff]));
  fs.writeFileSync(at('d', [0xff], '/x'), 'in a raw-named directory\n');
  fs.writeFileSync(join(src, 'bin/app'), '#!/bin/true\n');
  fs.linkSync(join(src, 'bin/app'), join(src, 'bin/app2'));
  sh('chown', '1000:1000', join(src, 'bin/app'));
  fs.chmodSync(join(src, 'bin/app'), 0o4755);
  sh('setfattr', '-n', 'security.capability', '-v', '0sAQAAAgAEAAAAAAAAAAAAAAAAAAA=', join(src, 'bin/app'));
  fs.writeFileSync(join(src, 'lib/t'), 'the target of a link from above\n');
  fs.chmodSync(join(src, 'lib/t'), 0o640);
  fs.symlinkSync('lib', join(src, 'lib64'));
  fs.symlinkSync('/etc/hostname', join(src, 'abs-link'));
  fs.symlinkSync('nowhere', join(src, 'dangling'));
  sh('chown', '0:50', join(src, 'srv'));
  fs.chmodSync(join(src, 'srv'), 0o2775);
  fs.chmodSync(join(src, 'tmp'), 0o1777);
  sh('chown', '1000:1000', join(src, 'home/user'));
  fs.chmodSync(join(src, 'home/user'), 0o700);
  fs.writeFileSync(join(src, 'owned'), 'large owner\n');
  sh('chown', '3000000:70000', join(src, 'owned'));
  sh('mknod', join(src, 'dev/null'), 'c', '1', '3');
  sh('mknod', join(src, 'dev/loop200'), 'b', '7', '200');
  sh('mkfifo', join(src, 'fifo'));
  for (const f of ['gone', 'gonedir/sub/y', 'opaque/a', 'opaque/b', 'keep/a', 'keep/b']) fs.writeFileSync(join(src, f), `${f}\n`);
  sh('find', src, '-exec', 'touch', '-h', '-d', `@${MTIME}`, '{}', '+');
  fs.writeFileSync(join(src, 'old'), 'before 1970\n');
  sh('touch', '-h', '-d', '1960-01-01T00:00:00Z', join(src, 'old'));
  const out = `${src}.tar`;
  sh('tar', '--format=posix', '--sparse', '--xattrs', '--xattrs-include=*', '--numeric-owner', '-cf', out, '-C', src, '.');
  return fs.readFileSync(out);
}

/** Deletes a file and a directory, hides a directory (opaque), links to the lower lib/t, makes directories no entry names. */
export const featureMiddle: TarEntry[] = [
  { name: '.wh.gone', content: '', mtime: MTIME },
  { name: '.wh.gonedir', content: '', mtime: MTIME },
  { name: 'opaque/', type: 'dir', mtime: MTIME },
  { name: 'opaque/.wh..wh..opq', content: '', mtime: MTIME },
  { name: 'opaque/c', content: 'c\n', mtime: MTIME },
  { name: 'keep/', type: 'dir', mode: 0o750, mtime: MTIME },
  { name: 'keep/.wh.b', content: '', mtime: MTIME },
  { name: 'keep/a', content: 'rewritten\n', mtime: MTIME },
  { name: 'new/', type: 'dir', mtime: MTIME },
  { name: 'new/one', content: 'one\n', mode: 0o640, uid: 7, gid: 8, mtime: MTIME, xattrs: { 'user.k': 'v' } },
  { name: 'new/two', type: 'hardlink', linkname: 'new/one', mtime: MTIME },
  { name: 'new/t-link', type: 'hardlink', linkname: 'lib/t', mtime: MTIME },
  { name: 'new/link', type: 'symlink', linkname: '../data/x', mtime: MTIME },
  { name: 'new/fifo', type: 'fifo', mtime: MTIME },
  { name: 'new/tty', type: 'char', devmajor: 5, devminor: 0, mode: 0o620, gid: 5, mtime: MTIME },
  { name: 'new/suid', content: '#!/bin/sh\n', mode: 0o4755, mtime: MTIME },
  { name: 'new/sgid', content: '#!/bin/sh\n', mode: 0o2711, gid: 42, mtime: MTIME },
  { name: raw('new/', [0xff, 0xfe]), content: 'raw name\n', mtime: MTIME },
  { name: 'imp/sub/file', content: 'below two implicit directories\n', mtime: MTIME },
  { name: 'data/added', content: 'below an implicit directory over a lower one\n', mtime: MTIME },
];
/** Makes the deleted directory again, deletes the Latin-1 name and one name of a lower hard link, and a marker-only directory. */
export const featureTop: TarEntry[] = [
  { name: 'gonedir/', type: 'dir', mtime: MTIME },
  { name: 'gonedir/again', content: 'again\n', mtime: MTIME },
  { name: raw('.wh.caf', [0xe9]), content: '', mtime: MTIME },
  { name: 'ghost/.wh.nothing', content: '', mtime: MTIME },
  { name: 'bin/', type: 'dir', mtime: MTIME },
  { name: 'bin/.wh.app2', content: '', mtime: MTIME },
];
/** Directories the middle layer makes up where no lower one is: their times are the unpack's, so two stores differ there. */
export const FRESH_IMPLICIT = ['imp', 'imp/sub'];

/** Text-like content (compressible, as most of a rootfs is) of `n` words. */
function text(rand: () => number, words: readonly string[], n: number): string {
  return Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]).join(' ');
}

function vocabulary(rand: () => number): string[] {
  return Array.from({ length: 120 }, () => Array.from({ length: 3 + Math.floor(rand() * 7) }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join(''));
}

/** `count` small text files in 40 directories under bulk/: many entries to unpack. */
export function bulkEntries(count: number, seed: number): TarEntry[] {
  const rand = seededRandom(seed);
  const words = vocabulary(rand);
  const out: TarEntry[] = [{ name: 'bulk/', type: 'dir', mtime: MTIME }];
  for (let d = 0; d < 40; d++) out.push({ name: `bulk/d${d}/`, type: 'dir', mtime: MTIME });
  for (let i = 0; i < count; i++) out.push({ name: `bulk/d${i % 40}/f${i}`, content: text(rand, words, 30 + Math.floor(rand() * 300)), mtime: MTIME });
  return out;
}

/**
 * `count` text files of 64-160 KiB under heavy/: bytes that mkfs.erofs takes
 * its time to compress (about a second for 600 of them with lz4hc).
 */
export function heavyEntries(count: number, seed: number): TarEntry[] {
  const rand = seededRandom(seed);
  const words = vocabulary(rand);
  const out: TarEntry[] = [{ name: 'heavy/', type: 'dir', mtime: MTIME }];
  for (let i = 0; i < count; i++) out.push({ name: `heavy/f${i}`, content: text(rand, words, 10_000 + Math.floor(rand() * 15_000)), mtime: MTIME });
  return out;
}

/** Below the big layer: what the top layer deletes, hides and links to. */
export const crashBase = tar([
  { name: 'etc/', type: 'dir', mtime: MTIME },
  { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n', mtime: MTIME },
  { name: 'gone', content: 'removed above', mtime: MTIME },
  { name: 'opq/', type: 'dir', mtime: MTIME },
  { name: 'opq/old', content: 'hidden above', mtime: MTIME },
  { name: 'lib/', type: 'dir', mtime: MTIME },
  { name: 'lib/t', content: 'linked from above', mtime: MTIME },
]);
/** Above it: a whiteout, an opaque directory, a link to a lower file. */
export const crashTop = tar([
  { name: '.wh.gone', content: '', mtime: MTIME },
  { name: 'opq/', type: 'dir', mtime: MTIME },
  { name: 'opq/.wh..wh..opq', content: '', mtime: MTIME },
  { name: 'opq/new', content: 'n', mtime: MTIME },
  { name: 'lib/t2', type: 'hardlink', linkname: 'lib/t', mtime: MTIME },
]);

