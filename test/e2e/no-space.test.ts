/**
 * Disk full (issue 7): ENOSPC while unpacking into the store, while copying a
 * bundle, and while writing the metadata, each on a small tmpfs. Every time:
 * exit 1 with one `image-ts: NO_SPACE: ...` line, nothing half-made left, a
 * consistent store that the next pull can use.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startRegistry, type StartedRegistry } from '../harness/registry.js';
import { assertCliError, cli } from '../helpers/cli.js';
import { buildImage } from '../helpers/image-builder.js';
import { unmountBelow } from '../helpers/mounts.js';
import { checkStore } from '../helpers/store-check.js';
import { tar } from '../helpers/tar-writer.js';

const ZEROS = 10 * 1024 * 1024;
const TMPFS_SIZE = '4m';

/** 10 MB unpacked, about 10 KB gzipped: the download fits a 4 MB disk, the unpack does not. */
const bigTar = tar([
  { name: 'etc/', type: 'dir' },
  { name: 'etc/hostname', content: 'zeros\n' },
  { name: 'zeros', content: Buffer.alloc(ZEROS) },
]);
const big = buildImage({ layers: [{ tar: bigTar }] });
const small = buildImage({ layers: [{ tar: tar([{ name: 'hello', content: 'hello\n' }]) }] });
/** What layer.json of the big layer says after a whole, verified unpack (TarUnpacker's stats: entries, file bytes). */
const BIG_FACTS = { size: ZEROS + 'zeros\n'.length, entries: 3, whiteoutFormat: 'overlay' };

let dir: string;
let registry: StartedRegistry;
let bigRef: string;
let smallRef: string;

async function tmpfs(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE},mode=0755`, 'tmpfs', path]);
  return path;
}

function pull(ref: string, bundle: string, workDir: string, extra: string[] = []): ReturnType<typeof cli> {
  return cli(['pull', ref, bundle, '--work-dir', workDir, '--insecure-registry', registry.host, '--snapshotter', 'copy', ...extra]);
}

/** Fills the filesystem of `path` to the last byte with `path`/filler. */
function fill(path: string): void {
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${join(path, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
  } catch {
    // dd stops with ENOSPC, as meant
  }
}

const names = (path: string): string[] => (existsSync(path) ? readdirSync(path) : []);

before(async () => {
  assert.equal(process.getuid?.(), 0, 'mounting a tmpfs needs root');
  dir = await mkdtemp(join(tmpdir(), 'image-ts-nospace-'));
  await chmod(dir, 0o755);
  registry = await startRegistry('open');
  await registry.pushImage('nospace/big', 'v1', big);
  await registry.pushImage('nospace/small', 'v1', small);
  bigRef = `${registry.host}/nospace/big:v1`;
  smallRef = `${registry.host}/nospace/small:v1`;
});

after(async () => {
  if (dir) unmountBelow(dir);
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('disk full', () => {
  it('mid-unpack into the store: NO_SPACE, staging and bundle gone, the store still works', async () => {
    const work = await tmpfs(join(dir, 'small-work'));
    const bundle = join(dir, 'b-unpack');
    const r = await pull(bigRef, bundle, work);
    assertCliError(r, 'NO_SPACE');
    assert.equal(existsSync(bundle), false, 'the bundle dir the pull made is removed');
    assert.deepEqual(names(join(work, 'staging')), [], 'staging is removed');
    const report = await checkStore(work, { settled: true });
    assert.deepEqual(report.committed, [], 'nothing committed');
    assert.equal(report.images, 0);
    assert.equal(report.leases, 0, 'the failed pull released its lease');
    assert.deepEqual(report.tempFiles, []);

    // The store is usable: a small image pulls into the same work dir.
    const ok = await pull(smallRef, join(dir, 'b-small'), work);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await readFile(join(dir, 'b-small', 'rootfs', 'hello'), 'utf8'), 'hello\n');
    const after = await checkStore(work, { settled: true });
    assert.equal(after.images, 1);
    assert.equal(after.bundles, 1);
    assert.equal(after.committed.length, 1);
  });

  it('mid-copy into the bundle: NO_SPACE, bundle removed, the committed layer stays valid and is reused', async () => {
    const work = join(dir, 'big-work');
    const bundles = await tmpfs(join(dir, 'small-bundles'));
    const bundle = join(bundles, 'b');
    const r = await pull(bigRef, bundle, work);
    assertCliError(r, 'NO_SPACE');
    assert.equal(existsSync(bundle), false, 'the bundle dir the pull made is removed');
    assert.deepEqual(names(bundles), []);
    const diffId = big.layers[0]!.diffId;
    const report = await checkStore(work, { settled: true, expect: new Map([[diffId, BIG_FACTS]]) });
    assert.deepEqual(report.committed, [diffId], 'the verified layer stays committed');
    assert.equal(report.images, 1, 'the image is recorded before its snapshot');
    assert.equal(report.bundles, 0);
    assert.equal(report.leases, 0);
    const zeros = join(work, 'layers', 'sha256', diffId.slice(7), 'diff', 'zeros');
    assert.equal((await stat(zeros)).size, ZEROS);

    // Pulled again onto a disk with room: the layer comes from the store, not the registry.
    const again = await pull(bigRef, join(dir, 'b-big'), work);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /layers +1 \(0 fetched, 1 from the store\)/);
    const copied = await readFile(join(dir, 'b-big', 'rootfs', 'zeros'));
    assert.equal(createHash('sha256').update(copied).digest('hex'), createHash('sha256').update(Buffer.alloc(ZEROS)).digest('hex'));
    assert.equal((await checkStore(work, { settled: true })).bundles, 1);
  });

  it('with the store\'s disk already full: taking the lock fails with NO_SPACE, and the store recovers', async (t) => {
    const work = await tmpfs(join(dir, 'full-work'));
    const first = await pull(smallRef, join(dir, 'b-full-1'), work);
    assert.equal(first.code, 0, first.stderr);
    const metaPath = join(work, 'metadata.json');
    const before = await readFile(metaPath, 'utf8');
    fill(work);
    const r = await pull(smallRef, join(dir, 'b-full-2'), work);
    t.diagnostic(`pull onto a full store disk: exit ${r.code}: ${r.stderr.trim()}`);
    const leftovers = { lock: existsSync(join(work, 'metadata.lock')), temp: names(work).filter((n) => n.endsWith('.tmp')) };
    t.diagnostic(`left on the full disk: metadata.lock ${leftovers.lock}, temp files ${leftovers.temp.join(', ') || 'none'}`);
    assert.equal(await readFile(metaPath, 'utf8'), before, 'metadata.json is the old state, whole');
    assert.equal(existsSync(join(dir, 'b-full-2')), false, 'no bundle left');

    // Space again: the store must load and work.
    await rm(join(work, 'filler'));
    const started = Date.now();
    const ok = await pull(smallRef, join(dir, 'b-full-3'), work);
    t.diagnostic(`next pull after freeing space: exit ${ok.code} after ${Date.now() - started} ms ${ok.stderr.trim()}`);
    const observed = {
      error: r.stderr.trim().split('\n').length === 1 ? /^image-ts: ([A-Z_]+): /.exec(r.stderr)?.[1] : r.stderr,
      lockLeft: leftovers.lock,
      tempFiles: leftovers.temp,
      nextPull: ok.code === 0 ? 'ok' : ok.stderr.trim(),
    };
    assert.deepEqual(observed, {
      error: 'NO_SPACE',
      // The pid write failed after mkdir: the lock is taken back rather than left ownerless.
      lockLeft: false,
      tempFiles: [],
      nextPull: 'ok',
    });
    const report = await checkStore(work, { settled: true });
    assert.equal(report.images, 1);
    assert.equal(report.bundles, 2);
  });

  it('with one page left on the store\'s disk: the metadata write fails with NO_SPACE, the old state stays', async (t) => {
    const work = await tmpfs(join(dir, 'page-work'));
    const first = await pull(smallRef, join(dir, 'b-page-1'), work);
    assert.equal(first.code, 0, first.stderr);
    const metaPath = join(work, 'metadata.json');
    const before = await readFile(metaPath, 'utf8');
    // One free page: the lock's pid file takes it, metadata.json.<pid>.tmp then gets ENOSPC.
    await writeFile(join(work, 'spacer'), Buffer.alloc(4096));
    fill(work);
    await rm(join(work, 'spacer'));
    const r = await pull(smallRef, join(dir, 'b-page-2'), work);
    t.diagnostic(`pull with one free page: exit ${r.code}: ${r.stderr.trim()}`);
    assertCliError(r, 'NO_SPACE');
    assert.equal(await readFile(metaPath, 'utf8'), before, 'metadata.json is the old state, whole');
    assert.equal(existsSync(join(dir, 'b-page-2')), false, 'no bundle left');
    assert.equal(existsSync(join(work, 'metadata.lock')), false, 'the lock is released');
    const temp = names(work).filter((n) => n.endsWith('.tmp'));

    await rm(join(work, 'filler'));
    const ok = await pull(smallRef, join(dir, 'b-page-3'), work);
    assert.equal(ok.code, 0, ok.stderr);
    const report = await checkStore(work, { settled: true });
    assert.equal(report.images, 1);
    assert.equal(report.bundles, 2);
    t.diagnostic(`metadata temp files left by the failed write: ${temp.join(', ') || 'none'}; after the next pull: ${report.tempFiles.join(', ') || 'none'}`);
    // A failed write removes its temp file; no later writer would reuse its pid's name.
    assert.deepEqual(report.tempFiles, [], 'no metadata temp file left behind');
  });
});
