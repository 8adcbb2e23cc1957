/**
 * Crash safety (issue 7): kill -9 at random points of real pulls against a
 * real registry, all into one work dir; after every kill the store must be
 * consistent, and at the end a verifying pull of each image must give the
 * same rootfs as a clean pull, with the crashes' staging gone.
 *
 * `pull --json` prints only the final result (no progress lines), so the
 * phase a kill hit is read from the store afterwards: the killed pid's
 * staging dirs, the bundle dir, mounts, newly committed layers.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startRegistry, type StartedRegistry } from '../harness/registry.js';
import { assertCleanOutcome, assertCliError, cli } from '../helpers/cli.js';
import { buildImage, type BuiltImage } from '../helpers/image-builder.js';
import { unmountBelow } from '../helpers/mounts.js';
import { checkStore, isMountPoint, recordedBundles, spawnCli, type LayerFacts, type SpawnedCli } from '../helpers/store-check.js';
import { tar, type TarEntry } from '../helpers/tar-writer.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { treeOf } from '../helpers/tree.js';

const SEED = 0x7e57c0de;
/** Random kill points; two targeted ones (mid-unpack, mid-copy) come on top: 12 in all. */
const RANDOM_KILLS = 10;
const MTIME = 1_650_000_000;


const rand = seededRandom(SEED);

function noise(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

/** `count` small files of random bytes in 8 dirs under `prefix`, a symlink and a hard link among them. */
function smallFiles(prefix: string, count: number): TarEntry[] {
  const out: TarEntry[] = [{ name: `${prefix}/`, type: 'dir', mtime: MTIME }];
  for (let d = 0; d < 8; d++) out.push({ name: `${prefix}/d${d}/`, type: 'dir', mtime: MTIME });
  for (let i = 0; i < count; i++) out.push({ name: `${prefix}/d${i % 8}/f${i}`, content: noise(100 + Math.floor(rand() * 1400)), mtime: MTIME });
  out.push({ name: `${prefix}/link`, type: 'symlink', linkname: 'd0/f0', mtime: MTIME });
  out.push({ name: `${prefix}/hard`, type: 'hardlink', linkname: `${prefix}/d1/f1`, mtime: MTIME });
  return out;
}

const baseLayer = tar([
  { name: 'etc/', type: 'dir', mtime: MTIME },
  { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n', mtime: MTIME },
  { name: 'usr/', type: 'dir', mtime: MTIME },
  ...smallFiles('usr/base', 250),
  { name: 'usr/base.bin', content: noise(1_200_000), mtime: MTIME },
  { name: 'gone', content: 'removed by a1', mtime: MTIME },
  { name: 'opq/', type: 'dir', mtime: MTIME },
  { name: 'opq/old', content: 'hidden by a1', mtime: MTIME },
]);
const imageA = buildImage({
  layers: [
    { tar: baseLayer },
    { tar: tar([...smallFiles('usr/a1', 200), { name: 'usr/a1.bin', content: noise(800_000), mtime: MTIME }, { name: '.wh.gone', content: '', mtime: MTIME },
      { name: 'opq/', type: 'dir', mtime: MTIME }, { name: 'opq/.wh..wh..opq', content: '', mtime: MTIME }, { name: 'opq/new', content: 'n', mtime: MTIME }]) },
    { tar: tar([...smallFiles('usr/a2', 150), { name: 'usr/a2.bin', content: noise(600_000), mtime: MTIME }]) },
    { tar: tar([...smallFiles('usr/a3', 60), { name: 'usr/a3.bin', content: noise(1_000_000), mtime: MTIME }]) },
  ],
});
const imageB = buildImage({
  layers: [
    { tar: baseLayer },
    { tar: tar([...smallFiles('usr/b1', 200), { name: 'usr/b1.bin', content: noise(1_000_000), mtime: MTIME }]) },
    { tar: tar([...smallFiles('usr/b2', 80), { name: 'usr/b2.bin', content: noise(300_000), mtime: MTIME }]) },
  ],
});
const imageSmall = buildImage({ layers: [{ tar: tar([{ name: 'hello', content: 'hello\n', mtime: MTIME }, { name: 'etc/', type: 'dir', mtime: MTIME }]) }] });

type Snap = 'copy' | 'overlay';
interface TestImage {
  readonly name: string;
  readonly built: BuiltImage;
  ref: string;
}
const A: TestImage = { name: 'a', built: imageA, ref: '' };
const B: TestImage = { name: 'b', built: imageB, ref: '' };
const SMALL: TestImage = { name: 'small', built: imageSmall, ref: '' };

let dir: string;
let registry: StartedRegistry;
let host: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-crash-'));
  await chmod(dir, 0o755);
  registry = await startRegistry('open');
  host = registry.host;
  for (const img of [A, B, SMALL]) {
    await registry.pushImage(`crash/${img.name}`, 'v1', img.built);
    img.ref = `${host}/crash/${img.name}:v1`;
  }
});

after(async () => {
  if (dir) unmountBelow(dir);
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function pullArgs(img: TestImage, bundle: string, workDir: string, snapshotter: Snap, extra: string[] = []): string[] {
  return ['pull', img.ref, bundle, '--work-dir', workDir, '--insecure-registry', host, '--snapshotter', snapshotter, '--json', ...extra];
}

/** Polls every 2 ms until `cond` holds (true) or the process exits first (false). */
async function until(p: SpawnedCli, cond: () => boolean, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!p.exited()) {
    if (cond()) return true;
    if (Date.now() > deadline) throw new Error(`condition not reached in ${timeoutMs} ms`);
    await sleep(2);
  }
  return false;
}

const entries = (path: string): string[] => {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
};
const ownStaging = (workDir: string, pid: number): string[] => entries(join(workDir, 'staging')).filter((n) => n.startsWith(`${pid}-`));

/** A clean pull's layer.json facts, keyed by diff_id. */
async function layerFactsOf(workDir: string): Promise<Map<string, LayerFacts>> {
  return new Map((await checkStore(workDir)).layerFacts);
}

describe('kill -9 during pulls', () => {
  it('leaves a consistent store every time, and a verifying pull gives the clean rootfs', async (t) => {
    const started = Date.now();
    const refWork = join(dir, 'ref-work');
    const shared = join(dir, 'shared-work');

    // Clean pulls in a separate work dir: the reference trees, and how long a pull takes.
    const timed = async (img: TestImage, bundle: string, snap: Snap): Promise<{ startup: number; work: number }> => {
      const p = spawnCli(pullArgs(img, bundle, refWork, snap));
      await until(p, () => existsSync(bundle));
      const startup = Date.now() - p.startedAt;
      const r = await p.done;
      assert.equal(r.code, 0, r.stderr);
      return { startup, work: Date.now() - p.startedAt - startup };
    };
    const coldA = await timed(A, join(dir, 'ref-a'), 'copy');
    const warmA = await timed(A, join(dir, 'ref-a-overlay'), 'overlay');
    const coldB = await timed(B, join(dir, 'ref-b'), 'copy');
    const refTree = new Map<string, string[]>([
      ['a', await treeOf(join(dir, 'ref-a', 'rootfs'))],
      ['b', await treeOf(join(dir, 'ref-b', 'rootfs'))],
    ]);
    assert.deepEqual(await treeOf(join(dir, 'ref-a-overlay', 'rootfs')), refTree.get('a'), 'overlay and copy give the same tree');
    const expect = await layerFactsOf(refWork);
    assert.equal(expect.size, 6, 'a: base + 3, b: base (shared) + 2');
    const startupMs = Math.max(coldA.startup, warmA.startup, coldB.startup);
    const warmMs = warmA.work;

    const phases = new Map<string, number>();
    const note = (phase: string): void => {
      phases.set(phase, (phases.get(phase) ?? 0) + 1);
    };
    let pulls = 3;
    let kills = 0;
    let finished = 0;
    let halfMade = 0;
    const rePulls: string[] = [];
    const bundleRms: string[] = [];
    let leakedMounts = 0;
    const deadStaging = new Set<string>();
    let lastFacts = new Map<string, LayerFacts>();

    /**
     * One pull into the shared work dir, killed when `killWhen` says so.
     * `killWhen` returns after waiting; the pull may have finished by then.
     */
    const crashPull = async (i: number, img: TestImage, snap: Snap, label: string, killWhen: (p: SpawnedCli, bundle: string) => Promise<void>): Promise<void> => {
      const bundle = join(dir, `crash-${i}`);
      const before = new Set((await checkStore(shared, { expect })).committed);
      const p = spawnCli(pullArgs(img, bundle, shared, snap));
      pulls++;
      await killWhen(p, bundle);
      const killed = p.kill9();
      const r = await p.done;
      // What the kill hit, read from what it left.
      const recorded = recordedBundles(shared).has(bundle);
      const staged = ownStaging(shared, p.pid);
      const report = await checkStore(shared, { expect });
      lastFacts = new Map(report.layerFacts);
      const newLayers = report.committed.filter((d) => !before.has(d)).length;
      let phase: string;
      if (!killed || r.signal !== 'SIGKILL') {
        assert.equal(r.code, 0, `pull ${i} ended by itself and must have succeeded: ${r.stderr}`);
        finished++;
        phase = 'finished';
      } else {
        kills++;
        if (recorded) phase = 'after-record';
        else if (!existsSync(bundle)) phase = 'startup';
        else if (staged.length) phase = 'unpack';
        else if (isMountPoint(join(bundle, 'rootfs')) || entries(join(bundle, 'rootfs')).length) phase = 'snapshot';
        else phase = newLayers ? 'between-layers' : 'resolve';
        for (const s of staged) deadStaging.add(s);
      }
      note(`${label}:${phase}`);
      t.diagnostic(`#${i} ${img.name}/${snap} ${label}: ${phase}${newLayers ? ` (+${newLayers} layers)` : ''}, staging left ${staged.length}, t=${Date.now() - p.startedAt} ms`);

      // A half-made bundle: the user pulls into the same path again, or tries bundle rm.
      if (killed && existsSync(bundle) && !recorded) {
        halfMade++;
        // Once per snapshotter (each CLI run costs seconds); the mid-copy kill guarantees the copy case,
        // the overlay case has its own test below.
        if (!rePulls.some((x) => x.startsWith(`${snap}:`))) {
          const again = await cli(pullArgs(img, bundle, shared, snap));
          pulls++;
          const outcome = assertCleanOutcome(again, `pull into the half-made bundle of #${i}`);
          assert.ok(outcome === 'ok' || outcome === 'BUNDLE_EXISTS', `pull into a half-made bundle: ${again.stderr}`);
          rePulls.push(`${snap}:${outcome}`);
          lastFacts = new Map((await checkStore(shared, { expect })).layerFacts);
          if (outcome !== 'ok' && bundleRms.length === 0) {
            bundleRms.push(`${snap}:${assertCleanOutcome(await cli(['bundle', 'rm', bundle, '--work-dir', shared]), 'bundle rm of a half-made bundle')}`);
          }
        }
        if (!recordedBundles(shared).has(bundle)) {
          // What is left is the user's to remove, as after a crashed containerd pull.
          if (isMountPoint(join(bundle, 'rootfs'))) leakedMounts++;
          unmountBelow(bundle);
          await rm(bundle, { recursive: true, force: true });
        }
      }
    };

    let i = 0;
    // Targeted: mid-unpack on a cold store, so staging is certainly left behind.
    await crashPull(i++, A, 'copy', 'mid-unpack', async (p) => {
      assert.ok(await until(p, () => ownStaging(shared, p.pid).some((s) => entries(join(shared, 'staging', s, 'diff')).length > 0)), 'the pull reached unpack');
    });
    assert.ok(deadStaging.size > 0, 'a kill mid-unpack leaves staging behind');

    // Stratified: one kill point in each N-th of the range, in shuffled order, so that they
    // spread over the whole pull whatever the seed.
    const points = Array.from({ length: RANDOM_KILLS }, (_, k) => (k + rand()) / RANDOM_KILLS);
    for (let k = points.length - 1; k > 0; k--) {
      const j = Math.floor(rand() * (k + 1));
      [points[k], points[j]] = [points[j]!, points[k]!];
    }
    for (let k = 0; k < RANDOM_KILLS; k++) {
      const img = rand() < 0.5 ? A : B;
      const snap: Snap = rand() < 0.5 ? 'copy' : 'overlay';
      const u = points[k]!;
      const inStartup = rand() < 0.15;
      await crashPull(i++, img, snap, 'random', async (p, bundle) => {
        if (inStartup) {
          await sleep(u * startupMs);
          return;
        }
        if (!(await until(p, () => existsSync(bundle)))) return;
        // Between 0 and how long a clean pull of it takes in the store's current state, plus a half:
        // on a loaded machine the reference pull alone is no good bound (the shared store's pulls
        // measured up to twice as long), and the last moments (record, exit) deserve kills too.
        // Pulls that finish warm the store, so that later kills can hit the snapshot.
        const cold = img.built.layers.some((l) => !lastFacts.has(l.diffId));
        await sleep(u * 1.5 * (cold ? (img === A ? coldA.work : coldB.work) : warmMs));
      });
    }

    // Targeted: mid-copy of the rootfs, so a half-made bundle is certainly left behind.
    let copyHalf = false;
    for (let attempt = 0; attempt < 3 && !copyHalf; attempt++) {
      const before = halfMade;
      await crashPull(i++, A, 'copy', 'mid-copy', async (p, bundle) => {
        await until(p, () => entries(join(bundle, 'rootfs')).length > 0);
      });
      copyHalf = halfMade > before;
    }
    assert.ok(copyHalf, 'a kill mid-copy left a half-made bundle in 3 attempts');

    // Verifying pulls into the same work dir.
    const verify: [TestImage, Snap][] = [[A, 'copy'], [B, 'overlay']];
    for (const [img, snap] of verify) {
      const bundle = join(dir, `verify-${img.name}`);
      const r = await cli(pullArgs(img, bundle, shared, snap));
      pulls++;
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await treeOf(join(bundle, 'rootfs')), refTree.get(img.name), `rootfs of ${img.name} after the crashes`);
    }
    const settled = await checkStore(shared, { expect, settled: true });
    assert.deepEqual(settled.staging, [], 'no staging left once a new pull ran');
    for (const s of deadStaging) assert.equal(existsSync(join(shared, 'staging', s)), false, `stale staging ${s} was cleaned`);
    assert.equal(settled.lock, undefined, 'no lock left');
    assert.equal(settled.committed.length, 6);

    // No layer is committed without verification: each equals the clean pull's, tree for tree.
    for (const id of settled.committed) {
      const [alg, hex] = id.split(':') as [string, string];
      assert.deepEqual(await treeOf(join(shared, 'layers', alg, hex, 'diff')), await treeOf(join(refWork, 'layers', alg, hex, 'diff')), `layer ${id}`);
    }

    const gc = await cli(['gc', '--work-dir', shared, '--json']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.equal(gc.stderr, '');
    const afterGc = await checkStore(shared, { expect, settled: true });
    assert.equal(afterGc.committed.length, 6, 'gc keeps every layer an image uses');
    const list = await cli(['list', '--work-dir', shared, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const listed = (JSON.parse(list.stdout) as { manifestDigest: string; names: string[] }[]);
    assert.deepEqual(listed.map((x) => x.manifestDigest).sort(), [imageA.manifestDigest, imageB.manifestDigest].sort());

    const summary = `crash: ${pulls} pulls started (3 clean reference, ${verify.length} verifying, ${rePulls.length} into half-made bundles), ` +
      `${kills} killed with SIGKILL, ${finished} finished before their kill point; ` +
      `phases ${[...phases].map(([k, v]) => `${k}=${v}`).join(' ')}; ` +
      `stale staging dirs cleaned ${deadStaging.size}; half-made bundles ${halfMade} (re-pull ${rePulls.join(',') || '-'}; bundle rm ${bundleRms.join(',') || '-'}; ` +
      `overlay mounts left mounted ${leakedMounts}); leases of dead pulls ${afterGc.leases}; metadata temp files left ${afterGc.tempFiles.length}; ` +
      `orphan overlay dirs ${afterGc.orphanOverlays.length}; timings startup ${startupMs} ms, cold a ${coldA.work} ms, cold b (base cached) ${coldB.work} ms, warm ${warmMs} ms; ${Math.round((Date.now() - started) / 1000)} s`;
    t.diagnostic(summary);
    console.log(summary);
    const randomKills = [...phases].filter(([k]) => k.startsWith('random:') && k !== 'random:finished').reduce((n, [, v]) => n + v, 0);
    assert.ok(randomKills >= RANDOM_KILLS / 3, `a third of the random kill points hit a running pull (${randomKills})`);
  });
});

/** A pid that certainly ran and is certainly gone. */
function deadPid(): number {
  const r = spawnSync('true');
  assert.equal(r.status, 0);
  return r.pid;
}

// Independent of each other (own work dirs), so they run side by side.
describe('what a crash leaves behind', { concurrency: true }, () => {
  it('the metadata file survives a crash mid-write: a truncated temp file and the lock of a dead writer do not stop the next run', async (t) => {
    const work = join(dir, 'meta-work');
    const b1 = join(dir, 'meta-1');
    const first = await cli(pullArgs(SMALL, b1, work, 'copy'));
    assert.equal(first.code, 0, first.stderr);

    // What FsMetadataStore.write leaves when killed between open(tmp) and rename: a
    // partial metadata.json.<pid>.tmp, and the lock dir naming the dead pid.
    const metaPath = join(work, 'metadata.json');
    const meta = await readFile(metaPath, 'utf8');
    const dead = deadPid();
    const tmpFile = join(work, `metadata.json.${dead}.tmp`);
    await writeFile(tmpFile, meta.slice(0, Math.floor(meta.length / 2)));
    await mkdir(join(work, 'metadata.lock'));
    await writeFile(join(work, 'metadata.lock', 'pid'), String(dead));
    await checkStore(work);

    const list = await cli(['list', '--work-dir', work, '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual((JSON.parse(list.stdout) as { manifestDigest: string }[]).map((x) => x.manifestDigest), [imageSmall.manifestDigest]);

    const t0 = Date.now();
    const second = await cli(pullArgs(SMALL, join(dir, 'meta-2'), work, 'copy'));
    assert.equal(second.code, 0, second.stderr);
    const tookMs = Date.now() - t0;
    assert.ok(tookMs < 20_000, `the dead writer's lock is taken over, not waited out for 30 s (${tookMs} ms)`);
    let report = await checkStore(work, { settled: true });
    assert.equal(report.images, 1);
    assert.equal(report.bundles, 2);
    assert.equal(JSON.parse(await readFile(metaPath, 'utf8')).version, 1);

    // Killed between mkdir(metadata.lock) and writing its pid: a lock dir with no owner, older than 5 s.
    await mkdir(join(work, 'metadata.lock'));
    const old = new Date(Date.now() - 60_000);
    await utimes(join(work, 'metadata.lock'), old, old);
    const rmB = await cli(['bundle', 'rm', b1, '--work-dir', work]);
    assert.equal(rmB.code, 0, rmB.stderr);
    report = await checkStore(work, { settled: true });
    assert.equal(report.bundles, 1);
    assert.equal(existsSync(b1), false);

    // A metadata.json damaged outside image-ts (not something a crash can do, given
    // temp + fsync + rename): a one-line STORE error, no stack trace.
    await writeFile(metaPath, meta.slice(0, 10));
    assertCliError(await cli(['list', '--work-dir', work]), 'STORE');
    await writeFile(metaPath, meta);
    t.diagnostic(`metadata: lock of dead pid ${dead} taken over; the next pull took ${tookMs} ms; temp files of dead writers left: ${report.tempFiles.join(', ') || 'none'}`);
  });

  it('a lock dir whose pid file is empty (killed between creating and writing it) is taken over', async (t) => {
    // writeFile(metadata.lock/pid) is open(O_CREAT|O_TRUNC) then write: a kill -9 in between
    // (or ENOSPC on the write, see no-space.test.ts) leaves the file empty.
    const work = join(dir, 'lock-work');
    await mkdir(join(work, 'metadata.lock'), { recursive: true });
    await writeFile(join(work, 'metadata.lock', 'pid'), '');
    const old = new Date(Date.now() - 60_000);
    await utimes(join(work, 'metadata.lock'), old, old);
    const p = spawnCli(['gc', '--work-dir', work]);
    const stop = new AbortController();
    // Bounded: a lock never taken over would cost the full 30 s lock wait.
    void sleep(15_000, undefined, { signal: stop.signal }).then(() => p.kill9(), () => undefined);
    const r = await p.done;
    stop.abort();
    t.diagnostic(`gc with an empty lock pid file: ${r.signal === 'SIGKILL' ? 'still waiting after 15 s' : `exit ${r.code} ${r.stderr.trim()}`}`);
    // An empty pid is no owner (kill(0, 0) would signal our own group and look alive): taken over after 5 s.
    assert.equal(r.signal === 'SIGKILL' ? 'still waiting' : r.code, 0, r.stderr);
    await checkStore(work, { settled: true });
  });

  it('a pull killed between its overlay mount and its bundle record is undone by the next pull into the same bundle; bundle rm + gc then leave no mount and no overlay dir', async (t) => {
    const work = join(dir, 'ov-work');
    const bundle = join(dir, 'ov-bundle');
    const rootfs = join(bundle, 'rootfs');
    // An attestation agent that accepts and never answers: the pull stops in its
    // measurement, after the mount and config.json, before the bundle is recorded.
    const sock = join(dir, 'aa.sock');
    const conns = new Set<Socket>();
    const server: Server = createServer((s) => {
      conns.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(sock, r));
    let p: SpawnedCli | undefined;
    try {
      const config = join(dir, 'aa.json');
      await writeFile(config, JSON.stringify({ attestation_agent: { address: `unix://${sock}` } }));
      p = spawnCli(pullArgs(SMALL, bundle, work, 'overlay', ['--config', config]));
      const pull = p;
      const reached = await until(pull, () => conns.size > 0 && isMountPoint(rootfs) && existsSync(join(bundle, 'config.json')), 30_000);
      if (!reached) assert.fail(`the pull ended before its measurement: ${(await pull.done).stderr}`);
      assert.ok(pull.kill9());
      assert.equal((await pull.done).signal, 'SIGKILL');

      const crashed = await checkStore(work);
      assert.equal(crashed.bundles, 0, 'the bundle was never recorded');
      assert.equal(crashed.images, 1, 'the image was recorded before the snapshot');
      assert.equal(crashed.orphanOverlays.length, 1, 'the dead pull left its overlay dir');
      assert.ok(isMountPoint(rootfs), 'and its mount');

      // The next pull into the same path undoes the dead one (its lease names the bundle) and succeeds.
      const again = await cli(pullArgs(SMALL, bundle, work, 'overlay'));
      assert.equal(again.code, 0, again.stderr);
      assert.ok(isMountPoint(rootfs), 'the new pull mounted its own rootfs');
      const rm = await cli(['bundle', 'rm', bundle, '--work-dir', work]);
      assert.equal(rm.code, 0, rm.stderr);
      const gc = await cli(['gc', '--work-dir', work]);
      assert.equal(gc.code, 0, gc.stderr);
      const settled = await checkStore(work, { settled: true });
      const stillMounted = isMountPoint(rootfs);
      t.diagnostic(`overlay crash: re-pull into the same bundle succeeded; after bundle rm + gc: rootfs mounted ${stillMounted}, orphan overlay dirs ${settled.orphanOverlays.join(', ') || 'none'}, leases ${settled.leases}`);
      assert.equal(stillMounted, false, 'no mount is left on the bundle path');
      assert.deepEqual(settled.orphanOverlays, [], 'the dead pull\'s overlay dir was removed with its lease');
      assert.equal(settled.leases, 0, 'the dead pull\'s lease is gone');
    } finally {
      p?.kill9();
      for (const s of conns) s.destroy();
      server.close();
    }
  });
});
