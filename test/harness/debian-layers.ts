/**
 * A Debian image from the Debian packages installed on this machine, with
 * no download: each layer is GNU tar's archive of what `dpkg -L` lists for a
 * group of packages, read from the root filesystem (paths through the
 * merged-/usr symlinks are taken where they land, and every parent
 * directory is archived too). The last layer is a cleanup step: whiteouts of
 * a doc directory and a binary, an opaque directory made again, an edited
 * config file. So the image holds what real Debian layers hold: setuid
 * binaries, hard links (perl), symlinks, thousands of small files.
 *
 * The bench's debian images (bench/images.ts) are built from ~240 .debs it
 * downloads (minutes, and a network); this one takes seconds. Only files
 * that any user may read are archived.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { tar, type TarEntry } from '../helpers/tar-writer.js';

/** Essential and base packages: the first layer. */
const BASE = [
  'base-files', 'base-passwd', 'bash', 'coreutils', 'dash', 'debianutils', 'diffutils', 'findutils', 'grep', 'gzip', 'bzip2',
  'sed', 'tar', 'login', 'passwd', 'mount', 'util-linux', 'libc6', 'libc-bin', 'ncurses-base', 'tzdata',
];
/** Interpreters and their libraries: the second. */
const RUNTIMES = [
  'perl-base', 'perl-modules-5.36', 'perl', 'python3.11-minimal', 'libpython3.11-minimal', 'libpython3.11-stdlib',
  'libssl3', 'openssl', 'ca-certificates', 'unzip', 'xz-utils',
];
/** Without these the image is not the Debian image the test means: fail, never shrink silently. */
const REQUIRED = ['coreutils', 'libc6', 'bash', 'perl-base', 'passwd', 'tzdata'];

export interface DebianLayers {
  /** Layer tars, bottom first. */
  readonly tars: readonly Buffer[];
  readonly packages: readonly string[];
  /** Entries in the two package layers. */
  readonly entries: number;
  readonly bytes: number;
  /** What the cleanup layer does, for diagnostics and assertions. */
  readonly cleanup: { readonly whiteouts: readonly string[]; readonly opaque: string; readonly edited: string };
}

function installed(packages: readonly string[]): string[] {
  const out = execFileSync('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Abbrev}\n', ...packages], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  // dpkg-query exits 1 when one is unknown, after printing the others.
  return out.split('\n').filter((l) => /^\S+ ii/.test(l)).map((l) => l.split(' ')[0]!);
}

function installedOrPartial(packages: readonly string[]): string[] {
  try {
    return installed(packages);
  } catch (err) {
    const stdout = (err as { stdout?: Buffer | string }).stdout?.toString() ?? '';
    return stdout.split('\n').filter((l) => /^\S+ ii/.test(l)).map((l) => l.split(' ')[0]!);
  }
}

/**
 * The paths (relative, no leading /) a group of packages has on this
 * root: each listed path with its parent resolved, kept if it exists on
 * the root filesystem (and, for a file, if others may read it), and every
 * ancestor directory.
 */
function packagePaths(packages: readonly string[]): string[] {
  const listed = execFileSync('dpkg', ['-L', ...packages], { encoding: 'utf8', maxBuffer: 64 << 20 }).toString().split('\n');
  const keep = new Set<string>();
  const rootDev = fs.lstatSync('/usr').dev; // /proc, /sys, /run and the like are other filesystems, not the image
  for (const p of listed) {
    if (!p.startsWith('/') || p === '/.' || p === '/') continue;
    let parent: string;
    try {
      parent = fs.realpathSync(dirname(p));
    } catch {
      continue;
    }
    const path = join(parent, basename(p));
    const st = fs.lstatSync(path, { throwIfNoEntry: false });
    if (!st || st.dev !== rootDev || (st.isFile() && !(st.mode & 0o004)) || !(st.isFile() || st.isDirectory() || st.isSymbolicLink())) continue;
    for (let a = path; a !== '/'; a = dirname(a)) keep.add(a.slice(1));
  }
  return [...keep].sort();
}

/** GNU tar of `paths` from /, numeric owners, xattrs, no recursion (the list is complete). */
function gnuTar(paths: readonly string[], scratch: string, name: string): Buffer {
  const list = join(scratch, `${name}.list`);
  const out = join(scratch, `${name}.tar`);
  fs.writeFileSync(list, `${paths.join('\0')}\0`);
  execFileSync('tar', ['--create', '--file', out, '--format=posix', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--no-recursion',
    '-C', '/', '--null', '--files-from', list], { stdio: ['ignore', 'ignore', 'pipe'] });
  const bytes = fs.readFileSync(out);
  fs.rmSync(out);
  fs.rmSync(list);
  return bytes;
}

export function debianLayers(scratch: string): DebianLayers {
  fs.mkdirSync(scratch, { recursive: true });
  const base = installedOrPartial(BASE);
  const runtimes = installedOrPartial(RUNTIMES);
  const missing = REQUIRED.filter((p) => !base.includes(p) && !runtimes.includes(p));
  if (missing.length) throw new Error(`the Debian image needs these installed packages: ${missing.join(', ')}`);
  const lower = packagePaths(base);
  const upper = packagePaths(runtimes);
  const tars = [gnuTar(lower, scratch, 'base'), gnuTar(upper, scratch, 'runtimes')];

  // The cleanup layer, over paths the base layer has and the runtimes layer does not touch.
  const inLower = new Set(lower);
  const inUpper = new Set(upper);
  const lowerOnly = (p: string): boolean => inLower.has(p) && !inUpper.has(p);
  const docs = lower.filter((p) => /^usr\/share\/doc\/[^/]+$/.test(p) && lowerOnly(p) && fs.lstatSync(`/${p}`).isDirectory());
  const bins = lower.filter((p) => /^usr\/bin\/[^/]+$/.test(p) && lowerOnly(p) && fs.lstatSync(`/${p}`).isFile());
  const opaque = 'usr/share/zoneinfo/America';
  const edited = 'etc/bash.bashrc';
  if (!docs.length || !bins.length || !inLower.has(opaque) || !inLower.has(edited)) {
    throw new Error(`the base layer lacks what the cleanup layer changes (docs ${docs.length}, bins ${bins.length}, ${opaque} ${inLower.has(opaque)}, ${edited} ${inLower.has(edited)})`);
  }
  const whiteouts = [docs[Math.floor(docs.length / 2)]!, bins[Math.floor(bins.length / 3)]!];
  const meta = (p: string): Pick<TarEntry, 'mode' | 'uid' | 'gid' | 'mtime'> => {
    const st = fs.lstatSync(`/${p}`);
    return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
  };
  // No entries for the parents of the whiteouts: implicit directories over lower ones, which keep the lower metadata.
  const cleanup: TarEntry[] = [
    ...whiteouts.map((p): TarEntry => ({ name: `${dirname(p)}/.wh.${basename(p)}`, content: '', mtime: 1_700_000_000 })),
    { name: `${opaque}/`, type: 'dir', ...meta(opaque) },
    { name: `${opaque}/.wh..wh..opq`, content: '', mtime: 1_700_000_000 },
    { name: `${opaque}/New_York`, content: 'TZif placeholder: the cleanup layer made this directory again\n', mtime: 1_700_000_000 },
    { name: edited, content: Buffer.concat([fs.readFileSync(`/${edited}`), Buffer.from('\n# edited by the cleanup layer\n')]), ...meta(edited) },
  ];
  tars.push(tar(cleanup));
  return {
    tars,
    packages: [...base, ...runtimes],
    entries: lower.length + upper.length,
    bytes: tars[0]!.length + tars[1]!.length,
    cleanup: { whiteouts, opaque, edited },
  };
}
