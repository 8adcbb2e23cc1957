import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startRegistry, type StartedRegistry } from '../harness/registry.js';
import { zeroBomb } from '../helpers/bombs.js';
import { assertCliError, cli, type CliResult } from '../helpers/cli.js';
import { buildImage } from '../helpers/image-builder.js';
import { unmountBelow } from '../helpers/mounts.js';
import { checkStore } from '../helpers/store-check.js';
import { tar } from '../helpers/tar-writer.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

let dir: string;
let registry: StartedRegistry;
let runs = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-e2e-limits-'));
  registry = await startRegistry('open');
});

after(async () => {
  if (dir) unmountBelow(dir);
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Pulls repo into a fresh bundle of a given work dir; returns the CLI result and the bundle path. */
async function pull(repo: string, work: string, args: string[] = []) {
  const bundle = join(dir, `bundle-${++runs}`);
  const r = await cli(['pull', `${registry.host}/${repo}`, bundle, '--work-dir', work, '--plain-http', registry.host, ...args]);
  return { ...r, bundle };
}

/** The pull failed on `limit`, and left no bundle, no layer it made, no staging and no lease. */
async function assertStopped(r: CliResult & { bundle: string }, limit: string, work: string, keptLayers: readonly string[] = []): Promise<void> {
  assertCliError(r, 'LIMIT_EXCEEDED');
  assert.match(r.stderr, new RegExp(`\\(${limit}\\)`), r.stderr);
  assert.equal(existsSync(r.bundle), false, 'no bundle dir');
  const store = await checkStore(work, { settled: true });
  assert.deepEqual([...store.committed].sort(), [...keptLayers].sort(), 'committed layers');
  assert.equal(store.staging.length, 0);
  assert.equal(store.leases, 0);
}

describe('unpack limits stop a pull mid-stream with LIMIT_EXCEEDED, and nothing is committed', () => {
  it('a 2 GiB zstd layer of zeros (190 KB to download) against max_unpacked_bytes_per_layer', async () => {
    const bomb = zeroBomb(2 * GiB, 'zstd');
    assert.ok(bomb.blob.length < 1 * MiB, `the bomb is ${bomb.blob.length} bytes`);
    await registry.pushImage('limits/zstd-bomb', 'v1', buildImage({
      layers: [{ tar: Buffer.alloc(0), precompressed: bomb.blob, diffIdOverride: bomb.diffId, compression: 'zstd' }],
    }));
    const work = join(dir, 'work-bomb');
    const r = await pull('limits/zstd-bomb:v1', work, ['--max-unpacked-bytes-per-layer', '64M']);
    await assertStopped(r, 'max_unpacked_bytes_per_layer', work);
    assert.match(r.stderr, /more than 67108864 bytes/);
  });

  it('max_unpacked_bytes_per_image counts every layer, those already in the store too, and takes back what the pull committed', async () => {
    const three = (name: string) => tar([{ name, content: Buffer.alloc(3 * MiB, name.charCodeAt(0)) }]);
    const base = buildImage({ layers: [{ tar: three('a') }] });
    const grown = buildImage({ layers: [{ tar: three('a') }, { tar: three('b') }, { tar: three('c') }] });
    await registry.pushImage('limits/base', 'v1', base);
    await registry.pushImage('limits/grown', 'v1', grown);
    const work = join(dir, 'work-image');
    // Layer a comes from the store; b is committed first (one layer at a time), then c crosses 8 MiB.
    const ok = await pull('limits/base:v1', work);
    assert.equal(ok.code, 0, ok.stderr);
    const r = await pull('limits/grown:v1', work, ['--max-unpacked-bytes-per-image', '8M', '--max-concurrent-layers', '1']);
    await assertStopped(r, 'max_unpacked_bytes_per_image', work, [grown.layers[0]!.diffId]);
    // Under the limit the same pull goes through.
    const fits = await pull('limits/grown:v1', work, ['--max-unpacked-bytes-per-image', '10M']);
    assert.equal(fits.code, 0, fits.stderr);
  });

  it('max_entries_per_layer and max_path_bytes, from the config file and from flags', async () => {
    const many = buildImage({ layers: [{ tar: tar(Array.from({ length: 300 }, (_, i) => ({ name: `f/${i}`, content: 'x' }))) }] });
    const deep = buildImage({ layers: [{ tar: tar([{ name: `${'d/'.repeat(150)}leaf`, content: 'x' }]) }] });
    await registry.pushImage('limits/many', 'v1', many);
    await registry.pushImage('limits/deep', 'v1', deep);
    const config = join(dir, 'limits.json');
    await writeFile(config, JSON.stringify({ max_entries_per_layer: 100, max_path_bytes: '255' }));
    const work = join(dir, 'work-entries');
    await assertStopped(await pull('limits/many:v1', work, ['--config', config]), 'max_entries_per_layer', work);
    await assertStopped(await pull('limits/deep:v1', work, ['--config', config]), 'max_path_bytes', work);
    // A flag wins over the file; 0 turns a limit off.
    const off = await pull('limits/many:v1', work, ['--config', config, '--max-entries-per-layer', '0']);
    assert.equal(off.code, 0, off.stderr);
  });

  it('refuses a malformed limit before anything is fetched', async () => {
    const work = join(dir, 'work-usage');
    assertCliError(await pull('limits/many:v1', work, ['--max-path-bytes', '1G']), 'INVALID_ARGUMENT', 2);
    assertCliError(await pull('limits/many:v1', work, ['--max-unpacked-bytes-per-layer', 'lots']), 'INVALID_ARGUMENT', 2);
    const config = join(dir, 'bad-limits.json');
    await writeFile(config, JSON.stringify({ max_unpacked_bytes_per_image: -1 }));
    assertCliError(await pull('limits/many:v1', work, ['--config', config]), 'CONFIG_FILE_INVALID');
  });
});
