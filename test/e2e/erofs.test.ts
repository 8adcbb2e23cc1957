/**
 * The erofs snapshotter (issue 16) against the real registry: each layer a
 * compressed EROFS image in the store, mounted through an autoclear loop
 * device and stacked with overlayfs.
 *
 *  - trees: a features image (whiteouts, opaque dirs, hard links within a
 *    layer and to a lower layer's file, implicit dirs, symlinks, devices,
 *    fifos, xattrs, setuid, names that are not UTF-8, a sparse file) and a
 *    Debian image (test/harness/debian-layers.ts: the packages installed on
 *    this machine, archived by GNU tar) give the overlay-directory bundle
 *    file for file, cold and warm;
 *  - each layer's dm-verity root hash verifies with veritysetup, and its
 *    sha256 with sha256sum;
 *  - a damaged image is refused by --erofs-check sha256 and verity;
 *  - bundle rm, rm and gc give back every mount, loop device and byte, and
 *    df/list/inspect count them;
 *  - serve and the config file take the format;
 *  - kill -9 at random points of erofs pulls (mkfs.erofs included) leaves
 *    nothing that the next pull or gc does not take back.
 *
 * The tests share the images and some stores (made by whichever test needs
 * them first), and run in file order: the lifecycle test takes the features
 * store apart after the verity test has read it. Fixtures are in
 * test/harness/erofs-images.ts, what is read of the store and the kernel in
 * test/helpers/erofs-store.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { findProgram } from '../../src/adapters/outbound/erofs/mkfs-erofs.js';
import { ProtoReader, ProtoWriter } from '../../src/adapters/outbound/rpc/protobuf.js';
import { TtrpcClient } from '../../src/adapters/outbound/rpc/ttrpc.js';
import { debianLayers } from '../harness/debian-layers.js';
import { bulkEntries, crashBase, crashTop, featureBaseLayer, featureMiddle, featureTop, FRESH_IMPLICIT, heavyEntries, MTIME } from '../harness/erofs-images.js';
import { startRegistry, type StartedRegistry } from '../harness/registry.js';
import { buildCli, type BuiltCli, type CliProcess } from '../helpers/built-cli.js';
import { assertCleanOutcome, assertCliError } from '../helpers/cli.js';
import {
  allocated, fileSha256, hardLinkGroups, kernelHold, layersOnDisk, leaksOf, loopDevicesBackedBy, mkfsProcessesFor, mountsUnder, recordedSnapshots,
  type LayerOnDisk,
} from '../helpers/erofs-store.js';
import { buildImage, type BuiltImage } from '../helpers/image-builder.js';
import { unmountBelow } from '../helpers/mounts.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { checkStore, recordedBundles } from '../helpers/store-check.js';
import { tar, type TarEntry } from '../helpers/tar-writer.js';
import { treeOf } from '../helpers/tree.js';

const SEED = 0xe1f05;
/** Random kill points of the crash test; targeted ones (in mkfs.erofs, and between the layer mounts and the record) come first. */
const RANDOM_KILLS = 7;
/** Small files in the crash images' big layer: unpacking them is most of a pull. */
const BULK_FILES = 5000;
/** Big text files in the layer whose mkfs.erofs a targeted kill interrupts. */
const HEAVY_FILES = 600;

let dir: string;
let registry: StartedRegistry;
let cli: BuiltCli;

interface Pushed {
  readonly ref: string;
  readonly image: BuiltImage;
}
let features: Pushed;
let debian: Pushed;
let debianInfo: ReturnType<typeof debianLayers>;

// ---------------------------------------------------------------------------
// Running the CLI

const pullArgs = (ref: string, bundle: string, work: string, ...extra: string[]): string[] =>
  ['pull', ref, bundle, '--work-dir', work, '--insecure-registry', registry.host, '--json', ...extra];

async function pullOk(ref: string, bundle: string, work: string, ...extra: string[]): Promise<string> {
  const r = await cli.run(pullArgs(ref, bundle, work, ...extra));
  assert.equal(r.code, 0, `pull ${ref} into ${bundle}: ${r.stderr}`);
  return join(bundle, 'rootfs');
}

async function runOk(args: string[]): Promise<string> {
  const r = await cli.run(args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  assert.equal(r.stderr, '', `${args.join(' ')} warns`);
  return r.stdout;
}

async function json<T>(args: string[]): Promise<T> {
  return JSON.parse(await runOk([...args, '--json'])) as T;
}

interface Df {
  formats: { directory: { layers: number; bytes: number }; erofs: { layers: number; bytes: number } };
  layers: number;
  bytes: number;
}

/** The tree with the made-up times of the fresh implicit directories hidden. */
function madeUpTimesHidden(tree: readonly string[]): string[] {
  return tree.map((l) => (FRESH_IMPLICIT.some((p) => l.startsWith(`${p} `)) ? l.replace(/ t-?\d+$/, ' t?') : l));
}

/** Flips the bits of the byte in the middle of the layer's image. */
function damage(layer: LayerOnDisk): number {
  const path = join(layer.dir, 'layer.erofs');
  const fd = fs.openSync(path, 'r+');
  try {
    const at = Math.floor(fs.fstatSync(fd).size / 2);
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0]! ^= 0xff;
    fs.writeSync(fd, b, 0, 1, at);
    return at;
  } finally {
    fs.closeSync(fd);
  }
}

/** The largest layer image of a store: the one a damage in the middle hits in data. */
async function largestErofsLayer(work: string): Promise<LayerOnDisk> {
  const layers = (await layersOnDisk(work)).filter((l) => l.record.format === 'erofs');
  assert.ok(layers.length > 0, `no erofs layer in ${work}`);
  return layers.sort((a, b) => b.record.image!.bytes - a.record.image!.bytes)[0]!;
}

/** Memoized: a test that needs what an earlier one made gets it, whichever runs first. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= make());
}

before(async () => {
  assert.equal(process.getuid?.(), 0, 'the erofs snapshotter needs root (loop devices, mounts, overlay whiteouts)');
  // Fail, never skip: scripts/ensure-deps.sh installs both.
  for (const tool of ['mkfs.erofs', 'veritysetup']) assert.ok(findProgram(tool), `${tool} is missing: run scripts/ensure-deps.sh`);
  assert.match(fs.readFileSync('/proc/filesystems', 'utf8'), /\terofs\n/, 'the kernel has no erofs');
  assert.ok(fs.existsSync('/dev/loop-control'), 'no loop devices here');
  dir = await mkdtemp(join(tmpdir(), 'image-ts-erofs-'));
  fs.chmodSync(dir, 0o755);
  registry = await startRegistry('open', { parentDir: dir });
  cli = await buildCli(dir);

  const base = featureBaseLayer(join(dir, 'features-src'));
  const featuresImage = buildImage({ layers: [{ tar: base }, { tar: tar(featureMiddle), compression: 'zstd' }, { tar: tar(featureTop) }] });
  await registry.pushImage('erofs/features', 'v1', featuresImage);
  features = { ref: `${registry.host}/erofs/features:v1`, image: featuresImage };

  debianInfo = debianLayers(join(dir, 'debian-src'));
  const debianImage = buildImage({ layers: debianInfo.tars.map((t, i) => ({ tar: t, compression: i < 2 ? 'zstd' as const : 'gzip' as const })) });
  await registry.pushImage('erofs/debian', 'v1', debianImage);
  debian = { ref: `${registry.host}/erofs/debian:v1`, image: debianImage };
});

after(async () => {
  if (dir) unmountBelow(dir);
  await registry?.stop();
  await cli?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// Stores the tests share (each made by the first test that needs it).
const featureStores = once(async () => {
  const ov = join(dir, 'feat-ov-work');
  const er = join(dir, 'feat-er-work');
  const overlay = await pullOk(features.ref, join(dir, 'feat-overlay'), ov, '--snapshotter', 'overlay');
  const erofs = await pullOk(features.ref, join(dir, 'feat-erofs'), er, '--snapshotter', 'erofs');
  const reference = await treeOf(overlay, { mtimes: true });
  return { ov, er, overlay, erofs, reference };
});

const debianStores = once(async () => {
  const ov = join(dir, 'deb-ov-work');
  const er = join(dir, 'deb-er-work');
  const t0 = Date.now();
  const overlay = await pullOk(debian.ref, join(dir, 'deb-overlay'), ov, '--snapshotter', 'overlay');
  const t1 = Date.now();
  const erofs = await pullOk(debian.ref, join(dir, 'deb-erofs'), er, '--snapshotter', 'erofs');
  return { ov, er, overlay, erofs, overlayMs: t1 - t0, erofsMs: Date.now() - t1 };
});

describe('erofs snapshotter', () => {
  it('the features image: the erofs bundle is the overlay-directory bundle file for file, cold and warm', async (t) => {
    const s = await featureStores();
    const layers = await layersOnDisk(s.er);
    assert.deepEqual(layers.map((l) => l.diffId).sort(), features.image.layers.map((l) => l.diffId).sort());
    for (const l of layers) {
      assert.equal(l.record.format, 'erofs', `${l.diffId} is stored as an image`);
      assert.deepEqual(fs.readdirSync(l.dir).sort(), ['layer.erofs', 'layer.json', 'layer.verity'], 'the staged tree is gone');
    }
    assert.ok((await layersOnDisk(s.ov)).every((l) => l.record.format === undefined && fs.existsSync(join(l.dir, 'diff'))), 'the overlay store keeps directories');
    const middle = layers.find((l) => l.diffId === features.image.layers[1]!.diffId)!;
    assert.deepEqual(middle.record.lowerLinks, [['new/t-link', 'lib/t']], 'the middle layer links to a lower file');
    assert.deepEqual([...(middle.record.implicitDirs ?? [])].sort(), ['data', 'imp', 'imp/sub']);
    const rootfsMount = mountsUnder(s.erofs);
    assert.equal(rootfsMount[0]?.fstype, 'overlay', 'the bundle is an overlay mount');
    assert.equal(mountsUnder(join(s.er, 'overlay')).filter((m) => m.fstype === 'erofs' && /^\/dev\/loop\d+$/.test(m.source)).length, 3, 'one loop-mounted image per layer');

    // The cases are in the tree (so that equal trees mean something).
    const reference = s.reference;
    const line = (path: string): string => reference.find((l) => l.startsWith(`${path} `)) ?? `${path}: absent`;
    for (const gone of ['gone ', 'gonedir/sub', 'caf\\xe9 ', 'keep/b ', 'opaque/a ', 'opaque/b ', 'ghost ', 'bin/app2 ']) {
      assert.ok(!reference.some((l) => l.startsWith(gone)), `${gone.trim()} is deleted`);
    }
    for (const [path, pattern] of [
      ['gonedir/again', / 100000 644 /], ['opaque/c', / 100000 644 /], ['data/sparse', / 3000007 n1 /], ['dev/null', /^dev\/null 20000 \d+ 0:0 +dev 259 /],
      ['dev/loop200', / 60000 \d+ 0:0 +dev 1992 /], ['fifo', / 10000 /], ['new/fifo', / 10000 /], ['bin/app', / 4755 1000:1000 12 n2 .*security\.capability=/],
      ['new/suid', / 4755 /], ['new/sgid', / 2711 0:42 /], ['srv', / 2775 0:50 /], ['tmp', / 1777 /], ['owned', / 3000000:70000 /],
      ['data/x', /user\.comment="plain"/], ['new/one', /user\.k="v"/], ['lib64', /-> lib /], ['abs-link', /-> \/etc\/hostname /], ['new/link', /-> \.\.\/data\/x /],
      ['d\\xff/x', / 100000 644 /], ['new/\\xff\\xfe', / 100000 644 /], ['imp/sub/file', / 100000 644 /], ['old', / t-315619200$/], ['data/added', / 100000 /],
    ] as const) {
      assert.match(line(path), pattern, path);
    }
    const groups = await hardLinkGroups(s.overlay);
    // bin/app: its other name went in the top layer; overlayfs shows the lower inode's count.
    assert.deepEqual(groups, [['bin/app'], ['data/big', 'data/big-link'], ['lib/t', 'new/t-link'], ['new/one', 'new/two']]);

    const tree = await treeOf(s.erofs, { mtimes: true });
    assert.deepEqual(madeUpTimesHidden(tree), madeUpTimesHidden(reference));
    assert.deepEqual(await hardLinkGroups(s.erofs), groups);

    // Warm: the layers are images already; none is built again.
    const inodes = layers.map((l) => fs.statSync(join(l.dir, 'layer.erofs')).ino);
    const warm = await pullOk(features.ref, join(dir, 'feat-erofs-warm'), s.er, '--snapshotter', 'erofs');
    assert.deepEqual((await layersOnDisk(s.er)).map((l) => fs.statSync(join(l.dir, 'layer.erofs')).ino), inodes, 'the warm pull used the stored images');
    assert.deepEqual(await treeOf(warm, { mtimes: true }), tree, 'warm and cold erofs bundles are identical (times included)');
    assert.deepEqual(await hardLinkGroups(warm), groups);
    t.diagnostic(`features: ${tree.length} entries, ${groups.length} hard link groups, layer images ${layers.map((l) => l.record.image!.bytes).join(' + ')} bytes`);
  });

  it('the Debian image: the erofs bundle is the overlay-directory bundle file for file, cold and warm; the erofs store is smaller', async (t) => {
    const s = await debianStores();
    const reference = await treeOf(s.overlay, { mtimes: true });
    assert.ok(reference.length > 5000, `a real rootfs (${reference.length} entries)`);
    for (const p of ['usr/bin/passwd', 'usr/bin/su']) assert.match(reference.find((l) => l.startsWith(`${p} `)) ?? p, / 4755 0:0 /, `${p} is setuid`);
    assert.ok(reference.some((l) => /^bin 120000 .* -> usr\/bin /.test(l)), 'the merged-/usr symlinks');
    for (const w of debianInfo.cleanup.whiteouts) assert.ok(!reference.some((l) => l.startsWith(`${w} `)), `${w} is deleted`);
    assert.deepEqual(reference.filter((l) => l.startsWith(`${debianInfo.cleanup.opaque}/`)).map((l) => l.split(' ')[0]), [`${debianInfo.cleanup.opaque}/New_York`], 'the opaque directory');
    const groups = await hardLinkGroups(s.overlay);
    assert.ok(groups.some((g) => g.includes('usr/bin/perl')), `perl's hard links (${JSON.stringify(groups)})`);

    const tree = await treeOf(s.erofs, { mtimes: true });
    assert.deepEqual(tree, reference);
    assert.deepEqual(await hardLinkGroups(s.erofs), groups);
    const warm = await pullOk(debian.ref, join(dir, 'deb-erofs-warm'), s.er, '--snapshotter', 'erofs');
    assert.deepEqual(await treeOf(warm, { mtimes: true }), reference, 'warm');
    assert.deepEqual(await hardLinkGroups(warm), groups);

    const dfOv = await json<Df>(['df', '--work-dir', s.ov]);
    const dfEr = await json<Df>(['df', '--work-dir', s.er]);
    assert.deepEqual([dfOv.formats.directory.layers, dfOv.formats.erofs.layers], [3, 0]);
    assert.deepEqual([dfEr.formats.directory.layers, dfEr.formats.erofs.layers], [0, 3]);
    assert.ok(dfEr.bytes < dfOv.bytes, `erofs store ${dfEr.bytes} bytes < directory store ${dfOv.bytes} bytes`);
    t.diagnostic(`debian: ${debianInfo.packages.length} packages, ${tree.length} entries, ${(debianInfo.bytes / 1e6).toFixed(0)} MB of tar; ` +
      `store ${(dfEr.bytes / 1e6).toFixed(1)} MB erofs vs ${(dfOv.bytes / 1e6).toFixed(1)} MB directory (${(dfEr.bytes / dfOv.bytes).toFixed(2)}); ` +
      `cold pull ${s.erofsMs} ms erofs vs ${s.overlayMs} ms overlay`);
  });

  it('each layer image\'s dm-verity root hash verifies with veritysetup, and its sha256 with sha256sum', async (t) => {
    const stores = [(await featureStores()).er, (await debianStores()).er];
    let n = 0;
    for (const work of stores) {
      for (const l of await layersOnDisk(work)) {
        const image = l.record.image;
        assert.ok(image?.verity, `${l.diffId} records an image and its verity tree`);
        const file = join(l.dir, 'layer.erofs');
        const hashes = join(l.dir, 'layer.verity');
        assert.equal(execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0], image.sha256, `sha256sum of ${file}`);
        assert.equal(fs.statSync(file).size, image.bytes);
        assert.equal(image.verity.dataBlocks * image.verity.dataBlockSize, image.bytes, 'the tree covers the whole image');
        const verify = spawnSync('veritysetup', ['verify', file, hashes, image.verity.rootHash], { encoding: 'utf8' });
        assert.equal(verify.status, 0, `veritysetup verify ${file}: ${verify.stderr}`);
        // The check can fail: another root hash does not verify.
        const wrong = image.verity.rootHash.replace(/^./, (c) => (c === '0' ? '1' : '0'));
        assert.notEqual(spawnSync('veritysetup', ['verify', file, hashes, wrong]).status, 0, 'a wrong root hash is refused');
        const dump = execFileSync('veritysetup', ['dump', hashes], { encoding: 'utf8' });
        const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(dump)?.[1]?.trim() ?? '';
        assert.equal(field('Data blocks'), String(image.verity.dataBlocks));
        assert.equal(field('Salt'), image.verity.salt);
        assert.equal(field('Hash algorithm'), image.verity.hashAlgorithm);
        assert.equal(field('Data block size'), String(image.verity.dataBlockSize));
        n++;
      }
    }
    assert.equal(n, 6);
    t.diagnostic(`${n} layer images verified by veritysetup and sha256sum`);
  });

  it('bundle rm gives back each bundle\'s overlay mount, layer mounts and loop devices; gc removes the images; df, list and inspect count their bytes', async () => {
    const s = await featureStores();
    const work = s.er;
    const layers = await layersOnDisk(work);
    // What each layer holds: its dir, image, verity tree and record, as allocated.
    const held = new Map<string, { bytes: number; files: number }>();
    for (const l of layers) {
      const files = (await Promise.all(['layer.erofs', 'layer.verity', 'layer.json'].map((f) => allocated(join(l.dir, f))))).reduce((a, b) => a + b, 0);
      held.set(l.diffId, { files, bytes: files + (await allocated(l.dir)) });
    }
    const total = [...held.values()].reduce((a, b) => a + b.bytes, 0);
    const df = await json<Df>(['df', '--work-dir', work]);
    assert.deepEqual(df.formats.directory, { layers: 0, bytes: 0 });
    assert.equal(df.formats.erofs.layers, 3);
    assert.ok(Math.abs(df.formats.erofs.bytes - total) <= 3 * 4096, `df erofs bytes ${df.formats.erofs.bytes}, the files take ${total}`);
    assert.ok(df.formats.erofs.bytes >= [...held.values()].reduce((a, b) => a + b.files, 0));
    const listed = await json<{ manifestDigest: string; stored: { format: string; bytes: number }[]; storedBytes: number }[]>(['list', '--work-dir', work]);
    assert.equal(listed.length, 1);
    const ids = features.image.layers.map((l) => l.diffId);
    assert.deepEqual(listed[0]!.stored.map((x) => x.format), ['erofs', 'erofs', 'erofs']);
    listed[0]!.stored.forEach((x, i) => assert.ok(Math.abs(x.bytes - held.get(ids[i]!)!.bytes) <= 4096, `list: layer ${i} stored ${x.bytes}, holds ${held.get(ids[i]!)!.bytes}`));
    assert.equal(listed[0]!.storedBytes, listed[0]!.stored.reduce((a, b) => a + b.bytes, 0));
    const inspected = await json<{ layers: { diffId: string; stored?: { format: string; bytes: number } }[] }>(['inspect', features.ref, '--work-dir', work]);
    assert.deepEqual(inspected.layers.map((l) => l.stored), listed[0]!.stored);

    // Two bundles (cold and warm); each holds its own mounts and loop devices.
    const snaps = recordedSnapshots(work);
    const cold = join(dir, 'feat-erofs');
    const warm = join(dir, 'feat-erofs-warm');
    assert.deepEqual([...snaps.keys()].sort(), [cold, warm]);
    const holdOf = (bundle: string): { points: string[]; loops: string[] } => {
      const own = mountsUnder(join(work, 'overlay', snaps.get(bundle)!.id));
      return { points: [...own.map((m) => m.point), join(bundle, 'rootfs')], loops: own.filter((m) => m.fstype === 'erofs').map((m) => m.source).sort() };
    };
    const coldHold = holdOf(cold);
    const warmHold = holdOf(warm);
    assert.equal(coldHold.loops.length, 3);
    assert.deepEqual((await loopDevicesBackedBy(work)).sort(), [...coldHold.loops, ...warmHold.loops].sort());
    await runOk(['bundle', 'rm', cold, '--work-dir', work]);
    const mounted = new Set(mountsUnder('/').map((m) => m.point));
    for (const p of coldHold.points) assert.ok(!mounted.has(p), `${p} is unmounted`);
    assert.deepEqual((await loopDevicesBackedBy(work)).sort(), warmHold.loops, 'only the warm bundle\'s loop devices are left');
    assert.equal(fs.existsSync(join(work, 'overlay', snaps.get(cold)!.id)), false);
    assert.equal(fs.existsSync(cold), false);

    // rm drops the name; the warm bundle still holds the layers, then nothing does.
    await runOk(['rm', features.ref, '--work-dir', work]);
    assert.deepEqual((await json<{ removedLayers: string[] }>(['gc', '--work-dir', work])).removedLayers, [], 'a bundle still uses them');
    await runOk(['bundle', 'rm', warm, '--work-dir', work]);
    const gc = await json<{ removedLayers: string[]; freedBytes: number }>(['gc', '--work-dir', work]);
    assert.deepEqual(gc.removedLayers.sort(), [...ids].sort());
    assert.equal(gc.freedBytes, df.formats.erofs.bytes);
    assert.deepEqual(await layersOnDisk(work), []);
    assert.deepEqual(fs.readdirSync(join(work, 'layers', 'sha256')), []);
    assert.deepEqual(await kernelHold(work), { mounts: [], loops: [] });
    assert.deepEqual(mountsUnder(warm), []);
    assert.deepEqual((await json<Df>(['df', '--work-dir', work])).formats.erofs, { layers: 0, bytes: 0 });
    await checkStore(work, { settled: true });
  });

  it('--erofs-check sha256 and verity refuse a damaged image with STORE and leave nothing; none is documented; rm + gc + pull mends it', async (t) => {
    const s = await featureStores();
    const work = join(dir, 'damage-work');
    const first = join(dir, 'damage-0');
    await pullOk(features.ref, first, work, '--snapshotter', 'erofs', '--erofs-check', 'verity');
    await runOk(['bundle', 'rm', first, '--work-dir', work]);
    assert.deepEqual(await kernelHold(work), { mounts: [], loops: [] });
    const victim = await largestErofsLayer(work);
    const at = damage(victim);
    assert.notEqual(await fileSha256(join(victim.dir, 'layer.erofs')), victim.record.image!.sha256);

    for (const [check, what] of [['sha256', 'sha256'], ['verity', 'dm-verity']] as const) {
      const bundle = join(dir, `damage-${check}`);
      const r = await cli.run(pullArgs(features.ref, bundle, work, '--snapshotter', 'erofs', '--erofs-check', check));
      assertCliError(r, 'STORE');
      assert.match(r.stderr, new RegExp(`layer ${victim.diffId} image fails its ${what} check`));
      assert.equal(fs.existsSync(bundle), false, 'no bundle');
      assert.deepEqual(await kernelHold(work), { mounts: [], loops: [] }, 'no mount, no loop device');
      assert.deepEqual(fs.readdirSync(join(work, 'overlay')), [], 'no overlay dir');
      assert.equal(recordedBundles(work).size, 0);
    }

    // none (the default): nothing checks the image; the kernel reads what is there.
    const unchecked = join(dir, 'damage-none');
    const r = await cli.run(pullArgs(features.ref, unchecked, work, '--snapshotter', 'erofs'));
    const result = assertCleanOutcome(r, 'pull of a damaged image, unchecked');
    let reading = 'not read';
    if (result === 'ok') {
      try {
        const tree = await treeOf(join(unchecked, 'rootfs'), { mtimes: true });
        const differs = madeUpTimesHidden(tree).filter((l, i) => l !== madeUpTimesHidden(s.reference)[i]);
        reading = differs.length ? `reads differ at ${differs.length} entries (${differs[0]})` : 'reads the same tree (the damaged byte is in no file read)';
      } catch (err) {
        reading = `reading fails: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      }
      await runOk(['bundle', 'rm', unchecked, '--work-dir', work]);
    }
    t.diagnostic(`--erofs-check none, byte ${at} of ${victim.record.image!.bytes} flipped: pull ${result}; ${reading}`);
    assert.deepEqual(await kernelHold(work), { mounts: [], loops: [] });

    // A mount that fails midway (the top layer's image emptied; the lower ones mount first) is undone: MOUNT_FAILED, nothing held.
    const top = (await layersOnDisk(work)).find((l) => l.diffId === features.image.layers[2]!.diffId)!;
    fs.truncateSync(join(top.dir, 'layer.erofs'), 0);
    const midway = join(dir, 'damage-midway');
    assertCliError(await cli.run(pullArgs(features.ref, midway, work, '--snapshotter', 'erofs')), 'MOUNT_FAILED');
    assert.equal(fs.existsSync(midway), false);
    assert.deepEqual(await kernelHold(work), { mounts: [], loops: [] });
    assert.deepEqual(fs.readdirSync(join(work, 'overlay')), []);

    await runOk(['rm', features.ref, '--work-dir', work]);
    const gc = await json<{ removedLayers: string[] }>(['gc', '--work-dir', work]);
    assert.deepEqual(gc.removedLayers.sort(), features.image.layers.map((l) => l.diffId).sort(), 'gc removes the damaged layers');
    const mended = await pullOk(features.ref, join(dir, 'damage-mended'), work, '--snapshotter', 'erofs', '--erofs-check', 'verity');
    assert.deepEqual(madeUpTimesHidden(await treeOf(mended, { mtimes: true })), madeUpTimesHidden(s.reference));
    await checkStore(work, { settled: true });
  });

  it('serve --snapshotter erofs pulls bundles whose layers are erofs images', async (t) => {
    const s = await featureStores();
    const work = join(dir, 'serve-work');
    const sock = join(dir, 'cdh.sock');
    const server = spawn(process.execPath, cli.argv(['serve', '--cdh-ttrpc', `unix://${sock}`, '--work-dir', work, '--insecure-registry', registry.host,
      '--snapshotter', 'erofs', '--erofs-check', 'verity']), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const client = new TtrpcClient(`unix://${sock}`);
    try {
      await new Promise<void>((resolve, reject) => {
        server.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (stderr.includes('"event":"serving"')) resolve();
        });
        server.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
      });
      const bundle = join(dir, 'served');
      const reply = await client.unary('api.ImagePullService', 'PullImage', new ProtoWriter().string(1, features.ref).string(2, bundle).finish(), { timeoutMs: 60_000 });
      assert.equal(ProtoReader.decode(reply).string(1), features.image.manifestDigest);
      const layers = await layersOnDisk(work);
      assert.equal(layers.length, 3);
      for (const l of layers) assert.equal(l.record.format, 'erofs');
      assert.equal(mountsUnder(join(bundle, 'rootfs'))[0]?.fstype, 'overlay');
      assert.equal(mountsUnder(work).filter((m) => m.fstype === 'erofs').length, 3);
      assert.deepEqual(madeUpTimesHidden(await treeOf(join(bundle, 'rootfs'), { mtimes: true })), madeUpTimesHidden(s.reference));
      const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
      server.kill('SIGTERM');
      assert.equal(await exited, 0);
      await runOk(['bundle', 'rm', bundle, '--work-dir', work]);
      assert.deepEqual(await kernelHold(work), { mounts: [], loops: [] });
      t.diagnostic(`serve: ${stderr.trim().split('\n').length} log lines`);
    } finally {
      client.close();
      if (server.exitCode === null) server.kill('SIGKILL');
    }
  });

  it('the config file chooses the snapshotter, compression and check; bad values are one-line errors', async () => {
    const s = await featureStores();
    const work = join(dir, 'config-work');
    const config = join(dir, 'erofs-config.json');
    await writeFile(config, JSON.stringify({ snapshotter: 'erofs', erofs: { compression: 'lz4hc', check: 'sha256' } }));
    const text = await cli.run(['pull', features.ref, join(dir, 'cfg-1'), '--work-dir', work, '--insecure-registry', registry.host, '--config', config]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /bundle +\S+cfg-1 \(erofs\)/);
    const layers = await layersOnDisk(work);
    assert.deepEqual(layers.map((l) => [l.record.format, l.record.image?.compression]), [['erofs', 'lz4hc'], ['erofs', 'lz4hc'], ['erofs', 'lz4hc']]);
    assert.deepEqual(madeUpTimesHidden(await treeOf(join(dir, 'cfg-1', 'rootfs'), { mtimes: true })), madeUpTimesHidden(s.reference));
    // check: sha256 is in force: a damaged image is refused by its sha256; a flag still wins over the file.
    await runOk(['bundle', 'rm', join(dir, 'cfg-1'), '--work-dir', work]);
    const victim = await largestErofsLayer(work);
    damage(victim);
    const refused = await cli.run(pullArgs(features.ref, join(dir, 'cfg-2'), work, '--config', config));
    assertCliError(refused, 'STORE');
    assert.match(refused.stderr, /fails its sha256 check/);
    const unchecked = await cli.run(pullArgs(features.ref, join(dir, 'cfg-3'), work, '--config', config, '--erofs-check', 'none'));
    assert.notEqual(assertCleanOutcome(unchecked, '--erofs-check none over the file'), 'STORE', '--erofs-check none wins over the file');
    if (unchecked.code === 0) await runOk(['bundle', 'rm', join(dir, 'cfg-3'), '--work-dir', work]);

    // verity: false: images without a tree.
    const noVerity = join(dir, 'erofs-noverity.json');
    await writeFile(noVerity, JSON.stringify({ snapshotter: 'erofs', erofs: { verity: false } }));
    const work2 = join(dir, 'config-work-2');
    await pullOk(features.ref, join(dir, 'cfg-4'), work2, '--config', noVerity);
    for (const l of await layersOnDisk(work2)) {
      assert.deepEqual([l.record.format, l.record.image?.compression, l.record.image?.verity], ['erofs', 'lz4', undefined]);
      assert.equal(fs.existsSync(join(l.dir, 'layer.verity')), false);
    }

    const bad: [unknown, RegExp][] = [
      [{ snapshotter: 'zfs' }, /snapshotter must be "overlay", "copy" or "erofs"/],
      [{ snapshotter: 'erofs', erofs: { compression: 'gzip' } }, /erofs\.compression must be "lz4" or "lz4hc"/],
      [{ erofs: { check: 'md5' } }, /erofs\.check must be "none", "sha256" or "verity"/],
      [{ erofs: { verity: 'yes' } }, /erofs\.verity must be true or false/],
      [{ erofs: { check: 'verity', verity: false } }, /erofs\.check "verity" needs erofs\.verity/],
      [{ erofs: { level: 9 } }, /erofs\.level is not a known key \(compression, check, verity\)/],
      [{ erofs: 'lz4' }, /erofs must be an object/],
    ];
    const never = join(dir, 'cfg-never');
    for (const [doc, message] of bad) {
      await writeFile(join(dir, 'bad.json'), JSON.stringify(doc));
      const r = await cli.run(pullArgs(features.ref, never, join(dir, 'config-bad'), '--config', join(dir, 'bad.json')));
      assertCliError(r, 'CONFIG_FILE_INVALID');
      assert.match(r.stderr, message);
    }
    for (const [flag, value, message] of [['--snapshotter', 'zfs', /--snapshotter takes overlay, copy or erofs/], ['--erofs-compression', 'gzip', /--erofs-compression takes lz4 or lz4hc/],
      ['--erofs-check', 'md5', /--erofs-check takes none, sha256 or verity/]] as const) {
      const r = await cli.run(pullArgs(features.ref, never, join(dir, 'config-bad'), flag, value));
      assertCliError(r, 'INVALID_ARGUMENT', 2);
      assert.match(r.stderr, message);
    }
    assert.equal(fs.existsSync(never), false);
  });
});

// ---------------------------------------------------------------------------
// kill -9

describe('kill -9 during erofs pulls', () => {
  it('leaves no loop device, mount, mkfs.erofs or half-built image once the next pull or gc ran; bundle rm + gc leave nothing at all', async (t) => {
    const started = Date.now();
    const rand = seededRandom(SEED);
    const bulk = bulkEntries(BULK_FILES, SEED);
    const heavy = heavyEntries(HEAVY_FILES, SEED);
    // Each pull gets an image of its own (a variant file differs), so every kill finds layers to build.
    let pushed = 0;
    const variant = async (withHeavy = false): Promise<string> => {
      const k = pushed++;
      const mark = (dir: string): TarEntry => ({ name: `${dir}/variant`, content: `variant ${k}\n`, mtime: MTIME });
      const image = buildImage({ layers: [
        { tar: crashBase },
        { tar: tar([...bulk, mark('bulk')]), compression: 'zstd' },
        ...(withHeavy ? [{ tar: tar([...heavy, mark('heavy')]), compression: 'zstd' as const }] : []),
        { tar: crashTop },
      ] });
      await registry.pushImage('erofs/crash', `v${k}`, image);
      return `${registry.host}/erofs/crash:v${k}`;
    };
    const erofs = ['--snapshotter', 'erofs'];

    // A clean pull in a separate store: the reference tree, and how long a pull takes.
    const reference = await variant();
    const t0 = Date.now();
    const refRoot = await pullOk(reference, join(dir, 'crash-ref'), join(dir, 'crash-ref-work'), ...erofs);
    let pullMs = Date.now() - t0;
    const refTree = await treeOf(refRoot, { mtimes: true });

    const aaConnections = new Set<Socket>();
    const aa: Server = createServer((c) => {
      aaConnections.add(c);
      c.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => aa.listen(join(dir, 'aa.sock'), resolve));
    t.after(() => {
      for (const c of aaConnections) c.destroy();
      aa.close();
    });
    const stalling = join(dir, 'aa-stalls.json');
    await writeFile(stalling, JSON.stringify({ attestation_agent: { address: `unix://${join(dir, 'aa.sock')}` } }));

    const shared = join(dir, 'crash-work');
    const bundles = join(dir, 'crash-bundles');
    fs.mkdirSync(bundles);
    const phases = new Map<string, number>();
    let recoveries = 0;

    /** One pull into the shared store, killed (the CLI's pid alone, as an OOM kill would) when `when` returns. */
    const crashPull = async (k: number, label: string, when: (p: CliProcess, exited: () => boolean, bundle: string) => Promise<void>,
      how: { heavy?: boolean; killedOnly?: string[] } = {}): Promise<string> => {
      const img = await variant(how.heavy);
      // The heavy layer as lz4hc: mkfs.erofs runs long enough that a kill finds it mid-way, and its death can be told from its end.
      const options = how.heavy ? [...erofs, '--erofs-compression', 'lz4hc'] : erofs;
      const bundle = join(bundles, `k${k}`);
      const startedAt = Date.now();
      const p = cli.spawn(pullArgs(img, bundle, shared, ...options, ...(how.killedOnly ?? [])));
      let gone = false;
      void p.done.then(() => (gone = true), () => (gone = true));
      await when(p, () => gone, bundle);
      const mkfsAtKill = mkfsProcessesFor(shared).map((m) => m.pid);
      const killedAt = Date.now();
      const killed = p.kill();
      const r = await p.done;
      let phase: string;
      if (!killed || r.signal !== 'SIGKILL') {
        assert.equal(r.code, 0, `pull ${k} ended by itself and must have succeeded: ${r.stderr}`);
        phase = 'finished';
        pullMs = Math.min(pullMs, killedAt - startedAt); // the machine is faster now: aim the next points earlier
      } else if (recordedBundles(shared).has(bundle)) phase = 'recorded';
      else if (mkfsAtKill.length) phase = 'mkfs';
      else if ((await leaksOf(shared, bundles)).some((x) => x.startsWith('mount '))) phase = 'mount';
      else {
        const staged = (fs.existsSync(join(shared, 'staging')) ? fs.readdirSync(join(shared, 'staging')) : []).filter((n) => n.startsWith(`${p.pid}-`));
        if (staged.some((n) => fs.existsSync(join(shared, 'staging', n, 'layer.erofs')))) phase = 'image';
        else if (staged.length) phase = 'unpack';
        else phase = fs.existsSync(bundle) ? 'fetch' : 'startup';
      }
      phases.set(`${label}:${phase}`, (phases.get(`${label}:${phase}`) ?? 0) + 1);

      // At once: mkfs.erofs dies with the pull (setpriv --pdeathsig; left alone it would run on for a second),
      // and a loop device no mount holds goes with its holder (autoclear).
      for (let i = 0; i < 20 && mkfsProcessesFor(shared).length; i++) await sleep(10);
      assert.deepEqual(mkfsProcessesFor(shared), [], `#${k} (${phase}): mkfs.erofs outlived the killed pull (mkfs ran at the kill: ${mkfsAtKill.join(', ') || 'none'})`);
      const mountedLoops = new Set(mountsUnder(shared).filter((m) => m.fstype === 'erofs').map((m) => m.source));
      let unmountedLoops: string[] = [];
      for (let i = 0; i < 50; i++) {
        unmountedLoops = (await loopDevicesBackedBy(shared)).filter((l) => !mountedLoops.has(l));
        if (!unmountedLoops.length) break;
        await sleep(20);
      }
      assert.deepEqual(unmountedLoops, [], `#${k} (${phase}): loop devices bound with no mount`);

      // The next pull, or gc (by turns), takes back what the dead pull left.
      let recovery: string;
      if (k % 2 === 1) {
        await runOk(['gc', '--work-dir', shared]);
        recovery = 'gc';
      } else {
        await pullOk(img, join(bundles, `k${k}-next`), shared, ...options);
        recovery = 'pull';
      }
      recoveries++;
      assert.deepEqual(await leaksOf(shared, bundles), [], `#${k} (${phase}) then ${recovery}`);
      const report = await checkStore(shared, { settled: true });
      assert.deepEqual(report.orphanOverlays, [], `#${k} (${phase}) then ${recovery}: overlay dirs of no bundle`);
      for (const l of await layersOnDisk(shared)) assert.equal(l.record.format, 'erofs', `${l.diffId} is an image`);
      // A bundle dir the pull made before its lease (nothing mounted: leaksOf says so) is the user's to remove.
      if (fs.existsSync(bundle) && !recordedBundles(shared).has(bundle)) await rm(bundle, { recursive: true });
      t.diagnostic(`#${k} ${label}: ${phase} at ${killedAt - startedAt} ms, then ${recovery}: clean`);
      return phase;
    };

    // Targeted: mid mkfs.erofs of the heavy layer; again if mkfs was done before the kill.
    let k = 0;
    let inMkfs = false;
    const buildingHeavy = (): boolean => mkfsProcessesFor(shared).some((m) => fs.existsSync(join(m.argv[m.argv.length - 1]!, 'heavy')));
    for (let attempt = 0; attempt < 3 && !inMkfs; attempt++) {
      inMkfs = (await crashPull(k++, 'mkfs', async (_p, exited) => {
        while (!exited() && !buildingHeavy()) await sleep(10);
        await sleep(Math.floor(rand() * 200));
      }, { heavy: true })) === 'mkfs';
    }
    assert.ok(inMkfs, 'a kill landed in mkfs.erofs in 3 attempts');

    // Targeted: everything mounted (layer images on loop devices, the overlay on them), nothing recorded. An attestation
    // agent that accepts and never answers holds the pull in its measurement, between the mounts and the record.
    // Twice, so that both the next pull and gc (by turns) take such a pull back.
    for (let i = 0; i < 2; i++) {
      const seen = aaConnections.size;
      const phase = await crashPull(k++, 'mount', async (_p, exited, bundle) => {
        while (!exited() && !(aaConnections.size > seen && mountsUnder(join(bundle, 'rootfs')).length > 0)) await sleep(5);
      }, { killedOnly: ['--config', stalling] });
      assert.equal(phase, 'mount', 'killed with its mounts made and its bundle not recorded');
    }

    // Stratified random points over one and a half clean pulls (a loaded machine pulls slower), shuffled: spread whatever the seed.
    const points = Array.from({ length: RANDOM_KILLS }, (_, i) => (i + rand()) / RANDOM_KILLS);
    for (let i = points.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [points[i], points[j]] = [points[j]!, points[i]!];
    }
    for (const u of points) {
      await crashPull(k++, 'random', async (_p, exited) => {
        const until = Date.now() + u * 1.5 * pullMs;
        while (!exited() && Date.now() < until) await sleep(5);
      });
    }

    // A verifying pull into the same store gives the clean tree.
    const verify = await pullOk(reference, join(bundles, 'verify'), shared, ...erofs);
    assert.deepEqual(madeUpTimesHidden(await treeOf(verify, { mtimes: true })), madeUpTimesHidden(refTree));
    assert.deepEqual(await leaksOf(shared, bundles), []);

    // The end: every bundle and image removed, gc: nothing held at all.
    const recorded = [...recordedBundles(shared)];
    for (const b of recorded) await runOk(['bundle', 'rm', b, '--work-dir', shared]);
    for (const img of await json<{ manifestDigest: string }[]>(['list', '--work-dir', shared])) await runOk(['rm', img.manifestDigest, '--work-dir', shared]);
    await runOk(['gc', '--work-dir', shared]);
    assert.deepEqual(await kernelHold(shared), { mounts: [], loops: [] }, 'no mount and no loop device under the work dir');
    assert.deepEqual(mountsUnder(bundles), [], 'no mount under the bundles');
    assert.deepEqual(await layersOnDisk(shared), []);
    assert.deepEqual(fs.readdirSync(join(shared, 'overlay')), []);
    await checkStore(shared, { settled: true });

    const randomHits = [...phases].filter(([p]) => p.startsWith('random:') && p !== 'random:finished').reduce((n, [, v]) => n + v, 0);
    const summary = `erofs crash: ${k} pulls killed at ${[...phases].map(([p, n]) => `${p}=${n}`).join(' ')}; ${recoveries} recoveries (gc or pull), ` +
      `${recorded.length} bundles removed at the end; clean pull ${pullMs} ms; ${Math.round((Date.now() - started) / 1000)} s`;
    t.diagnostic(summary);
    assert.ok(randomHits >= RANDOM_KILLS / 3, `a third of the random kill points hit a running pull (${randomHits})`);
  });
});
