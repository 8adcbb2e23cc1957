/**
 * What an erofs store and the kernel hold for it, read directly (never
 * through image-ts): the layer images and their records, the mounts and
 * loop devices under a work dir, mkfs.erofs children, and a rootfs's hard
 * link groups. For test/e2e/erofs.test.ts.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { loopDevicesBackedBy } from '../../src/adapters/outbound/erofs/loop-mount.js';

export { loopDevicesBackedBy };

/** One line of /proc/self/mountinfo. */
export interface MountEntry {
  readonly point: string;
  readonly fstype: string;
  readonly source: string;
}

const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Mounts at or below `dir` in this mount namespace (the CLI's too: it runs in ours). */
export function mountsUnder(dir: string): MountEntry[] {
  const root = resolve(dir);
  const out: MountEntry[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ') as [string, string | undefined];
    const point = unescape(left.split(' ')[4] ?? '');
    const [fstype = '', source = ''] = (right ?? '').split(' ');
    if (point === root || point.startsWith(`${root}/`)) out.push({ point, fstype, source: unescape(source) });
  }
  return out;
}

/** Processes whose command line names mkfs.erofs and `dir` (setpriv before its exec, then mkfs.erofs itself). */
export function mkfsProcessesFor(dir: string): { pid: number; argv: string[] }[] {
  const out: { pid: number; argv: string[] }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').filter(Boolean);
    } catch {
      continue; // gone meanwhile
    }
    if (argv.some((a) => a.endsWith('mkfs.erofs')) && argv.some((a) => a.startsWith(`${resolve(dir)}/`))) out.push({ pid: Number(name), argv });
  }
  return out;
}

export interface StoredErofsImage {
  readonly bytes: number;
  readonly sha256: string;
  readonly compression: string;
  readonly verity?: {
    readonly rootHash: string;
    readonly salt: string;
    readonly dataBlocks: number;
    readonly dataBlockSize: number;
    readonly hashBlockSize: number;
    readonly hashAlgorithm: string;
    readonly bytes: number;
  };
}

export interface LayerOnDisk {
  readonly diffId: string;
  readonly dir: string;
  /** layer.json as written. */
  readonly record: {
    readonly format?: string;
    readonly image?: StoredErofsImage;
    readonly lowerLinks?: readonly (readonly [string, string])[];
    readonly implicitDirs?: readonly string[];
  };
}

/** Every layer dir with a layer.json under `work`/layers/sha256. */
export async function layersOnDisk(work: string): Promise<LayerOnDisk[]> {
  const base = join(work, 'layers', 'sha256');
  const out: LayerOnDisk[] = [];
  for (const hex of (await readdir(base).catch(() => [] as string[])).sort()) {
    const dir = join(base, hex);
    const text = await readFile(join(dir, 'layer.json'), 'utf8').catch(() => undefined);
    if (text !== undefined) out.push({ diffId: `sha256:${hex}`, dir, record: JSON.parse(text) as LayerOnDisk['record'] });
  }
  return out;
}

export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Bytes allocated to a file or directory (st_blocks), what tmpfs takes from memory. */
export async function allocated(path: string): Promise<number> {
  return (await lstat(path)).blocks * 512;
}

/**
 * Groups of names that share an inode, each sorted, the groups sorted:
 * what treeOf's link counts alone cannot tell (two files with n2 each may
 * be one pair or two). Names are given as their bytes (latin1).
 */
export async function hardLinkGroups(rootfs: string): Promise<string[][]> {
  const groups = new Map<string, string[]>();
  const root = Buffer.from(resolve(rootfs));
  const walk = async (rel: Buffer | undefined): Promise<void> => {
    const dir = rel ? Buffer.concat([root, Buffer.from('/'), rel]) : root;
    for (const name of await readdir(dir, { encoding: 'buffer' })) {
      const path = rel ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      const st = await lstat(Buffer.concat([root, Buffer.from('/'), path]), { bigint: true });
      if (st.isDirectory()) await walk(path);
      else if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        groups.set(key, [...(groups.get(key) ?? []), path.toString('latin1')]);
      }
    }
  };
  await walk(undefined);
  return [...groups.values()].map((g) => g.sort()).sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
}

/** Bundle records in metadata.json: path and snapshot id (read directly). */
export function recordedSnapshots(work: string): Map<string, { id: string; snapshotter: string; rootfs: string }> {
  let state: { bundles?: Record<string, { snapshot?: { id?: string; snapshotter?: string; rootfs?: string } }> };
  try {
    state = JSON.parse(readFileSync(join(work, 'metadata.json'), 'utf8')) as typeof state;
  } catch {
    return new Map();
  }
  const out = new Map<string, { id: string; snapshotter: string; rootfs: string }>();
  for (const [path, b] of Object.entries(state.bundles ?? {})) {
    out.set(path, { id: b.snapshot?.id ?? '', snapshotter: b.snapshot?.snapshotter ?? '', rootfs: b.snapshot?.rootfs ?? '' });
  }
  return out;
}

/** What the kernel holds for a work dir: its mounts, and the loop devices bound to files under it. */
export interface KernelHold {
  readonly mounts: readonly MountEntry[];
  readonly loops: readonly string[];
}

export async function kernelHold(work: string): Promise<KernelHold> {
  return { mounts: mountsUnder(work), loops: await loopDevicesBackedBy(work) };
}

/**
 * Everything the kernel holds for `work` belongs to a recorded bundle: each
 * mount under the work dir lies in a recorded bundle's overlay/<id>/, each
 * loop device backing a file under it is the source of one of those mounts,
 * and each mount under `bundlesDir` is a recorded bundle's rootfs. Returns
 * the violations (empty when none).
 */
export async function leaksOf(work: string, bundlesDir: string): Promise<string[]> {
  const recorded = recordedSnapshots(work);
  const ours = [...recorded.values()].map((s) => join(resolve(work), 'overlay', s.id));
  const problems: string[] = [];
  const mounts = mountsUnder(work);
  for (const m of mounts) {
    if (!ours.some((d) => m.point.startsWith(`${d}/`))) problems.push(`mount ${m.point} (${m.fstype} from ${m.source}) belongs to no recorded bundle`);
  }
  const sources = new Set(mounts.filter((m) => m.fstype === 'erofs' && ours.some((d) => m.point.startsWith(`${d}/`))).map((m) => m.source));
  for (const loop of await loopDevicesBackedBy(work)) {
    if (!sources.has(loop)) problems.push(`loop device ${loop} is bound to a file under ${work} and no recorded bundle mounts it`);
  }
  const rootfses = new Set([...recorded.values()].map((s) => s.rootfs));
  for (const m of mountsUnder(bundlesDir).filter((x) => !x.point.startsWith(`${resolve(work)}/`) && x.point !== resolve(work))) {
    if (!rootfses.has(m.point)) problems.push(`mount ${m.point} (${m.fstype}) is no recorded bundle's rootfs`);
  }
  for (const p of mkfsProcessesFor(work)) problems.push(`mkfs.erofs still runs: pid ${p.pid} ${p.argv.join(' ')}`);
  return problems;
}
