/**
 * Layer tars from every tar writer on this machine, made from one source
 * tree that holds what each writer's format can hold: GNU tar (gnu, oldgnu,
 * ustar, posix with each sparse version), bsdtar (its default restricted
 * pax, pax, gnutar, ustar), Python's tarfile (gnu, pax, ustar) and busybox
 * tar. Go's archive/tar writes the layers of umoci and buildah images
 * (builders.ts).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pseudoRandomBytes } from '../helpers/seeded-random.js';

/** What a writer's format can hold. */
export interface WriterCaps {
  /** `ustar`: paths up to 255 bytes that split at a `/` into 155 + 100; `any`: longer (PAX or GNU long names). */
  readonly names: 'ustar' | 'any';
  /** Link targets past the 100 bytes of the ustar field. */
  readonly longLinks: boolean;
  /** Owners past 2,097,151, the most 7 octal digits hold. */
  readonly bigIds: boolean;
  /** Modification times before 1970. */
  readonly oldTimes: boolean;
  /** `binary`: any xattr (security.capability too); `text`: user.* with text values. */
  readonly xattrs: 'none' | 'text' | 'binary';
}

export interface TarWriter {
  readonly label: string;
  readonly caps: WriterCaps;
  /** What its layer of the corpus tree must show (see tarFeatures), so the corpus is known to cover it. */
  readonly shows: readonly TarFeature[];
  /** Writes the tar of `src` (its content, as `./`) to `out`. */
  write(src: string, out: string): void;
}

const PY_WRITER = join(fileURLToPath(new URL('.', import.meta.url)), 'py-tar.py');
const ALL: WriterCaps = { names: 'any', longLinks: true, bigIds: true, oldTimes: true, xattrs: 'binary' };
const NO_XATTRS: WriterCaps = { ...ALL, xattrs: 'none' };
const USTAR: WriterCaps = { names: 'ustar', longLinks: false, bigIds: false, oldTimes: false, xattrs: 'none' };

function run(cmd: string, args: readonly string[]): void {
  try {
    execFileSync(cmd, [...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.toString().trim() || e.message}`);
  }
}

const gnu = (label: string, caps: WriterCaps, shows: readonly TarFeature[], ...flags: string[]): TarWriter => ({
  label: `GNU tar ${label}`,
  caps,
  shows,
  write: (src, out) => run('tar', [...flags, '--numeric-owner', '-cf', out, '-C', src, '.']),
});
const bsd = (label: string, caps: WriterCaps, shows: readonly TarFeature[], ...flags: string[]): TarWriter => ({
  label: `bsdtar ${label}`,
  caps,
  shows,
  write: (src, out) => run('bsdtar', [...flags, '--numeric-owner', '-cf', out, '-C', src, '.']),
});
const python = (format: 'gnu' | 'pax' | 'ustar', caps: WriterCaps, shows: readonly TarFeature[]): TarWriter => ({
  label: `Python tarfile ${format.toUpperCase()}_FORMAT`,
  caps,
  shows,
  write: (src, out) => run('python3', [PY_WRITER, format, src, out]),
});

/** An entry for pythonEntries: bytes that are not UTF-8 written as \\udcXX escapes in name and linkname. */
export interface PyEntry {
  readonly name: string;
  readonly type?: 'file' | 'dir' | 'symlink' | 'hardlink';
  readonly content?: string;
  readonly linkname?: string;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mtime?: number;
  /** PAX records for the entry, written as given (empty values too). */
  readonly pax?: Readonly<Record<string, string>>;
}

/** A PAX layer of these entries, written by Python's tarfile. */
export function pythonEntries(entries: readonly PyEntry[], out: string): void {
  const spec = `${out}.json`;
  fs.writeFileSync(spec, JSON.stringify(entries));
  run('python3', [PY_WRITER, 'entries', spec, out]);
}

const XATTRS = ['--xattrs', '--xattrs-include=*'];
export const TAR_WRITERS: readonly TarWriter[] = [
  gnu('--format=gnu', NO_XATTRS, ['old GNU sparse', 'sparse extension block', 'GNU long name', 'GNU long link', 'base-256'], '--format=gnu', '--sparse'),
  gnu('--format=oldgnu', NO_XATTRS, ['old GNU sparse', 'GNU long name', 'GNU long link', 'base-256'], '--format=oldgnu', '--sparse'),
  gnu('--format=ustar', USTAR, ['ustar prefix'], '--format=ustar'),
  gnu('--format=posix, sparse 0.0, xattrs', ALL, ['PAX sparse 0.0', 'PAX path', 'PAX linkpath', 'SCHILY.xattr'], '--format=posix', '--sparse', '--sparse-version=0.0', ...XATTRS),
  gnu('--format=posix, sparse 0.1, xattrs', ALL, ['PAX sparse 0.1', 'SCHILY.xattr'], '--format=posix', '--sparse', '--sparse-version=0.1', ...XATTRS),
  gnu('--format=posix, sparse 1.0, xattrs', ALL, ['PAX sparse 1.0', 'SCHILY.xattr'], '--format=posix', '--sparse', '--sparse-version=1.0', ...XATTRS),
  bsd('default (restricted pax)', ALL, ['PAX sparse 1.0', 'LIBARCHIVE.xattr', 'hdrcharset=BINARY', 'base-256', 'ustar prefix'], '--xattrs'),
  bsd('--format=pax', ALL, ['PAX sparse 1.0', 'LIBARCHIVE.xattr', 'PAX path'], '--format=pax', '--xattrs'),
  bsd('--format=gnutar', { ...NO_XATTRS, oldTimes: false }, ['GNU long name', 'GNU long link', 'base-256'], '--format=gnutar'),
  bsd('--format=ustar', USTAR, ['ustar prefix'], '--format=ustar'),
  python('gnu', NO_XATTRS, ['GNU long name', 'GNU long link', 'base-256']),
  python('pax', { ...ALL, xattrs: 'text' }, ['PAX path', 'PAX linkpath', 'hdrcharset=BINARY', 'SCHILY.xattr']),
  python('ustar', USTAR, ['ustar prefix']),
  {
    label: 'busybox tar',
    // GNU long names and links; owners as 8 octal digits (to 16,777,215); times before 1970 written as 0.
    caps: { ...NO_XATTRS, oldTimes: false },
    shows: ['GNU long name', 'GNU long link'],
    write: (src, out) => run('busybox', ['tar', '-cf', out, '-C', src, '.']),
  },
];

export type TarFeature =
  | 'old GNU sparse' | 'sparse extension block' | 'PAX sparse 0.0' | 'PAX sparse 0.1' | 'PAX sparse 1.0'
  | 'GNU long name' | 'GNU long link' | 'PAX path' | 'PAX linkpath' | 'ustar prefix' | 'base-256'
  | 'SCHILY.xattr' | 'LIBARCHIVE.xattr' | 'hdrcharset=BINARY' | 'PAX global header';

/** The octal or base-256 number in a header field. */
function headerNumber(block: Buffer, off: number, len: number): number {
  if (block[off]! & 0x80) {
    let n = 0;
    for (let i = off + 1; i < off + len; i++) n = n * 256 + block[i]!;
    return n;
  }
  return parseInt(block.toString('latin1', off, off + len).replace(/[\0 ]+$/, '').trim() || '0', 8);
}

/** What a tar's headers use, found by walking its entries: to show which format features a layer exercises. */
export function tarFeatures(tar: Buffer): Set<TarFeature> {
  const found = new Set<TarFeature>();
  let off = 0;
  while (off + 512 <= tar.length) {
    const block = tar.subarray(off, off + 512);
    if (block.every((b) => b === 0)) break;
    const type = String.fromCharCode(block[156]!);
    const size = headerNumber(block, 124, 12);
    for (const f of [100, 108, 116, 124, 136]) if (block[f]! & 0x80) found.add('base-256');
    if (block.toString('latin1', 257, 263) === 'ustar\0' && block[345] !== 0) found.add('ustar prefix');
    off += 512;
    if (type === 'S') {
      found.add('old GNU sparse');
      for (let extended = block[482] !== 0; extended; off += 512) {
        found.add('sparse extension block');
        extended = tar[off + 504] !== 0;
      }
    }
    if (type === 'L') found.add('GNU long name');
    if (type === 'K') found.add('GNU long link');
    if (type === 'g') found.add('PAX global header');
    if (type === 'x' || type === 'g') {
      const body = tar.toString('latin1', off, off + size);
      const has = (key: string): boolean => body.includes(` ${key}`);
      if (has('path=')) found.add('PAX path');
      if (has('linkpath=')) found.add('PAX linkpath');
      if (has('SCHILY.xattr.')) found.add('SCHILY.xattr');
      if (has('LIBARCHIVE.xattr.')) found.add('LIBARCHIVE.xattr');
      if (has('hdrcharset=BINARY')) found.add('hdrcharset=BINARY');
      if (has('GNU.sparse.major=1')) found.add('PAX sparse 1.0');
      else if (has('GNU.sparse.map=')) found.add('PAX sparse 0.1');
      else if (has('GNU.sparse.offset=')) found.add('PAX sparse 0.0');
    }
    const body = type === '0' || type === '\0' || type === '7' || type === 'S' || type === 'x' || type === 'g' || type === 'L' || type === 'K';
    if (body) off += Math.ceil(size / 512) * 512;
  }
  return found;
}

const bytes = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p as string)));

/**
 * The source tree: regular, empty and larger files; setuid, setgid,
 * sticky and read-only modes; owners; symlinks (relative, absolute,
 * dangling, long); hard links (three names, long names); a char and a
 * block device and a fifo; sparse files; names that are not UTF-8; long
 * paths; and, as the caps allow, large owners, times before 1970 and
 * xattrs. Every entry gets a fixed time, directories last.
 */
export function makeCorpusTree(root: string, caps: WriterCaps): void {
  const at = (...parts: (string | number[])[]): Buffer => Buffer.concat([Buffer.from(`${root}/`), bytes(...parts)]);
  const chown = (p: string | Buffer, uid: number, gid: number): void => fs.lchownSync(typeof p === 'string' ? join(root, p) : p, uid, gid);
  fs.mkdirSync(root, { recursive: true });
  fs.mkdirSync(join(root, 'etc'), { mode: 0o755 });
  fs.writeFileSync(join(root, 'etc/hostname'), 'box\n');
  fs.writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(join(root, 'empty'), '');
  fs.writeFileSync(join(root, 'big'), pseudoRandomBytes(14, 200_000));
  fs.mkdirSync(join(root, 'bin'));
  fs.writeFileSync(join(root, 'bin/su'), '#!/bin/true\n');
  fs.chmodSync(join(root, 'bin/su'), 0o4755);
  fs.writeFileSync(join(root, 'bin/tool'), 'tool\n');
  chown('bin/tool', 1000, 1000);
  fs.chmodSync(join(root, 'bin/tool'), 0o2711); // after chown, which clears setgid
  fs.chmodSync(join(root, 'bin'), 0o750);
  fs.mkdirSync(join(root, 'tmp'));
  fs.chmodSync(join(root, 'tmp'), 0o1777);
  fs.mkdirSync(join(root, 'shared'));
  chown('shared', 0, 50);
  fs.chmodSync(join(root, 'shared'), 0o2775);
  fs.mkdirSync(join(root, 'ro'));
  fs.writeFileSync(join(root, 'ro/inside'), 'read-only parent\n');
  fs.symlinkSync('etc/hostname', join(root, 'link'));
  fs.symlinkSync('/etc/passwd', join(root, 'abs'));
  fs.symlinkSync('nowhere/at/all', join(root, 'dangling'));
  fs.symlinkSync('etc', join(root, 'dirlink'));
  fs.linkSync(join(root, 'etc/hostname'), join(root, 'hard'));
  fs.writeFileSync(join(root, 'h1'), 'three names\n');
  fs.linkSync(join(root, 'h1'), join(root, 'h2'));
  fs.linkSync(join(root, 'h1'), join(root, 'h3'));
  fs.mkdirSync(join(root, 'dev'));
  run('mknod', [join(root, 'dev/null'), 'c', '1', '3']);
  run('mknod', [join(root, 'dev/loop0'), 'b', '7', '0']);
  fs.chmodSync(join(root, 'dev/null'), 0o666);
  fs.mkdirSync(join(root, 'run'));
  run('mkfifo', [join(root, 'run/fifo')]);

  // Sparse files: writers that keep holes store only the regions; the others store the zeros.
  fs.mkdirSync(join(root, 'sparse'));
  const holes = fs.openSync(join(root, 'sparse/holes'), 'w');
  for (const [offset, text] of [[0, 'start'], [300_000, 'middle'], [700_000, 'late']] as const) fs.writeSync(holes, Buffer.from(text), 0, text.length, offset);
  fs.ftruncateSync(holes, 1_048_576);
  fs.closeSync(holes);
  // More regions than an old GNU header holds (4): the map goes on in extension blocks.
  const many = fs.openSync(join(root, 'sparse/many'), 'w');
  for (let i = 0; i < 30; i++) fs.writeSync(many, Buffer.from(`region ${i}`), 0, `region ${i}`.length, i * 16_384);
  fs.closeSync(many);
  fs.closeSync(fs.openSync(join(root, 'sparse/allhole'), 'w'));
  fs.truncateSync(join(root, 'sparse/allhole'), 1_048_576);

  // Names that are not UTF-8, a valid UTF-8 twin, and links to them.
  fs.writeFileSync(at('caf', [0xe9]), 'latin-1\n');
  fs.writeFileSync(at('caf\u00e9'), 'utf-8\n');
  fs.mkdirSync(at('d', [0xff]));
  fs.writeFileSync(at('d', [0xff], '/', [0xc3, 0x28]), 'broken sequence\n');
  fs.symlinkSync(bytes('caf', [0xe9]), at('raw-link'));

  // Long paths: over 100 bytes (ustar splits them into prefix and name), and over 255 where the format allows.
  const ustarPath = `${'p'.repeat(90)}/${'q'.repeat(60)}/${'r'.repeat(90)}`;
  fs.mkdirSync(join(root, ustarPath, '..'), { recursive: true });
  fs.writeFileSync(join(root, ustarPath), 'a path of 242 bytes\n');
  if (caps.names === 'any') {
    const longPath = `${'l'.repeat(120)}/${'m'.repeat(120)}/${'n'.repeat(100)}`;
    fs.mkdirSync(join(root, longPath, '..'), { recursive: true });
    fs.writeFileSync(join(root, longPath), 'a path of 342 bytes\n');
    if (caps.longLinks) {
      fs.symlinkSync(longPath, join(root, 'long-symlink'));
      fs.linkSync(join(root, longPath), join(root, 'long-hardlink'));
      fs.linkSync(join(root, 'etc/passwd'), join(root, `${'h'.repeat(150)}`));
    }
  }
  if (caps.bigIds) {
    fs.writeFileSync(join(root, 'owned'), 'large owner\n');
    chown('owned', 3_000_000, 70_000);
  }
  if (caps.xattrs !== 'none') {
    fs.writeFileSync(join(root, 'xattrs'), 'with attributes\n');
    run('setfattr', ['-n', 'user.comment', '-v', 'plain text', join(root, 'xattrs')]);
    run('setfattr', ['-n', 'user.dir', '-v', 'on a directory', join(root, 'etc')]);
    if (caps.xattrs === 'binary') {
      run('setfattr', ['-n', 'user.bin', '-v', '0sAAH/gD0K', join(root, 'xattrs')]);
      // cap_net_bind_service+ep, as setcap writes it
      run('setfattr', ['-n', 'security.capability', '-v', '0sAQAAAgAEAAAAAAAAAAAAAAAAAAA=', join(root, 'bin/tool')]);
    }
  }

  // Fixed times, children before parents: making an entry changes its directory's time.
  let t = 1_600_000_000;
  const stamp = (dir: Buffer): void => {
    for (const name of fs.readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const p = Buffer.concat([dir, Buffer.from('/'), name]);
      if (fs.lstatSync(p).isDirectory()) stamp(p);
      t += 17;
      fs.lutimesSync(p, t, t);
    }
  };
  stamp(Buffer.from(root));
  if (caps.oldTimes) {
    // Node's utimes family reads a negative time as "now": touch sets these.
    fs.writeFileSync(join(root, 'old'), 'before 1970\n');
    fs.symlinkSync('old', join(root, 'old-link'));
    fs.mkdirSync(join(root, 'old-dir'));
    fs.writeFileSync(join(root, 'old-dir/f'), 'in an old directory\n');
    for (const p of ['old', 'old-link', 'old-dir/f', 'old-dir']) run('touch', ['-h', '-d', '1960-01-01T00:00:00Z', join(root, p)]);
  }
  fs.chmodSync(join(root, 'ro'), 0o555);
}
