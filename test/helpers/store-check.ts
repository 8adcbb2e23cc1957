import { processAlive } from '../../src/adapters/outbound/process-alive.js';
/**
 * What a consistent store is, checked by reading its files directly (never
 * through image-ts), and a CLI child that a test can kill -9 at a moment of
 * its choosing.
 *
 * The work dir, as src lays it out:
 *   metadata.json                     the state (temp + fsync + rename)
 *   metadata.json.<pid>.tmp           a write in progress (or left by a crash)
 *   metadata.lock/pid                 the cross-process lock and its owner
 *   layers/<alg>/<hex>/layer.json     commit marker of a layer
 *   layers/<alg>/<hex>/diff/          the layer's tree
 *   layers/<alg>/<hex>/layer.erofs    or its EROFS image (format erofs), with layer.verity
 *   layers/.probe-*                   the whiteout-format probe (removed right away)
 *   staging/<pid>-<hex>[.rm]          layers being unpacked or removed by process <pid>
 *   overlay/<id>/{upper,work}         an overlay bundle's writable dirs
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { collect, ROOT, sourceCliArgs, type Finished } from './cli.js';

/** A lease longer than this is not what src hands out (LEASE_MS, 6 h) plus slack. */
const MAX_LEASE_MS = 6 * 60 * 60 * 1000 + 60_000;

export interface LayerFacts {
  readonly size: number;
  readonly entries: number;
  readonly whiteoutFormat: string;
}

export interface StoreReport {
  /** Image records in metadata.json. */
  readonly images: number;
  /** diff_ids with a committed layer dir. */
  readonly committed: readonly string[];
  readonly layerFacts: ReadonlyMap<string, LayerFacts>;
  readonly bundles: number;
  readonly leases: number;
  /** Entries under staging/, with whether their owner still runs. */
  readonly staging: readonly { readonly name: string; readonly pid: number; readonly alive: boolean }[];
  /** metadata.lock, if present. */
  readonly lock: { readonly pid: number | undefined; readonly alive: boolean } | undefined;
  /** metadata.json.*.tmp files. */
  readonly tempFiles: readonly string[];
  /** layers/.probe-* leftovers. */
  readonly probes: readonly string[];
  /** overlay/<id> dirs that no bundle record names. */
  readonly orphanOverlays: readonly string[];
}

export interface CheckOptions {
  /**
   * A new image-ts process ran to completion since the last crash and none
   * runs now: nothing may be left that only a dead process could own.
   */
  readonly settled?: boolean;
  /** What each layer's layer.json must say (from a clean pull): a committed layer is a whole, verified one. */
  readonly expect?: ReadonlyMap<string, LayerFacts>;
}


/** A pid as written in a lock or a staging name; anything else (empty, 0, junk) is no owner. */
function ownerPid(text: string): number | undefined {
  return /^[1-9][0-9]*$/.test(text.trim()) ? Number(text.trim()) : undefined;
}

/** Mount points at or below `dir`, from /proc/mounts. */
export function mountsBelow(dir: string): string[] {
  const root = resolve(dir);
  return readFileSync('/proc/mounts', 'utf8').split('\n')
    .map((l) => (l.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => m === root || m.startsWith(`${root}/`));
}

export function isMountPoint(path: string): boolean {
  return mountsBelow(path).includes(resolve(path));
}

async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Asserts the store's invariants; throws an Error naming every violation.
 * Always (even right after a kill -9):
 *  - metadata.json is absent or parses, version 1, with images/layers/bundles/leases objects;
 *  - every dir under layers/<alg>/ is a committed layer: a valid digest name, layer.json
 *    naming that diff_id with numeric size/entries and a known whiteout format, and diff/
 *    or, for format erofs, a whole image (the recorded size and sha256) and its verity tree;
 *  - every layer an image or a bundle record names is committed, and every image layer has a layers entry;
 *  - every bundle record's config.json and rootfs exist, an overlay or erofs rootfs is mounted;
 *  - every lease has a layer list and a parseable expiry at most 6 h ahead;
 *  - with `expect`: every committed layer's layer.json matches the clean pull's.
 * With `settled`: no staging entry, no lock of a dead process, no probe dir.
 */
export async function checkStore(workDir: string, options: CheckOptions = {}): Promise<StoreReport> {
  const problems: string[] = [];
  const bad = (m: string): void => {
    problems.push(m);
  };

  // metadata.json
  let state: Record<string, unknown> = { version: 1, images: {}, layers: {}, bundles: {}, leases: {} };
  const metaPath = join(workDir, 'metadata.json');
  if (existsSync(metaPath)) {
    const text = await readFile(metaPath, 'utf8');
    try {
      const v: unknown = JSON.parse(text);
      if (!isObject(v)) throw new Error('not an object');
      state = v;
    } catch (err) {
      bad(`metadata.json does not parse (${(err as Error).message}); ${text.length} bytes`);
    }
  }
  if (state['version'] !== 1) bad(`metadata.json version ${String(state['version'])}`);
  const section = (k: string): Record<string, unknown> => {
    const v = state[k] ?? (k === 'leases' ? {} : undefined);
    if (!isObject(v)) {
      bad(`metadata.json.${k} is not an object`);
      return {};
    }
    return v;
  };
  const images = section('images');
  const layersMeta = section('layers');
  const bundles = section('bundles');
  const leases = section('leases');

  // layers/
  const committed: string[] = [];
  const facts = new Map<string, LayerFacts>();
  const layersDir = join(workDir, 'layers');
  const probes: string[] = [];
  for (const alg of await names(layersDir)) {
    if (alg.startsWith('.probe-')) {
      probes.push(alg);
      continue;
    }
    if (alg !== 'sha256' && alg !== 'sha512') {
      bad(`unexpected layers/${alg}`);
      continue;
    }
    const hexLen = alg === 'sha256' ? 64 : 128;
    for (const hex of await names(join(layersDir, alg))) {
      const diffId = `${alg}:${hex}`;
      const dir = join(layersDir, alg, hex);
      if (!new RegExp(`^[0-9a-f]{${hexLen}}$`).test(hex)) {
        bad(`layers/${alg}/${hex} is not a digest`);
        continue;
      }
      let record: unknown;
      try {
        record = JSON.parse(await readFile(join(dir, 'layer.json'), 'utf8'));
      } catch (err) {
        bad(`layer ${diffId} is in layers/ without a readable layer.json (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        continue;
      }
      if (!isObject(record) || record['diffId'] !== diffId || typeof record['size'] !== 'number' || typeof record['entries'] !== 'number' ||
        (record['whiteoutFormat'] !== 'overlay' && record['whiteoutFormat'] !== 'marker')) {
        bad(`layer ${diffId} has a malformed layer.json: ${JSON.stringify(record)}`);
        continue;
      }
      if (record['format'] === 'erofs') await checkErofsImage(diffId, dir, record['image'], bad);
      else if (!(await lstat(join(dir, 'diff')).catch(() => undefined))?.isDirectory()) bad(`layer ${diffId} has no diff/ dir`);
      const f: LayerFacts = { size: record['size'], entries: record['entries'], whiteoutFormat: record['whiteoutFormat'] };
      committed.push(diffId);
      facts.set(diffId, f);
      const want = options.expect?.get(diffId);
      if (options.expect && !want) bad(`layer ${diffId} is committed but no image of the test has it`);
      if (want && (want.size !== f.size || want.entries !== f.entries || want.whiteoutFormat !== f.whiteoutFormat)) {
        bad(`layer ${diffId} committed as ${JSON.stringify(f)}, a clean pull commits ${JSON.stringify(want)}`);
      }
    }
  }
  const isCommitted = new Set(committed);

  for (const [digest, image] of Object.entries(images)) {
    const layers = isObject(image) && Array.isArray(image['layers']) ? image['layers'] : undefined;
    if (!layers) {
      bad(`image ${digest} has no layer list`);
      continue;
    }
    for (const l of layers) {
      const id = isObject(l) ? l['diffId'] : undefined;
      if (typeof id !== 'string') bad(`image ${digest} has a layer without diffId`);
      else {
        if (!isCommitted.has(id)) bad(`image ${digest} names layer ${id}, which is not committed`);
        if (!(id in layersMeta)) bad(`image ${digest} names layer ${id}, which metadata.json.layers lacks`);
      }
    }
  }

  const recordedOverlays = new Set<string>();
  for (const [path, b] of Object.entries(bundles)) {
    if (!isObject(b) || !Array.isArray(b['layers']) || !isObject(b['snapshot'])) {
      bad(`bundle ${path} record is malformed`);
      continue;
    }
    for (const id of b['layers']) if (typeof id !== 'string' || !isCommitted.has(id)) bad(`bundle ${path} uses layer ${String(id)}, which is not committed`);
    const snap = b['snapshot'];
    if (!existsSync(join(path, 'config.json'))) bad(`bundle ${path} is recorded but has no config.json`);
    if (typeof snap['rootfs'] !== 'string' || !existsSync(snap['rootfs'])) bad(`bundle ${path} is recorded but its rootfs is missing`);
    if (snap['snapshotter'] === 'overlay' || snap['snapshotter'] === 'erofs') {
      recordedOverlays.add(String(snap['id']));
      if (typeof snap['rootfs'] === 'string' && !isMountPoint(snap['rootfs'])) bad(`overlay bundle ${path} is recorded but its rootfs is not mounted`);
    }
  }

  const now = Date.now();
  for (const [id, lease] of Object.entries(leases)) {
    const expires = isObject(lease) && typeof lease['expiresAt'] === 'string' ? Date.parse(lease['expiresAt']) : NaN;
    if (!isObject(lease) || !Array.isArray(lease['layers']) || Number.isNaN(expires)) bad(`lease ${id} is malformed: ${JSON.stringify(lease)}`);
    else if (expires > now + MAX_LEASE_MS) bad(`lease ${id} expires ${lease['expiresAt']}, more than 6 h ahead`);
  }

  // Leftovers of processes.
  const staging = (await names(join(workDir, 'staging'))).map((name) => {
    const pid = ownerPid(name.split('-')[0] ?? '');
    return { name, pid: pid ?? NaN, alive: pid !== undefined && processAlive(pid) };
  });
  let lock: StoreReport['lock'];
  if (existsSync(join(workDir, 'metadata.lock'))) {
    const pid = ownerPid(await readFile(join(workDir, 'metadata.lock', 'pid'), 'utf8').catch(() => ''));
    lock = pid === undefined ? { pid, alive: false } : { pid, alive: processAlive(pid) };
  }
  const tempFiles = (await names(workDir)).filter((n) => n.startsWith('metadata.json.') && n.endsWith('.tmp'));
  const orphanOverlays = (await names(join(workDir, 'overlay'))).filter((id) => !recordedOverlays.has(id));

  if (options.settled) {
    const dead = staging.filter((s) => !s.alive);
    if (dead.length) bad(`staging of dead processes is still there after a new process ran: ${dead.map((s) => s.name).join(', ')}`);
    if (lock && !lock.alive) bad(`metadata.lock of a dead process (${String(lock.pid)}) is still there after a new process ran`);
    if (probes.length) bad(`whiteout probe dirs left in layers/: ${probes.join(', ')}`);
  }

  if (problems.length) throw new Error(`store ${workDir} is inconsistent:\n  ${problems.join('\n  ')}`);
  return {
    images: Object.keys(images).length,
    committed,
    layerFacts: facts,
    bundles: Object.keys(bundles).length,
    leases: Object.keys(leases).length,
    staging,
    lock,
    tempFiles,
    probes,
    orphanOverlays,
  };
}

/** An erofs layer's image is whole: the size and sha256 its layer.json records, and its dm-verity tree beside it. */
async function checkErofsImage(diffId: string, dir: string, image: unknown, bad: (m: string) => void): Promise<void> {
  if (!isObject(image) || typeof image['bytes'] !== 'number' || typeof image['sha256'] !== 'string') {
    bad(`erofs layer ${diffId} records no image: ${JSON.stringify(image)}`);
    return;
  }
  const file = join(dir, 'layer.erofs');
  const st = await lstat(file).catch(() => undefined);
  if (!st?.isFile() || st.size !== image['bytes']) {
    bad(`erofs layer ${diffId} has no whole layer.erofs (${st?.isFile() ? `${st.size}` : 'none'} of ${image['bytes']} bytes)`);
    return;
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  if (hash.digest('hex') !== image['sha256']) bad(`erofs layer ${diffId}: layer.erofs does not match the sha256 its layer.json records`);
  if (isObject(image['verity']) && !(await lstat(join(dir, 'layer.verity')).catch(() => undefined))?.isFile()) bad(`erofs layer ${diffId} has no layer.verity`);
}

/** The bundle records' paths in metadata.json, read directly (empty if the file is absent). */
export function recordedBundles(workDir: string): Set<string> {
  const path = join(workDir, 'metadata.json');
  if (!existsSync(path)) return new Set();
  const state: unknown = JSON.parse(readFileSync(path, 'utf8'));
  return new Set(isObject(state) && isObject(state['bundles']) ? Object.keys(state['bundles']) : []);
}

export interface SpawnedCli {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  /** Resolves when the process is gone (and reaped), with what it printed. */
  readonly done: Promise<Finished>;
  exited(): boolean;
  /** SIGKILL to the whole process group (the CLI, its unpack threads, its igzip/zstd children). False if it had already exited. */
  kill9(): boolean;
}

/**
 * Starts the CLI from source exactly as helpers/cli.ts does (same command,
 * args, env, cwd), but detached into its own process group so that the test
 * can kill -9 the group at a moment of its choosing.
 */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): SpawnedCli {
  const child = spawn(process.execPath, sourceCliArgs(args), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pid = child.pid;
  if (pid === undefined) throw new Error('spawn gave no pid');
  live.add(child);
  const { done, exited } = collect(child);
  void done.finally(() => live.delete(child)).catch(() => undefined);
  return {
    child,
    pid,
    startedAt: Date.now(),
    done,
    exited,
    kill9: () => {
      if (exited()) return false;
      try {
        process.kill(-pid, 'SIGKILL');
        return true;
      } catch {
        return false;
      }
    },
  };
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) {
    try {
      if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});
